"""Scoring each fold's test clips again under other recording conditions (``protocol.test_conditions``).

Every clip's audio is corrupted once per condition at its fixed setting (data/waveform_augment.py) and put through
the run's audio extractor (features/conditioned.py: cached per condition). A fold's model then scores its test
speakers with their audio features taken from that condition and everything else as for the clean clips: the
fold's standardisation from its (clean) training speakers, and under inductive speaker normalisation a test
speaker's enrolment from their own clips, recorded under the same condition as the clips they are scored on.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.config.schema import ExperimentConfig, FeaturesConfig
from emofuse.core.registry import ConfigError, Part
from emofuse.datasets.build import build_features
from emofuse.datasets.feature_set import FeatureSet
from emofuse.datasets.normalize import replace_rows
from emofuse.features.cache import FeatureCache
from emofuse.metrics.classification import unweighted_recall
from emofuse.metrics.statistics import bootstrap_indices, paired_difference, ratio_interval, speaker_counts

log = logging.getLogger(__name__)

CONDITIONS_DIR = "conditions"  # a fold directory's predictions under each condition: conditions/<name>.csv
CLEAN = "clean"


def conditioned_audio(features: FeaturesConfig, conditions: list, copy_index: int = 0) -> FeaturesConfig:
    """The features config whose audio extractor renders copy ``copy_index`` of each clip under ``conditions`` (one
    drawn per clip when several) before extracting as ``features.audio`` does."""
    audio = Part(name="conditioned", params={"extractor": features.audio.name, "params": features.audio.params,
                                              "conditions": [c.model_dump(mode="json") for c in conditions],
                                              "copy_index": copy_index})
    return features.model_copy(update={"audio": audio})


def audio_copies(config: ExperimentConfig, fs: FeatureSet, data_dir: Path | None, cache: FeatureCache,
                 copies: dict[str, FeaturesConfig], progress: bool) -> dict[str, np.ndarray | list]:
    """Name -> every clip's audio features (rows of ``fs``) under that features config; extracted once, cached."""
    data = config.data
    if "audio" not in data.modalities or data.audio_source != "media":
        raise ConfigError("recording conditions corrupt the audio: they need the audio modality from media files "
                          "(data.audio_source: media)")
    if "audio" in fs.presence and not np.all(fs.presence["audio"]):
        raise ConfigError("recording conditions corrupt the audio, which a corpus of this manifest lacks on some rows: "
                          "leave that corpus out of a run with protocol.test_conditions or features.augment")
    audio_only = data.model_copy(update={"modalities": ["audio"], "sources": {}})
    out = {}
    for name, features in copies.items():
        log.info("audio copy %s: extracting (cached per condition and copy)", name)
        copy = build_features(audio_only, features, data_dir, cache, progress)
        where = pd.Series(np.arange(len(copy.meta)), index=copy.meta["clip"].to_numpy())
        missing = sorted(set(fs.meta["clip"]) - set(where.index))
        if missing:
            raise ConfigError(f"audio copy {name}: no features for {len(missing)} clips, e.g. {missing[:3]} "
                              f"(see the extraction warnings above)")
        rows = where[fs.meta["clip"].to_numpy()].to_numpy()
        values = copy.features["audio"]
        out[name] = [values[i] for i in rows] if isinstance(values, list) else values[rows]
    return out


def test_condition_copies(config: ExperimentConfig, fs: FeatureSet, data_dir: Path | None, cache: FeatureCache,
                          progress: bool = True) -> dict[str, np.ndarray | list]:
    """Condition -> every clip's audio features under it (``protocol.test_conditions``)."""
    wanted = {name: conditioned_audio(config.features, [condition])
              for name, condition in config.protocol.test_conditions.items()}
    return audio_copies(config, fs, data_dir, cache, wanted, progress) if wanted else {}


def with_test_audio(fs: FeatureSet, audio: np.ndarray | list, test_actors) -> FeatureSet:
    """``fs`` with the test speakers' audio features replaced by ``audio``'s (everyone else's stay clean)."""
    rows = np.flatnonzero(np.isin(fs.meta["actor"].to_numpy(), list(test_actors)))
    return dataclasses.replace(fs, features={**fs.features, "audio": replace_rows(fs.features["audio"], rows, audio)})


def condition_summary(fold_dirs: list[Path], clean: pd.DataFrame, names: list[str], seed: int) -> dict:
    """Per condition (clean first): pooled accuracy and UA over every scored clip, a 95 % cluster-bootstrap interval
    of the accuracy over test speakers, and its paired difference from clean (same clips, same bootstrap draw)."""
    def tagged(table: pd.DataFrame) -> pd.DataFrame:
        return table.assign(seed=seed, clip=table["clip"].astype(str), actor=table["actor"].astype(str))

    clean = tagged(clean)
    tables = {CLEAN: clean}
    for name in names:
        tables[name] = tagged(pd.concat([pd.read_csv(d / CONDITIONS_DIR / f"{name}.csv", dtype={"clip": str, "actor": str})
                                         for d in fold_dirs], ignore_index=True))
    indices = None
    out = {}
    for name, table in tables.items():
        counts = speaker_counts(table)
        if indices is None:
            indices = bootstrap_indices(len(counts), 10_000, seed)
        low, high = ratio_interval(counts["correct"].to_numpy(), counts["n"].to_numpy(), indices)
        out[name] = {"accuracy": float((table["label"] == table["pred"]).mean()), "ua": unweighted_recall(table),
                     "accuracy_ci": [low, high], "n_clips": int(len(table))}
        if name != CLEAN:
            diff = paired_difference(table, clean, seed=seed)
            out[name]["minus_clean"] = {k: diff[k] for k in ("difference", "ci_low", "ci_high")}
    return {"interval": "95 % cluster bootstrap over test speakers (10,000 draws)", "conditions": out}

