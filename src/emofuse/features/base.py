"""Audio feature extractors: a waveform in, a clip vector (D,) or a frame sequence (T, D) out."""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from emofuse.registry import Registry

EXTRACTORS: Registry["AudioExtractor"] = Registry("feature extractor")


class ExtractorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sample_rate: int = Field(16000, gt=0)
    trim_top_db: float | None = Field(
        None, gt=0, description="trim leading/trailing silence quieter than this (dB below peak)"
    )


class AudioExtractor:
    Params: ClassVar[type[ExtractorParams]] = ExtractorParams
    registry_name: ClassVar[str]
    version: ClassVar[str] = "1"  # bump when the output of the same params changes
    sequence: ClassVar[bool] = False

    def __init__(self, params: ExtractorParams):
        self.params = params

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    def settings_key(self) -> str:
        """Identifies the extractor's output: a cache entry is reused only under the same key."""
        spec = {"name": self.registry_name, "version": self.version, "params": self.params.model_dump()}
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.registry_name}-{digest}"

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        if self.params.trim_top_db is not None:
            import librosa

            trimmed, _ = librosa.effects.trim(wave, top_db=self.params.trim_top_db)
            if len(trimmed) >= self.sample_rate // 10:
                wave = trimmed
        return self.compute(wave)

    def compute(self, wave: np.ndarray) -> np.ndarray:
        raise NotImplementedError
