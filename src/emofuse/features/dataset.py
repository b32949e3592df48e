"""Paired multimodal features for every RAVDESS take: what the protocol trains and tests on."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.config import DataConfig, FeaturesConfig
from emofuse.data.errors import DataError
from emofuse.data.openface import VisualSource
from emofuse.data.ravdess import EMOTIONS, find_audio_files, parse_name
from emofuse.features.base import EXTRACTORS
from emofuse.features.cache import FeatureCache, file_digest
from emofuse.features.extract import extract_features, in_shard

log = logging.getLogger(__name__)


@dataclass
class FeatureSet:
    meta: pd.DataFrame  # one row per take: clip, take, actor, label, emotion, intensity, statement, repetition
    features: dict[str, np.ndarray | list[np.ndarray]]  # modality -> (N, D) or N arrays (T_i, D)
    class_names: tuple[str, ...] = EMOTIONS
    skipped: list[dict] = field(default_factory=list)  # takes left out, with the reason
    fingerprint: str = ""

    @property
    def sequence(self) -> dict[str, bool]:
        return {m: isinstance(v, list) for m, v in self.features.items()}

    @property
    def input_dims(self) -> dict[str, int]:
        return {m: (v[0].shape[1] if isinstance(v, list) else v.shape[1]) for m, v in self.features.items()}


def build_ravdess_features(
    data_dir: str | Path,
    data: DataConfig,
    features: FeaturesConfig,
    cache: FeatureCache,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> FeatureSet:
    """Find the takes, extract (or load cached) features for each modality and pair them by take.

    ``shard=(i, n)`` keeps only the i-th of n disjoint shares of the takes (``emofuse extract --shard i/n``)."""
    data_dir = Path(data_dir)
    audio_files = find_audio_files(data_dir / data.audio_dir)
    if shard is not None:
        audio_files = {take: path for take, path in audio_files.items() if in_shard(take, *shard)}
    problems: dict[str, list[str]] = {take: [] for take in audio_files}
    modality_values: dict[str, dict[str, np.ndarray]] = {}
    digests: dict[str, str] = {}

    if "audio" in data.modalities:
        extractor = EXTRACTORS.create(features.audio.name, features.audio.params)
        report = extract_features(list(audio_files.values()), extractor, cache, features.workers, progress)
        log.info("audio features: %d computed, %d from cache, %d failed", report.computed, report.cached, len(report.failures))
        by_path = {path: take for take, path in audio_files.items()}
        for path, problem in report.failures.items():
            problems[by_path[path]].append(f"audio {path}: {problem}")
        modality_values["audio"] = {by_path[p]: v for p, v in report.features.items()}

    if "visual" in data.modalities:
        source = VisualSource(data.visual.kind, data_dir / data.visual.path)
        values = {}
        for take in audio_files:
            stems = [f"01-{take}", f"02-{take}"]
            stem = next((s for s in stems if source.has(s)), None)
            if stem is None:
                problems[take].append(f"visual {source.describe_missing(stems[0])}")
                continue
            try:
                values[take] = source.vector(stem)
            except DataError as err:
                problems[take].append(f"visual {err}")
        modality_values["visual"] = values
        digests["visual"] = _digest_path(source.path)

    skipped = [{"take": take, "problems": p} for take, p in problems.items() if p]
    if skipped:
        listing = "\n  ".join(f"{s['take']}: {'; '.join(s['problems'])}" for s in skipped[:20])
        more = f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        message = f"{len(skipped)} of {len(audio_files)} takes are incomplete:\n  {listing}{more}"
        if data.on_incomplete == "error":
            raise DataError(data_dir, message + "\n(set data.on_incomplete: skip to leave them out and report them)")
        log.warning("%s\nthese takes are left out (data.on_incomplete: skip)", message)

    takes = [t for t in audio_files if not problems[t]]
    names = [parse_name(audio_files[t]) for t in takes]
    meta = pd.DataFrame(
        {
            "clip": [n.stem for n in names], "take": takes, "actor": [n.actor for n in names],
            "label": [n.label for n in names], "emotion": [n.emotion_name for n in names],
            "intensity": [n.intensity for n in names], "statement": [n.statement for n in names],
            "repetition": [n.repetition for n in names],
        }
    )
    feats: dict[str, np.ndarray | list[np.ndarray]] = {}
    for m in data.modalities:
        values = [modality_values[m][t] for t in takes]
        feats[m] = values if values and values[0].ndim == 2 else np.stack(values)
    fingerprint = hashlib.sha256()
    for take in takes:
        fingerprint.update(f"{take}:{file_digest(audio_files[take]) if 'audio' in data.modalities else ''}\n".encode())
    for m, d in sorted(digests.items()):
        fingerprint.update(f"{m}:{d}\n".encode())
    return FeatureSet(meta=meta, features=feats, skipped=skipped, fingerprint=fingerprint.hexdigest())


def _digest_path(path: Path) -> str:
    if path.is_file():
        return file_digest(path)
    h = hashlib.sha256()
    for p in sorted(path.rglob("*.csv")):
        h.update(f"{p.relative_to(path)}:{file_digest(p)}\n".encode())
    return h.hexdigest()
