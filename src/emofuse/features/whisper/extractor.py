"""``whisper``: hidden states of Whisper's encoder as audio features, layer-wise (SUPERB / EmoBox style).

The cache keeps every hidden state (0: the convolution front end plus positions, 1..N-1: the transformer layers,
N: the last layer after the final layer norm), so choosing layers (``layers``, ``combine``) reads the cache again
instead of running the encoder again.

``context: real`` runs the encoder on the clip's own length (mel frames padded to an even count, positions
0..n-1), ``30s`` on the 30 s window Whisper was trained on, the clip followed by silence; either way only the
encoder frames that cover the clip enter the pooled statistics or the sequence (20 ms per frame), never padding.
Longer recordings are encoded in 30 s pieces.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from emofuse.features.base import EXTRACTORS, AudioExtractor, ExtractorParams
from emofuse.features.whisper import models
from emofuse.features.whisper.framing import HOP, SAMPLE_RATE, WINDOW


class WhisperParams(ExtractorParams):
    model: str = Field("tiny.en", description="bundle (tiny.en, base), local CTranslate2 or Hugging Face directory, or hub id")
    layers: int | list[int] | Literal["all"] = Field(
        2, description="hidden-state index (0: front end, N: last layer; negative counts from the end), a list, or 'all'"
    )
    combine: Literal["concat", "mean", "stack"] = Field(
        "concat", description="several layers: concatenated, averaged, or stacked for a learned weighted sum "
                              "(sequence output; the encoder's layer_mix)"
    )
    output: Literal["pooled", "sequence"] = Field(
        "pooled", description="pooled: mean and standard deviation over the clip's frames; sequence: (T, D) frames"
    )
    frame_rate: Literal[50, 25] = Field(50, description="sequence output: 50 Hz, or pairs of frames averaged to 25 Hz")
    context: Literal["real", "30s"] = Field("real", description="encode the clip's own length, or a 30 s padded window")
    offline: bool = Field(False, description="never contact the Hugging Face hub (hub ids only)")

    @model_validator(mode="after")
    def _consistent(self) -> "WhisperParams":
        if self.sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper takes {SAMPLE_RATE} Hz audio; sample_rate must be {SAMPLE_RATE}")
        if self.combine == "stack" and self.output != "sequence":
            raise ValueError("combine: stack feeds a learned weighted sum over layers, which needs output: sequence")
        if isinstance(self.layers, list) and not self.layers:
            raise ValueError("layers: an empty list")
        return self


@EXTRACTORS.register("whisper")
class WhisperEncoderStates(AudioExtractor):
    Params = WhisperParams
    version = "1"
    view_params: ClassVar[frozenset[str]] = frozenset({"layers", "combine"})

    def __init__(self, params: WhisperParams):
        super().__init__(params)
        self._encoder = None
        self.source = models.resolve(params.model)
        self.n_states = self._count_states()
        wanted = range(self.n_states) if params.layers == "all" else \
            [params.layers] if isinstance(params.layers, int) else params.layers
        bad = [i for i in wanted if not -self.n_states <= i < self.n_states]
        if bad:
            raise models.ConfigError(f"Whisper model '{params.model}' has hidden states 0..{self.n_states - 1}; "
                                     f"layers {bad} do not exist")
        self.layer_ids = [i % self.n_states for i in wanted]

    def _count_states(self) -> int:
        """Transformer layers + 1 (a CTranslate2 config.json does not record the depth: its weights are read)."""
        if self.source.kind == "ctranslate2":
            return self.encoder.config.encoder_layers + 1
        transformers = models.require("transformers", "whisper")
        try:
            config = transformers.WhisperConfig.from_pretrained(self.source.location, local_files_only=self.params.offline)
        except (OSError, ValueError) as err:
            raise models.load_error("Whisper model", self.params.model, err) from None
        return config.encoder_layers + 1

    @property
    def sequence(self) -> bool:
        return self.params.output == "sequence"

    @property
    def layers_kept(self) -> int:
        return len(self.layer_ids) if self.params.combine == "stack" else 1

    def settings_key(self) -> str:
        return f"{super().settings_key()}-{self.source.digest.replace(':', '_').replace('/', '_')}"

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder, self.mel_frontend = models.load(self.source, self.params.offline)
        return self._encoder

    # ---- the encoder ------------------------------------------------------------------------------------
    def log_mel(self, piece: np.ndarray):
        """Whisper's log-mel input (1, n_mels, frames) for at most 30 s of audio: the clip's own length (padded to an
        even frame count) or the 30 s window."""
        self.encoder  # noqa: B018  (loads the mel front end with the weights)
        return self.mel_frontend(piece, self.params.context)

    def hidden_states(self, piece: np.ndarray, upto: int | None = None):
        """Hidden states (N + 1, n, D) of the n encoder frames that cover ``piece`` (at most 30 s); ``upto``: states
        0..upto only, where the encoder can stop there (the bundled ones; a Hugging Face encoder gives all)."""
        import torch

        mel = self.log_mel(piece)
        real = max(1, math.ceil(len(piece) / (2 * HOP)))
        depth = {"upto": upto} if upto is not None and self.source.kind == "ctranslate2" else {}
        with self._positions_for(mel.shape[-1] // 2), torch.inference_mode():
            states = self.encoder(mel.to(self.encoder.dtype), output_hidden_states=True, **depth).hidden_states
        return torch.stack([s[0, :real].float() for s in states])

    @contextmanager
    def _positions_for(self, count: int):
        """The encoder adds positions 0..count-1 (its forward checks the input against max_source_positions): for a
        shorter input, the first ``count`` rows of its position table, put back afterwards."""
        import torch

        encoder = self.encoder
        full, limit = encoder.embed_positions, encoder.config.max_source_positions
        if count != limit:
            encoder.embed_positions = torch.nn.Embedding.from_pretrained(full.weight[:count], freeze=True)
            encoder.config.max_source_positions = count
        try:
            yield
        finally:
            encoder.embed_positions, encoder.config.max_source_positions = full, limit

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """The model's features of a waveform (prediction): as ``view(compute(...))``, with the encoder run only as
        deep as the highest layer used, since nothing is cached here (a third fewer layers for tiny.en's 1-3)."""
        return self.view(self.compute(self.trimmed(wave), upto=max(self.layer_ids)))

    def compute(self, wave: np.ndarray, upto: int | None = None) -> np.ndarray:
        """What the cache holds: every hidden state, pooled (N + 1, 2D) float32 or as frames (T, N + 1, D) float16
        (``upto``: states 0..upto only)."""
        import torch

        wave = np.asarray(wave, dtype=np.float32)
        if len(wave) == 0:
            wave = np.zeros(2 * HOP, np.float32)
        states = torch.cat([self.hidden_states(wave[i : i + WINDOW], upto) for i in range(0, len(wave), WINDOW)], dim=1)
        if self.params.output == "pooled":
            return torch.cat([states.mean(1), states.std(1, unbiased=False)], dim=-1).numpy()
        frames = states.transpose(0, 1)  # (T, N + 1, D)
        if self.params.frame_rate == 25:
            pairs = [frames[i : i + 2].mean(0) for i in range(0, len(frames), 2)]
            frames = torch.stack(pairs)
        return frames.numpy().astype(np.float16)

    def view(self, cached: np.ndarray) -> np.ndarray:
        """The configured layers of a cached array, combined, as float32: (k * 2D,) / (2D,) pooled, (T, k * D) /
        (T, D) frames."""
        ids = self.layer_ids
        if self.params.output == "pooled":
            chosen = np.asarray(cached[ids], dtype=np.float32)
            return chosen.mean(0) if self.params.combine == "mean" else chosen.reshape(-1)
        chosen = np.asarray(cached[:, ids], dtype=np.float32)
        return chosen.mean(1) if self.params.combine == "mean" else chosen.reshape(len(chosen), -1)
