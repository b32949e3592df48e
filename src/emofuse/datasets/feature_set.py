"""Paired multimodal features for every sample of a dataset: what the protocol trains and tests on.

A dataset reader (RAVDESS's file names here, a manifest in datasets/manifest_set.py) lists the samples with their
speaker and class, and where each modality's features come from (datasets/sources.py); ``assemble`` gets them,
stops on or leaves out incomplete samples, and returns the one FeatureSet that everything downstream takes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.core.errors import DataError
from emofuse.data.openface import VisualSource
from emofuse.data.ravdess import EMOTIONS, find_audio_files, find_video_files, parse_name
from emofuse.features.base import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.features.extract import in_shard
from emofuse.datasets.sources import FeatureFiles, FeatureTable, MediaFiles, Problems, TextColumn
from emofuse.features.visual.extractors import VIDEO_EXTRACTORS

Source = MediaFiles | FeatureFiles | FeatureTable | TextColumn

log = logging.getLogger(__name__)


@dataclass
class FeatureSet:
    # one row per sample: clip, take (the sample's key), actor (its speaker: RAVDESS actor numbers, a manifest's
    # strings), label (index into class_names), emotion (class name), gender where known, and the reader's own columns
    meta: pd.DataFrame
    features: dict[str, np.ndarray | list[np.ndarray]]  # modality -> (N, D), or N arrays (T_i, D) or clips (T_i, S, S, 3)
    class_names: tuple[str, ...] = EMOTIONS
    skipped: list[dict] = field(default_factory=list)  # takes left out, with the reason
    fingerprint: str = ""
    face_report: dict | None = None  # face detection over the videos (visual from video only)
    # modality -> (N,) booleans, for a modality some samples lack (a corpus without it): those samples' features are
    # zeros, which standardisation replaces by the training mean, and its branch is neither trained nor heard on them
    presence: dict[str, np.ndarray] = field(default_factory=dict)

    def present(self, m: str) -> np.ndarray:
        """(N,) booleans: the samples that have modality ``m``."""
        return self.presence.get(m, np.ones(len(self.meta), bool))

    @property
    def absent_modalities(self) -> dict[str, list[str]]:
        """Per corpus (or sample group, without a corpus column) lacking some modality: the modalities it lacks."""
        groups = self.meta["corpus"].to_numpy() if "corpus" in self.meta else np.full(len(self.meta), "the manifest")
        out: dict[str, list[str]] = {}
        for m, present in self.presence.items():
            for group in dict.fromkeys(groups[~present]):
                out.setdefault(str(group), []).append(m)
        return out

    @property
    def sequence(self) -> dict[str, bool]:
        return {m: isinstance(v, list) for m, v in self.features.items()}

    @property
    def corpus_classes(self) -> dict[str, tuple[str, ...]] | None:
        """Per corpus (a manifest of several, its ``corpus`` column), the classes its samples have, in class order;
        None for one corpus."""
        if "corpus" not in self.meta:
            return None
        return {corpus: tuple(c for c in self.class_names if c in set(rows["emotion"]))
                for corpus, rows in self.meta.groupby("corpus", sort=False)}

    @property
    def class_mask(self) -> np.ndarray | None:
        """(N, K) booleans: the classes of each sample's corpus, the only ones it is trained towards or away from and
        predicted among; None for one corpus (every class)."""
        corpora = self.corpus_classes
        if corpora is None:
            return None
        allowed = {corpus: np.isin(self.class_names, classes) for corpus, classes in corpora.items()}
        return np.stack([allowed[c] for c in self.meta["corpus"]])

    @property
    def input_dims(self) -> dict[str, int]:
        """Features per frame (or per clip); colour channels for face clips."""
        return {m: (v[0] if isinstance(v, list) else v).shape[-1] for m, v in self.features.items()}


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


def announce_extraction(data: DataConfig, features: FeaturesConfig, n_samples: int, cache: FeatureCache) -> None:
    """A line at once: creating an extractor (Whisper loads its weights) and hashing the files take a while before
    the first progress line."""
    names = [features.audio.name] if "audio" in data.modalities and data.audio_source == "media" else []
    if "visual" in data.modalities and data.visual.kind == "video":
        names.append(features.visual.name)
    names += [part.name for part in data.speech_sourced().values()]
    if names:
        log.info("getting %s features for %d samples (cache %s): loading the extractor%s, reading what is cached ...",
                 " and ".join(names), n_samples, cache.root, "s" * (len(names) > 1))


def assemble(meta: pd.DataFrame, sources: dict[str, Source], data: DataConfig, workers: int, cache: FeatureCache,
             progress: bool, where: Path, class_names: tuple[str, ...] | None = None, problems: Problems | None = None,
             check: Callable[[pd.DataFrame], Problems] | None = None, identity: pd.Series | None = None,
             skipped: list[dict] | None = None, name_sample: Callable[[str], str] = str,
             absent: dict[str, set[str]] | None = None) -> FeatureSet:
    """The FeatureSet of the samples in ``meta`` (one row each, keyed by its ``take`` column, the class name in
    ``emotion``): every modality's features from its source, the samples with a problem (theirs already, the
    sources', then ``check``'s on the rest) stopped on or left out as ``data.on_incomplete`` says, labels indexed
    by ``class_names`` (default: the classes present, common emotions first), and a fingerprint of the data.
    ``absent``: per modality, the samples without it (their source has no entry for them): filled with zeros, and
    marked in ``presence``."""
    absent = absent or {}
    takes = meta["take"].tolist()
    problems = {take: list((problems or {}).get(take, [])) for take in takes}
    loaded = {m: sources[m].load(cache, workers, progress, problems) for m in data.modalities}
    if check is not None:
        for take, found in check(meta[[not problems[t] for t in takes]]).items():
            problems[take].extend(found)
    incomplete = [{"take": t, "problems": p} for t, p in problems.items() if p]
    report_incomplete(incomplete, len(takes), where, data.on_incomplete, name_sample)
    keep = [not problems[t] for t in takes]
    meta = meta[keep].reset_index(drop=True)
    takes = meta["take"].tolist()
    class_names = class_names or ordered_classes(meta["emotion"])
    meta.insert(meta.columns.get_loc("emotion"), "label", meta["emotion"].map({c: i for i, c in enumerate(class_names)}))
    feats: dict[str, np.ndarray | list[np.ndarray]] = {}
    presence: dict[str, np.ndarray] = {}
    for m in data.modalities:
        present = np.array([t not in absent.get(m, ()) for t in takes], bool)
        if not present.any():
            raise DataError(where, f"no usable sample has the {m} modality: leave it out of data.modalities")
        if not present.all():
            presence[m] = present
        values = [loaded[m].values[t] if p else None for t, p in zip(takes, present)]
        values = [v if v is not None else empty_like(values[int(np.argmax(present))]) for v in values]
        feats[m] = values if values and values[0].ndim >= 2 else np.stack(values)
    identity = identity if identity is not None else pd.Series(takes, index=takes)
    fingerprint = hashlib.sha256()
    for take in takes:
        digest = lambda m: loaded[m].digests.get(take, "absent")  # noqa: E731
        audio = digest("audio") if "audio" in loaded else ""
        others = "".join(f":{digest(m)}" for m in data.modalities if m != "audio" and loaded[m].digests)
        fingerprint.update(f"{identity[take]}:{audio}{others}\n".encode())
    for m in data.modalities:
        if loaded[m].source_digest:
            fingerprint.update(f"{m}:{loaded[m].source_digest}\n".encode())
    records = loaded["visual"].records if "visual" in loaded else {}
    face_report = face_summary({t: records[t] for t in takes if t in records}) if records else None
    return FeatureSet(meta=meta, features=feats, class_names=tuple(class_names), skipped=(skipped or []) + incomplete,
                      fingerprint=fingerprint.hexdigest(), face_report=face_report, presence=presence)


def empty_like(value: np.ndarray) -> np.ndarray:
    """What an absent modality's sample holds: zeros of a present sample's shape; one frame of a sequence."""
    return np.zeros((1, *value.shape[1:]) if value.ndim >= 2 else value.shape, value.dtype)


def report_incomplete(incomplete: list[dict], total: int, where: Path, on_incomplete: str,
                      name_sample: Callable[[str], str] = str) -> None:
    """Stop on incomplete samples, naming each with its problems, or (``skip``) say they are left out."""
    if not incomplete:
        return
    listing = "\n  ".join(f"{name_sample(s['take'])}: {'; '.join(s['problems'])}" for s in incomplete[:20])
    more = f"\n  ... and {len(incomplete) - 20} more" if len(incomplete) > 20 else ""
    message = f"{len(incomplete)} of {total} takes are incomplete:\n  {listing}{more}"
    if on_incomplete == "error":
        raise DataError(where, message + "\n(set data.on_incomplete: skip to leave them out and report them)")
    log.warning("%s\nthese takes are left out (data.on_incomplete: skip)", message)


def ordered_classes(labels) -> tuple[str, ...]:
    """The classes present: the common emotions in their usual order (RAVDESS's), then any others alphabetically."""
    present = set(labels)
    return (*(e for e in EMOTIONS if e in present), *sorted(present - set(EMOTIONS)))


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
    problems: Problems = {take: [] for take in audio_files}
    announce_extraction(data, features, len(audio_files), cache)
    sources: dict[str, Source] = {}
    if "audio" in data.modalities:
        sources["audio"] = MediaFiles(audio_files, EXTRACTORS.create(features.audio.name, features.audio.params), "audio")
    if "visual" in data.modalities and data.visual.kind == "video":
        root = data_dir / data.visual.path
        video_files = find_video_files(root)
        for take in audio_files.keys() - video_files.keys():
            problems[take].append(f"visual {root}: no video file 01-{take}.* or 02-{take}.*")
        files = {take: video_files[take] for take in audio_files if take in video_files}
        sources["visual"] = MediaFiles(files, VIDEO_EXTRACTORS.create(features.visual.name, features.visual.params), "visual")
    elif "visual" in data.modalities:
        source = VisualSource(data.visual.kind, data_dir / data.visual.path)
        sources["visual"] = FeatureTable(source, {take: [f"01-{take}", f"02-{take}"] for take in audio_files}, "visual")
    for m, part in data.speech_sourced().items():
        sources[m] = MediaFiles(audio_files, EXTRACTORS.create(part.name, part.params), m)
    names = [parse_name(audio_files[t]) for t in audio_files]
    meta = pd.DataFrame(
        {
            "clip": [n.stem for n in names], "take": list(audio_files), "actor": [n.actor for n in names],
            "gender": ["female" if n.female else "male" for n in names],
            "emotion": [n.emotion_name for n in names],
            "intensity": [n.intensity for n in names], "statement": [n.statement for n in names],
            "repetition": [n.repetition for n in names],
        }
    )
    return assemble(meta, sources, data, features.workers, cache, progress, data_dir, EMOTIONS, problems)
