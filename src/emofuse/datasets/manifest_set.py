"""The FeatureSet of a manifest (data/manifest.py): each modality from the source the data config names.

- audio: ``data.audio_source: media`` puts the ``audio`` file (else the ``video`` file's audio track) through
  ``features.audio``; ``features`` reads the ``audio_features`` .npy files.
- visual: ``data.visual.kind: video`` (a manifest's default) puts the ``video`` file through ``features.visual``
  (default: face features); ``features`` reads ``visual_features``; ``table`` / ``openface_frames`` look each row's
  ``data.visual.key`` column up in a clip table or a folder of OpenFace per-frame CSVs at ``data.visual.path``.
- any other modality ``m`` (touch, physio, ...) is stored per sample, as ``data.sources.m`` says: the ``m_features``
  .npy files (the default), or columns of a CSV table whose rows are found by a manifest column (datasets/feature_table.py).

Everything after that (folds, training, predict, export) is what a RAVDESS directory gets.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from emofuse.config.schema import MEDIA_MODALITIES, DataConfig, FeaturesConfig
from emofuse.core.errors import DataError
from emofuse.datasets.feature_table import ColumnTable
from emofuse.data.manifest import Manifest, check_speakers, labels_seen_once, read_manifest
from emofuse.data.openface import VisualSource
from emofuse.features.base import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import FeatureSet, Source, announce_extraction, assemble, report_incomplete
from emofuse.features.extract import in_shard
from emofuse.datasets.sources import FeatureFiles, FeatureTable, MediaFiles, TextColumn
from emofuse.features.visual.extractors import VIDEO_EXTRACTORS

log = logging.getLogger(__name__)

def modality_files(data: DataConfig) -> dict[str, str]:
    """The file column each modality read from files comes from (a computed modality: ``audio``'s)."""
    files = {}
    for m in data.modalities:
        if m == "audio":
            files[m] = "audio" if data.audio_source == "media" else "audio_features"
        elif m == "visual" and data.visual.kind in ("video", "features"):
            files[m] = "video" if data.visual.kind == "video" else "visual_features"
        elif m != "visual" and data.source(m).kind == "features":
            files[m] = f"{m}_features"
        elif m != "visual" and data.source(m).computed:
            files[m] = "audio"
    return files


def needed_columns(data: DataConfig) -> tuple[list[str], list[str]]:
    """(file columns, key columns) the data config reads from a manifest."""
    from_files = modality_files(data)
    keys = []
    for m in data.modalities:
        if m in from_files:
            continue
        elif m == "visual":
            keys.append(data.visual.key)
        elif data.source(m).kind == "transcript":
            keys.append(data.source(m).column)
        elif data.source(m).key != "id":  # every row has its id
            keys.append(data.source(m).key)
    return list(dict.fromkeys(from_files.values())), keys


def absent_samples(manifest: Manifest, data: DataConfig) -> dict[str, set[str]]:
    """Per modality, the rows of the corpora without it (``Manifest.absent``), said once per corpus."""
    by_corpus: dict[str, list[str]] = {}
    absent: dict[str, set[str]] = {}
    for m, column in modality_files(data).items():
        corpora = manifest.absent.get(column, [])
        if corpora:
            absent[m] = set(manifest.rows.loc[manifest.rows["corpus"].isin(corpora), "id"])
        for corpus in corpora:
            by_corpus.setdefault(corpus, []).append(m)
    for corpus, missing in by_corpus.items():
        has = [m for m in data.modalities if m not in missing]
        log.info("corpus %s has no %s: its rows train the %s branch%s only", corpus, " or ".join(missing),
                 " and ".join(has), "es" * (len(has) > 1))
    return absent


def _sources(manifest: Manifest, samples: list[str], data: DataConfig, features: FeaturesConfig,
             expected_dims: dict[str, int]) -> dict[str, Source]:
    def files(column: str) -> dict[str, Path]:  # rows of a corpus without the column have none
        return {s: manifest.files[column][s] for s in samples if s in manifest.files[column]}

    def what(column: str) -> dict[str, str]:
        return {s: f"column '{manifest.columns[column][s]}'" for s in samples if s in manifest.columns[column]}

    def keyed(key: str) -> dict[str, list[str]]:
        values = manifest.rows.set_index("id", drop=False)[key]
        return {s: [values[s]] for s in samples}

    sources: dict[str, Source] = {}
    for m in data.modalities:
        if m == "audio" and data.audio_source == "media":
            sources[m] = MediaFiles(files("audio"), EXTRACTORS.create(features.audio.name, features.audio.params),
                                    what("audio"))
        elif m == "visual" and data.visual.kind == "video":  # the config's validation made sure of a video extractor
            extractor = VIDEO_EXTRACTORS.create(features.visual.name, features.visual.params)
            sources[m] = MediaFiles(files("video"), extractor, what("video"))
        elif m == "visual" and data.visual.kind != "features":
            table = VisualSource(data.visual.kind, manifest.path.parent / data.visual.path)
            sources[m] = FeatureTable(table, keyed(data.visual.key), f"column '{data.visual.key}'")
        elif m not in MEDIA_MODALITIES and data.source(m).computed:
            part = data.source(m).extractor
            sources[m] = MediaFiles(files("audio"), EXTRACTORS.create(part.name, part.params), what("audio"))
        elif m not in MEDIA_MODALITIES and data.source(m).kind == "transcript":
            source = data.source(m)
            texts = manifest.rows.set_index("id")[source.column]
            sources[m] = TextColumn({s: texts[s] for s in samples}, EXTRACTORS.create(source.extractor.name,
                                    source.extractor.params), f"column '{source.column}'")
        elif m in MEDIA_MODALITIES or data.source(m).kind == "features":
            sources[m] = FeatureFiles(files(f"{m}_features"), what(f"{m}_features"), expected_dims.get(m))
        else:
            source = data.source(m)
            table = ColumnTable(manifest.path.parent / source.path, source.key, source.columns, source.prefix)
            if m in expected_dims and len(table.feature_names) != expected_dims[m]:
                raise DataError(table.path, f"{len(table.feature_names)} {m} feature columns, the model was trained "
                                            f"on {expected_dims[m]}")
            sources[m] = FeatureTable(table, keyed(source.key), f"{m} from")
    return sources


def build_manifest_features(path: str | Path, data: DataConfig, features: FeaturesConfig, cache: FeatureCache,
                            progress: bool = True, shard: tuple[int, int] | None = None, training: bool = True,
                            expected_dims: dict[str, int] | None = None, split: str | None = None) -> FeatureSet:
    """Read and check the manifest, get each modality's features and assemble them. ``training=False`` (scoring a
    finished run on it) skips the checks only folds need; ``expected_dims`` are the feature dimensions its model
    takes, which precomputed feature files must have; ``split`` keeps the rows of one split."""
    path = Path(path)
    file_columns, key_columns = needed_columns(data)
    manifest = read_manifest(path, file_columns, key_columns, training,
                             keyed=len(modality_files(data)) < len(data.modalities))
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
                         **({"corpus": rows["corpus"].to_numpy()} if "corpus" in rows else {}),
                         **({"gender": rows["gender"].to_numpy()} if "gender" in rows else {}),
                         "emotion": rows["label"].to_numpy(),
                         **{c: rows[c].to_numpy() for c in ("split", "fold") if c in rows},
                         "line": rows["line"].to_numpy()})
    identity = pd.Series(rows[[c for c in ("id", "speaker", "label", "gender", "split", "fold") if c in rows]]
                         .agg("\t".join, axis=1).to_numpy(), index=samples)
    fs = assemble(meta, sources, data, features.workers, cache, progress, path, problems={s: [] for s in samples},
                  check=labels_seen_once_in_meta if training else None, identity=identity, skipped=early,
                  name_sample=manifest.describe, absent=absent_samples(manifest, data))
    for entry in fs.skipped:
        entry.setdefault("line", manifest.line(entry["take"]))
    if training and shard is None:
        check_speakers(path, fs.meta["actor"])
    return fs


def labels_seen_once_in_meta(meta: pd.DataFrame) -> dict[str, list[str]]:
    """After samples were left out: labels with one sample left."""
    return labels_seen_once(meta.rename(columns={"take": "id", "emotion": "label"}))
