"""``conditioned``: another audio extractor's features of a clip recorded under other conditions.

The clip is decoded, one copy of it is corrupted (data/waveform_augment.py: noise, gain, telephone band, codec,
reverberation), and the wrapped extractor runs on that copy as it runs on clean audio (its silence trimming
included, after the corruption, as a deployment trims what it receives). The copy's randomness comes from the
file's content digest, the copy index and the conditions, and the cache key is the wrapped extractor's key plus
these conditions and the copy index: every copy is rendered and extracted once, in the same parallel, resumable
pass as clean audio (features/extract.py), and choosing another layer of a cached copy reads the cache again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from emofuse.features.base import EXTRACTORS, AudioExtractor
from emofuse.features.cache import file_digest
from emofuse.data.waveform_augment import Condition, condition_rng, corrupt


class ConditionedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extractor: str = Field(..., description="the audio extractor run on the corrupted copy")
    params: dict[str, Any] = Field(default_factory=dict, description="its parameters")
    conditions: list[Condition] = Field(..., min_length=1, description="the copy's condition (several: one drawn)")
    copy_index: int = Field(0, ge=0, description="which copy of the clip: another index draws other noise and settings")


def codec_versions(conditions: list) -> list[str]:
    """What a lossy codec's output depends on besides its settings: PyAV and the FFmpeg libraries it bundles (another
    build encodes another waveform), so that a copy made with another build is rendered again rather than reused."""
    if not any(c.kind == "codec" for c in conditions):
        return []
    import av

    return [f"av {av.__version__}", *(f"{name} {'.'.join(map(str, v))}" for name, v in sorted(av.library_versions.items()))]


@EXTRACTORS.register("conditioned")
class ConditionedAudio(AudioExtractor):
    Params = ConditionedParams

    def __init__(self, params: ConditionedParams):
        super().__init__(params)
        if params.extractor == "conditioned":
            raise ValueError("a conditioned extractor cannot wrap another one")
        self.base: AudioExtractor = EXTRACTORS.create(params.extractor, params.params)
        self.view_params = self.base.view_params
        self.memmap = self.base.memmap

    @property
    def sample_rate(self) -> int:
        return self.base.sample_rate

    @property
    def sequence(self) -> bool:
        return self.base.sequence

    def settings_key(self) -> str:
        spec = "|".join([self.version, str(self.params.copy_index), *(c.key() for c in self.params.conditions),
                         *codec_versions(self.params.conditions)])
        return f"{self.base.settings_key()}~{self.registry_name}-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"

    def extract_file(self, path: Path) -> tuple[np.ndarray, None]:
        from emofuse.data.audio import load_audio

        wave = load_audio(path, self.sample_rate)
        rng = condition_rng(file_digest(path), self.params.copy_index, self.params.conditions)
        return self.base.compute(self.base.trimmed(corrupt(wave, self.sample_rate, self.params.conditions, rng))), None

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        raise TypeError("a conditioned extractor renders copies of files for evaluation and training, not predictions")

    def view(self, cached: np.ndarray) -> np.ndarray:
        return self.base.view(cached)
