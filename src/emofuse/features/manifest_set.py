"""The FeatureSet of a manifest (data/manifest.py): each modality from the source the data config names.

- audio: ``data.audio_source: media`` puts the ``audio`` file (else the ``video`` file's audio track) through
  ``features.audio``; ``features`` reads the ``audio_features`` .npy files.
- visual: ``data.visual.kind: video`` (a manifest's default) puts the ``video`` file through ``features.visual``
  (default: face features); ``features`` reads ``visual_features``; ``table`` / ``openface_frames`` look each row's
  ``data.visual.key`` column up in a clip table or a folder of OpenFace per-frame CSVs at ``data.visual.path``.

Everything after that (folds, training, predict, export) is what a RAVDESS directory gets.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emofuse.config import DataConfig, FeaturesConfig
from emofuse.data.errors import DataError
from emofuse.data.manifest import Manifest, check_speakers, labels_seen_once, read_manifest
from emofuse.data.openface import VisualSource
from emofuse.features.base import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.features.dataset import FeatureSet, Source, announce_extraction, assemble, report_incomplete
from emofuse.features.extract import in_shard
from emofuse.features.sources import FeatureFiles, FeatureTable, MediaFiles
from emofuse.features.visual.extractors import VIDEO_EXTRACTORS


def needed_columns(data: DataConfig) -> tuple[list[str], list[str]]:
    """(file columns, key columns) the data config reads from a manifest."""
    files, keys = [], []
    if "audio" in data.modalities:
        files.append("audio" if data.audio_source == "media" else "audio_features")
    if "visual" in data.modalities:
        kind = data.visual.kind
        if kind in ("video", "features"):
            files.append("video" if kind == "video" else "visual_features")
        else:
            keys.append(data.visual.key)
    return files, keys


def _sources(manifest: Manifest, samples: list[str], data: DataConfig, features: FeaturesConfig,
             expected_dims: dict[str, int]) -> dict[str, Source]:
    def files(column: str) -> dict[str, Path]:
        return {s: manifest.files[column][s] for s in samples}

    def what(column: str) -> dict[str, str]:
        return {s: f"column '{manifest.columns[column][s]}'" for s in samples}

    sources: dict[str, Source] = {}
    if "audio" in data.modalities and data.audio_source == "media":
        sources["audio"] = MediaFiles(files("audio"), EXTRACTORS.create(features.audio.name, features.audio.params),
                                      what("audio"))
    elif "audio" in data.modalities:
        sources["audio"] = FeatureFiles(files("audio_features"), what("audio_features"), expected_dims.get("audio"))
    if "visual" not in data.modalities:
        return sources
    kind = data.visual.kind
    if kind == "video":  # the config's validation made sure of a video extractor
        extractor = VIDEO_EXTRACTORS.create(features.visual.name, features.visual.params)
        sources["visual"] = MediaFiles(files("video"), extractor, what("video"))
    elif kind == "features":
        sources["visual"] = FeatureFiles(files("visual_features"), what("visual_features"), expected_dims.get("visual"))
    else:
        key = data.visual.key
        table = VisualSource(kind, manifest.path.parent / data.visual.path)
        values = manifest.rows.set_index("id")[key]
        sources["visual"] = FeatureTable(table, {s: [values[s]] for s in samples}, f"column '{key}'")
    return sources


def build_manifest_features(path: str | Path, data: DataConfig, features: FeaturesConfig, cache: FeatureCache,
                            progress: bool = True, shard: tuple[int, int] | None = None, training: bool = True,
                            expected_dims: dict[str, int] | None = None, split: str | None = None) -> FeatureSet:
    """Read and check the manifest, get each modality's features and assemble them. ``training=False`` (scoring a
    finished run on it) skips the checks only folds need; ``expected_dims`` are the feature dimensions its model
    takes, which precomputed feature files must have; ``split`` keeps the rows of one split."""
    path = Path(path)
    file_columns, key_columns = needed_columns(data)
    manifest = read_manifest(path, file_columns, key_columns, training)
    if split is not None:
        if "split" not in manifest.rows:
            raise DataError(path, f"--split {split}: the manifest has no split column")
        manifest.rows = manifest.rows[manifest.rows["split"] == split]
        manifest.problems = {s: p for s, p in manifest.problems.items() if s in set(manifest.rows["id"])}
        if not len(manifest.rows):
            raise DataError(path, f"no row has split {split}")
    rows = manifest.rows
    early = [{"take": s, "line": manifest.line(s), "problems": p} for s, p in manifest.problems.items()]
    report_incomplete(early, len(rows), path, data.on_incomplete, manifest.describe)
    rows = rows[~rows["id"].isin(manifest.problems)]
    if shard is not None:
        rows = rows[[in_shard(s, *shard) for s in rows["id"]]]
    samples = rows["id"].tolist()
    announce_extraction(data, features, len(samples), cache)
    sources = _sources(manifest, samples, data, features, expected_dims or {})
    meta = pd.DataFrame({"clip": samples, "take": samples, "actor": rows["speaker"].to_numpy(),
                         **({"gender": rows["gender"].to_numpy()} if "gender" in rows else {}),
                         "emotion": rows["label"].to_numpy(),
                         **{c: rows[c].to_numpy() for c in ("split", "fold") if c in rows},
                         "line": rows["line"].to_numpy()})
    identity = pd.Series(rows[[c for c in ("id", "speaker", "label", "gender", "split", "fold") if c in rows]]
                         .agg("\t".join, axis=1).to_numpy(), index=samples)
    fs = assemble(meta, sources, data, features.workers, cache, progress, path, problems={s: [] for s in samples},
                  check=labels_seen_once_in_meta if training else None, identity=identity, skipped=early,
                  name_sample=manifest.describe)
    for entry in fs.skipped:
        entry.setdefault("line", manifest.line(entry["take"]))
    if training and shard is None:
        check_speakers(path, fs.meta["actor"])
    return fs


def labels_seen_once_in_meta(meta: pd.DataFrame) -> dict[str, list[str]]:
    """After samples were left out: labels with one sample left."""
    return labels_seen_once(meta.rename(columns={"take": "id", "emotion": "label"}))
