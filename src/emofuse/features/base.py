"""Feature extractors: a file in, an array out, cached by file content and settings (features/cache.py).

Audio extractors turn a waveform into a clip vector (D,) or a frame sequence (T, D); video extractors
(features/visual/extractors.py) turn a video into face-crop clips or per-frame face features.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
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


class Extractor:
    """What the parallel, cached extraction (features/extract.py) needs of any extractor."""

    Params: ClassVar[type[BaseModel]]
    registry_name: ClassVar[str]
    version: ClassVar[str] = "1"  # bump when the output of the same params changes
    sequence: ClassVar[bool] = False  # output (T, ...) per file rather than one vector
    memmap: ClassVar[bool] = False  # outputs are large: read them from the cache memory-mapped

    def __init__(self, params: BaseModel):
        self.params = params

    def settings_key(self) -> str:
        """Identifies the extractor's output: a cache entry is reused only under the same key."""
        spec = {"name": self.registry_name, "version": self.version, "params": self.params.model_dump(mode="json")}
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.registry_name}-{digest}"

    def extract_file(self, path: Path) -> tuple[np.ndarray, dict | None]:
        """The file's features and an optional small record about them (kept beside the cache entry);
        raises DataError naming the file when the file cannot give features."""
        raise NotImplementedError


class AudioExtractor(Extractor):
    Params: ClassVar[type[ExtractorParams]] = ExtractorParams

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    def extract_file(self, path: Path) -> tuple[np.ndarray, None]:
        from emofuse.data.audio import load_audio

        return self(load_audio(path, self.sample_rate)), None

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        if self.params.trim_top_db is not None:
            import librosa

            trimmed, _ = librosa.effects.trim(wave, top_db=self.params.trim_top_db)
            if len(trimmed) >= self.sample_rate // 10:
                wave = trimmed
        return self.compute(wave)

    def compute(self, wave: np.ndarray) -> np.ndarray:
        raise NotImplementedError
