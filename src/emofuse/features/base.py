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

from emofuse.core.registry import Registry

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
    view_params: ClassVar[frozenset[str]] = frozenset()  # params that only select from the cached array (see view)

    def __init__(self, params: BaseModel):
        self.params = params

    def settings_key(self) -> str:
        """Identifies the extractor's output: a cache entry is reused only under the same key."""
        params = self.key_params()
        spec = {"name": self.registry_name, "version": self.version, "params": params}
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.registry_name}-{digest}"

    def key_params(self) -> dict:
        """The params that identify the output (all but ``view_params``)."""
        return self.params.model_dump(mode="json", exclude=set(self.view_params))

    def extract_file(self, path: Path) -> tuple[np.ndarray, dict | None]:
        """What the cache keeps of the file and an optional small record about it (kept beside the cache entry);
        raises DataError naming the file when the file cannot give features."""
        raise NotImplementedError

    def view(self, cached: np.ndarray) -> np.ndarray:
        """The features a model takes, from what the cache keeps: an extractor that caches more than one setting
        needs (every layer of a pretrained encoder, say) selects here, so changing a ``view_params`` value reads
        the cache again instead of extracting again."""
        return cached


class AudioExtractor(Extractor):
    Params: ClassVar[type[ExtractorParams]] = ExtractorParams

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    def extract_file(self, path: Path) -> tuple[np.ndarray, None]:
        from emofuse.data.audio import load_audio

        return self.compute(self.trimmed(load_audio(path, self.sample_rate))), None

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """The model's features of a waveform (what extraction caches, then ``view``)."""
        return self.view(self.compute(self.trimmed(wave)))

    def trimmed(self, wave: np.ndarray) -> np.ndarray:
        if self.params.trim_top_db is not None:
            trimmed = trim_silence(wave, self.params.trim_top_db)
            if len(trimmed) >= self.sample_rate // 10:
                return trimmed
        return wave

    def compute(self, wave: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def trim_silence(wave: np.ndarray, top_db: float, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Leading and trailing frames more than ``top_db`` below the loudest frame's power cut off: librosa's
    ``effects.trim`` (centred frames, zero padding, power in dB against the maximum) sample for sample
    (tests/test_media.py), without importing librosa (seconds) on the prediction path."""
    padded = np.pad(wave, frame_length // 2)
    n_frames = 1 + (len(padded) - frame_length) // hop_length
    if n_frames < 1:
        return wave[:0]
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length][:n_frames]
    power = np.mean(np.abs(frames) ** 2, axis=-1)
    db = 10.0 * np.log10(np.maximum(1e-10, power)) - 10.0 * np.log10(np.maximum(1e-10, power.max()))
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return wave[:0]
    return wave[loud[0] * hop_length : min(len(wave), (loud[-1] + 1) * hop_length)]
