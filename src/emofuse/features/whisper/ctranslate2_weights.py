"""Whisper encoder weights from a CTranslate2 (faster-whisper) ``model.bin``, mapped onto the transformers encoder.

The packages that bundle Whisper for offline use ship CTranslate2 conversions, not Hugging Face checkpoints. The
file format is CTranslate2's own (``ctranslate2/specs/model_spec.py: _serialize``): a header, then named variables
(name, shape, dtype, bytes) and aliases. Its converter fuses each self-attention's q, k, v projections into one
``linear_0`` (k has no bias in Whisper, so its slice of the fused bias is zero) and renames the rest; undoing that is
all the mapping does, so an encoder with transformers' parameter names (torch_encoder.py) computes exactly what
CTranslate2 does (tests/test_whisper.py checks the last hidden state against ``ctranslate2.models.Whisper.encode``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from emofuse.core.registry import ConfigError

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
SUPPORTED_BINARY_VERSIONS = (5, 6)


def read_model_bin(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, variables) of a CTranslate2 model file; bfloat16 is returned widened to float32."""
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = take("H")
        text = data[offset : offset + length - 1].decode("utf-8")
        offset += length
        return text

    try:
        version = take("I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise ConfigError(f"{path}: CTranslate2 binary version {version}, this reader knows {SUPPORTED_BINARY_VERSIONS}")
        spec = string()
        take("I")  # spec revision
        variables = {}
        for _ in range(take("I")):
            name = string()
            shape = tuple(take("I") for _ in range(take("B")))
            dtype = _DTYPES[take("B")]
            size = take("I")
            raw = data[offset : offset + size]
            offset += size
            if dtype == "bfloat16":
                array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                array = np.frombuffer(raw, dtype)
            variables[name] = array.reshape(shape)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable CTranslate2 model file ({type(err).__name__}: {err})") from None
    return spec, variables


def encoder_config(variables: dict[str, np.ndarray]) -> dict:
    """The transformers ``WhisperConfig`` fields of the encoder, read off the weights' shapes."""
    conv1 = variables["encoder/conv1/weight"]  # (d_model, n_mels, 3)
    layers = 0
    while f"encoder/layer_{layers}/ffn/linear_0/weight" in variables:
        layers += 1
    return {
        "d_model": int(conv1.shape[0]),
        "num_mel_bins": int(conv1.shape[1]),
        "encoder_layers": layers,
        "encoder_attention_heads": int(variables["encoder/num_heads"]),
        "encoder_ffn_dim": int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "max_source_positions": int(variables["encoder/position_encodings/encodings"].shape[0]),
    }


def encoder_state_dict(variables: dict[str, np.ndarray]) -> dict[str, "torch.Tensor"]:  # noqa: F821
    """The variables under the names of ``transformers.WhisperEncoder.state_dict()`` (float32)."""
    import torch

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(variables[f"encoder/{name}"], dtype=np.float32).copy())

    state = {
        "conv1.weight": t("conv1/weight"), "conv1.bias": t("conv1/bias"),
        "conv2.weight": t("conv2/weight"), "conv2.bias": t("conv2/bias"),
        "embed_positions.weight": t("position_encodings/encodings"),
        "layer_norm.weight": t("layer_norm/gamma"), "layer_norm.bias": t("layer_norm/beta"),
    }
    for i in range(encoder_config(variables)["encoder_layers"]):
        ct2, hf = f"layer_{i}", f"layers.{i}"
        q, k, v = t(f"{ct2}/self_attention/linear_0/weight").chunk(3, dim=0)
        q_bias, k_bias, v_bias = t(f"{ct2}/self_attention/linear_0/bias").chunk(3, dim=0)
        if k_bias.abs().max() > 0:
            raise ConfigError("CTranslate2 Whisper weights with a key-projection bias: not a Whisper encoder")
        state.update({
            f"{hf}.self_attn.q_proj.weight": q, f"{hf}.self_attn.q_proj.bias": q_bias,
            f"{hf}.self_attn.k_proj.weight": k,
            f"{hf}.self_attn.v_proj.weight": v, f"{hf}.self_attn.v_proj.bias": v_bias,
            f"{hf}.self_attn.out_proj.weight": t(f"{ct2}/self_attention/linear_1/weight"),
            f"{hf}.self_attn.out_proj.bias": t(f"{ct2}/self_attention/linear_1/bias"),
            f"{hf}.self_attn_layer_norm.weight": t(f"{ct2}/self_attention/layer_norm/gamma"),
            f"{hf}.self_attn_layer_norm.bias": t(f"{ct2}/self_attention/layer_norm/beta"),
            f"{hf}.fc1.weight": t(f"{ct2}/ffn/linear_0/weight"), f"{hf}.fc1.bias": t(f"{ct2}/ffn/linear_0/bias"),
            f"{hf}.fc2.weight": t(f"{ct2}/ffn/linear_1/weight"), f"{hf}.fc2.bias": t(f"{ct2}/ffn/linear_1/bias"),
            f"{hf}.final_layer_norm.weight": t(f"{ct2}/ffn/layer_norm/gamma"),
            f"{hf}.final_layer_norm.bias": t(f"{ct2}/ffn/layer_norm/beta"),
        })
    return state


def load_ctranslate2_encoder(model_dir: Path):
    """The encoder of a CTranslate2 Whisper directory, in plain torch (torch_encoder.py: no transformers import)."""
    from emofuse.features.whisper.torch_encoder import load_encoder

    spec, variables = read_model_bin(model_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ConfigError(f"{model_dir}: a CTranslate2 {spec} model, not Whisper")
    return load_encoder(encoder_config(variables), encoder_state_dict(variables))
