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
from emofuse.data.ravdess import EMOTIONS, find_audio_files, find_video_files, parse_name
from emofuse.features.base import EXTRACTORS
from emofuse.features.cache import FeatureCache, file_digest
from emofuse.features.visual.extractors import VIDEO_EXTRACTORS
from emofuse.features.extract import extract_features, in_shard

log = logging.getLogger(__name__)


@dataclass
class FeatureSet:
    meta: pd.DataFrame  # one row per take: clip, take, actor, label, emotion, intensity, statement, repetition
    features: dict[str, np.ndarray | list[np.ndarray]]  # modality -> (N, D), or N arrays (T_i, D) or clips (T_i, S, S, 3)
    class_names: tuple[str, ...] = EMOTIONS
    skipped: list[dict] = field(default_factory=list)  # takes left out, with the reason
    fingerprint: str = ""
    face_report: dict | None = None  # face detection over the videos (visual from video only)

    @property
    def sequence(self) -> dict[str, bool]:
        return {m: isinstance(v, list) for m, v in self.features.items()}

    @property
    def input_dims(self) -> dict[str, int]:
        """Features per frame (or per clip); colour channels for face clips."""
        return {m: (v[0] if isinstance(v, list) else v).shape[-1] for m, v in self.features.items()}


@dataclass
class _Modality:
    values: dict[str, np.ndarray] = field(default_factory=dict)  # take -> features
    digests: dict[str, str] = field(default_factory=dict)  # take -> SHA-256 of the file the features came from
    records: dict[str, dict] = field(default_factory=dict)  # take -> the extractor's record


def _extract(files: dict[str, Path], extractor, cache: FeatureCache, workers: int, progress: bool, what: str,
             problems: dict[str, list[str]]) -> _Modality:
    """Cached parallel extraction of one file per take; a file that fails is a problem of its take."""
    report = extract_features(list(files.values()), extractor, cache, workers, progress)
    log.info("%s features: %d computed, %d from cache, %d failed", what, report.computed, report.cached, len(report.failures))
    by_path = {path: take for take, path in files.items()}
    for path, problem in report.failures.items():
        problems[by_path[path]].append(f"{what} {path}: {problem}")
    return _Modality(
        {by_path[p]: v for p, v in report.features.items()}, {by_path[p]: d for p, d in report.digests.items()},
        {by_path[p]: r for p, r in report.info.items()},
    )


def _from_openface(takes, source: VisualSource, problems: dict[str, list[str]]) -> _Modality:
    found = _Modality()
    for take in takes:
        stems = [f"01-{take}", f"02-{take}"]
        stem = next((s for s in stems if source.has(s)), None)
        if stem is None:
            problems[take].append(f"visual {source.describe_missing(stems[0])}")
            continue
        try:
            found.values[take] = source.vector(stem)
        except DataError as err:
            problems[take].append(f"visual {err}")
    return found


def face_summary(records: dict[str, dict]) -> dict:
    """Face detection over all videos: frames analysed, detected, held over and without a face, and the sampled
    frames that had none (left out of their clips)."""
    total = lambda key: int(sum(r[key] for r in records.values()))  # noqa: E731
    return {
        "videos": len(records), "frames_analysed": total("frames"), "frames_detected": total("detected"),
        "frames_held": total("held"), "frames_without_face": total("without_face"), "sampled_frames": total("sampled"),
        "sampled_frames_without_face": total("sampled") - total("sampled_with_face"),
        "videos_missing_sampled_frames": sum(r["sampled_with_face"] < r["sampled"] for r in records.values()),
    }


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
    found: dict[str, _Modality] = {}
    visual_digest = ""

    if "audio" in data.modalities:
        extractor = EXTRACTORS.create(features.audio.name, features.audio.params)
        found["audio"] = _extract(audio_files, extractor, cache, features.workers, progress, "audio", problems)

    if "visual" in data.modalities and data.visual.kind == "video":
        root = data_dir / data.visual.path
        video_files = find_video_files(root)
        for take in audio_files.keys() - video_files.keys():
            problems[take].append(f"visual {root}: no video file 01-{take}.* or 02-{take}.*")
        files = {take: video_files[take] for take in audio_files if take in video_files}
        extractor = VIDEO_EXTRACTORS.create(features.visual.name, features.visual.params)
        found["visual"] = _extract(files, extractor, cache, features.workers, progress, "visual", problems)
    elif "visual" in data.modalities:
        source = VisualSource(data.visual.kind, data_dir / data.visual.path)
        found["visual"] = _from_openface(audio_files, source, problems)
        visual_digest = _digest_path(source.path)

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
        values = [found[m].values[t] for t in takes]
        feats[m] = values if values and values[0].ndim >= 2 else np.stack(values)
    fingerprint = hashlib.sha256()
    for take in takes:
        video = f":{found['visual'].digests[take]}" if "visual" in found and found["visual"].digests else ""
        fingerprint.update(f"{take}:{found['audio'].digests[take] if 'audio' in found else ''}{video}\n".encode())
    if visual_digest:
        fingerprint.update(f"visual:{visual_digest}\n".encode())
    records = found["visual"].records if "visual" in found else {}
    face_report = face_summary({t: records[t] for t in takes if t in records}) if records else None
    return FeatureSet(meta=meta, features=feats, skipped=skipped, fingerprint=fingerprint.hexdigest(), face_report=face_report)


def _digest_path(path: Path) -> str:
    if path.is_file():
        return file_digest(path)
    h = hashlib.sha256()
    for p in sorted(path.rglob("*.csv")):
        h.update(f"{p.relative_to(path)}:{file_digest(p)}\n".encode())
    return h.hexdigest()
