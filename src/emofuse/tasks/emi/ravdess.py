"""The EMI recipe's real-data check: RAVDESS as continuous emotion intensities, 6 folds by actor.

Targets: one column per non-neutral emotion, 0.5 for a take of that emotion at normal intensity,
1.0 at strong intensity, 0 otherwise (neutral takes are all zeros). Features come from the
existing RAVDESS pipeline (audio extraction with its cache, OpenFace AU table as a one-step visual
sequence, optional transductive per-speaker normalisation) and are written once in the feature-directory layout
(``RUN/features/<modality>/<clip>.npy``). Each fold is a feature directory of its own,
``RUN/data/fold_k/``, holding its labels.csv (split by actor: test = the fold's actors, val = actors
drawn from the training actors only) and links to the shared feature folders; it is trained and
scored by the plain ``emofuse train`` run in ``RUN/folds/fold_k/``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pydantic import BaseModel, ConfigDict, Field, model_validator

from emofuse.config.loading import dump_config, load_config
from emofuse.config.schema import DataConfig, FeaturesConfig, ProtocolConfig, check_visual_features
from emofuse.core.atomic import atomic_write
from emofuse.core.console import listed
from emofuse.data.ravdess import EMOTIONS
from emofuse.tasks.emi.config import EmiConfig
from emofuse.protocol.enrolment import SpeakerInputs
from emofuse.tasks.emi.experiment import run_emi
from emofuse.tasks.emi.peer import pooled_comparison
from emofuse.protocol.folds import Fold, actor_folds
from emofuse.metrics.regression import pearson
from emofuse.features import EXTRACTORS, VIDEO_EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import FeatureSet, build_ravdess_features
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text, logging_to, record_fingerprint, start_run, write_json

log = logging.getLogger(__name__)

TARGETS = EMOTIONS[1:]  # the 7 non-neutral emotions
INTENSITY_VALUE = {1: 0.5, 2: 1.0}


class RavdessSource(BaseModel):
    """Where the check's features come from: the data, features and protocol sections of a RAVDESS config.

    Any classification experiment config qualifies (its other sections are ignored); ``data`` and
    ``features`` are required, so a misspelt section name is an error, not a silent default.
    """

    model_config = ConfigDict(extra="ignore")
    data: DataConfig
    features: FeaturesConfig
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)

    @model_validator(mode="after")
    def _check_extractor(self) -> "RavdessSource":
        EXTRACTORS.validate_params(self.features.audio.name, self.features.audio.params, "features.audio.params")
        check_visual_features(self.data, self.features)
        return self


def load_ravdess_source(path: str | Path) -> RavdessSource:
    return load_config(path, schema=RavdessSource)


def intensity_targets(meta: pd.DataFrame) -> pd.DataFrame:
    """(N, 7) targets: the take's own emotion at 0.5 (normal) or 1.0 (strong), every other emotion 0."""
    values = np.zeros((len(meta), len(TARGETS)))
    for i, (emotion, intensity) in enumerate(zip(meta["emotion"], meta["intensity"])):
        if emotion != "neutral":
            values[i, TARGETS.index(emotion)] = INTENSITY_VALUE[int(intensity)]
    return pd.DataFrame(values, columns=list(TARGETS))


def check_compatible(config: EmiConfig, ravdess: RavdessSource) -> None:
    unknown = [t for t in config.data.targets if t not in TARGETS]
    if unknown:
        raise ConfigError(f"data.targets {unknown} are not RAVDESS intensity targets ({', '.join(TARGETS)})")
    missing = [m for m in config.data.modalities if m not in ravdess.data.modalities]
    if missing:
        raise ConfigError(f"data.modalities {missing} are not produced by the RAVDESS config (it has {ravdess.data.modalities})")
    if ravdess.features.speaker_norm == "inductive":
        raise ConfigError("features.speaker_norm: inductive is not supported by emi-ravdess (its features are written "
                          "once for all folds); use transductive or none")
    visual = ravdess.features.visual
    if "visual" in config.data.modalities and visual is not None and VIDEO_EXTRACTORS.get(visual.name).clips:
        raise ConfigError(f"features.visual '{visual.name}' gives face-crop clips, which the EMI model (feature "
                          "sequences) cannot take; use face_features")


def write_features(fs: FeatureSet, inputs: dict, out: Path) -> None:
    for m, values in inputs.items():
        folder = out / m
        folder.mkdir(parents=True, exist_ok=True)
        for clip, value in zip(fs.meta["clip"], values):
            array = np.atleast_2d(value).astype(np.float32)
            atomic_write(folder / f"{clip}.npy", lambda f: np.save(f, array))


def write_fold_dir(fs: FeatureSet, fold: Fold, features_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    split = np.select([fs.meta["actor"].isin(fold.test_actors), fs.meta["actor"].isin(fold.val_actors)],
                      ["test", "val"], "train")
    labels = pd.concat([pd.DataFrame({"id": fs.meta["clip"], "split": split, "actor": fs.meta["actor"]}),
                        intensity_targets(fs.meta)], axis=1)
    atomic_write_text(out / "labels.csv", labels.to_csv(index=False))
    for m in fs.features:
        link = out / m
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(features_dir / m, out), target_is_directory=True)
    return out


def run_ravdess_emi(config: EmiConfig, ravdess: RavdessSource, data_dir: Path, run_dir: Path, cache_dir: Path,
                    progress: bool = True, only_folds: list[int] | None = None) -> dict:
    check_compatible(config, ravdess)
    run_dir = Path(run_dir)
    with logging_to(run_dir):
        return _run(config, ravdess, Path(data_dir), run_dir, FeatureCache(cache_dir), progress, only_folds)


def _run(config, ravdess, data_dir, run_dir, cache, progress, only_folds) -> dict:
    started = time.perf_counter()
    start_run(run_dir, dump_config(config))
    atomic_write_text(run_dir / "ravdess_config.yaml", dump_config(ravdess))
    data_cfg = ravdess.data.model_copy(update={"modalities": list(config.data.modalities)})
    fs = build_ravdess_features(data_dir, data_cfg, ravdess.features, cache, progress)
    record_fingerprint(run_dir, {"sha256": fs.fingerprint, "data_dir": str(data_dir), "n_takes": len(fs.meta),
                                 "skipped_takes": fs.skipped, "feature_dims": fs.input_dims})
    features_dir = run_dir / "features"
    write_features(fs, SpeakerInputs(fs, ravdess.features, config.seed).own, features_dir)
    folds = actor_folds(fs.meta["actor"].unique(), ravdess.protocol.n_folds, ravdess.protocol.val_fraction, config.seed)
    folds = [f for f in folds if not only_folds or f.index in only_folds]
    rows, tables, peer_tables = [], [], []
    for fold in folds:
        fold_data = write_fold_dir(fs, fold, features_dir, run_dir / "data" / f"fold_{fold.index}")
        log.info("fold %d: test actors %s, val actors %s", fold.index, listed(fold.test_actors), listed(fold.val_actors))
        result = run_emi(config, fold_data, run_dir / "folds" / f"fold_{fold.index}")
        rows.append({"fold": fold.index, "test_actors": list(fold.test_actors), "val_actors": list(fold.val_actors),
                     "train_actors": list(fold.train_actors), "n_test": result["test"]["n"],
                     "val_pearson_mean": result["val"]["pearson_mean"], "test_pearson_mean": result["test"]["pearson_mean"],
                     "test_pearson": result["test"]["pearson"], "best_epoch": result["best_epoch"],
                     "epochs_run": result["epochs_run"]})
        pred = pd.read_csv(run_dir / "folds" / f"fold_{fold.index}" / "test_predictions.csv", dtype={"id": str})
        truth = pd.read_csv(fold_data / "labels.csv", dtype={"id": str}).set_index("id").loc[pred["id"]]
        tables.append(pd.concat([pred[["id"]].assign(fold=fold.index, actor=truth["actor"].to_numpy()),
                                 truth[config.data.targets].reset_index(drop=True),
                                 pred[config.data.targets].add_prefix("pred_")], axis=1))
        peer_file = run_dir / "folds" / f"fold_{fold.index}" / "test_peer_predictions.csv"
        if peer_file.is_file():  # the fold's ridge peer (tasks/emi/peer.py), on the same clips
            peer = pd.read_csv(peer_file, dtype={"id": str}).set_index("id").loc[pred["id"]]
            peer_tables.append(peer[config.data.targets].add_prefix("pred_").reset_index(drop=True))
        log.info("fold %d: test mean Pearson %.4f (val %.4f)", fold.index, rows[-1]["test_pearson_mean"], rows[-1]["val_pearson_mean"])
    predictions = pd.concat(tables, ignore_index=True)
    test = np.array([r["test_pearson_mean"] for r in rows])
    pooled = pearson(predictions[[f"pred_{t}" for t in config.data.targets]].to_numpy(), predictions[config.data.targets].to_numpy())
    summary = {
        "name": config.name, "folds": rows,
        "test_pearson_mean": float(test.mean()),
        "test_pearson_std": float(test.std(ddof=1)) if len(test) > 1 else 0.0,
        "pooled_test_pearson_mean": float(pooled.mean()),
        "pooled_test_pearson": dict(zip(config.data.targets, pooled.round(6).tolist())),
        "targets": "per-emotion intensity: 0.5 normal, 1.0 strong, 0 otherwise (7 non-neutral emotions)",
        "std_note": "sample standard deviation (ddof=1) over folds",
        "speaker_norm": ravdess.features.speaker_norm, "audio_features": ravdess.features.audio.model_dump(),
        "data_fingerprint": fs.fingerprint, "n_clips": len(predictions), "skipped_takes": fs.skipped,
        "seconds": time.perf_counter() - started, "config": config.model_dump(mode="json"),
    }
    if peer_tables and len(peer_tables) == len(tables):
        summary["linear_peer"] = pooled_comparison(predictions, pd.concat(peer_tables, ignore_index=True),
                                                   config.data.targets, config.seed)
        peer = summary["linear_peer"]
        log.info("linear peer (ridge): pooled test mean Pearson %.4f; network - peer %+.4f [%+.4f, %+.4f] (95 %% cluster "
                 "bootstrap over test speakers)", peer["peer_pooled_test_pearson_mean"], peer["network_minus_peer"],
                 peer["ci_low"], peer["ci_high"])
        if peer["below_peer"]:
            log.warning("the network is %.4f mean Pearson below its linear peer, a ridge regression on the same inputs",
                        -peer["network_minus_peer"])
    atomic_write_text(run_dir / "predictions.csv", predictions.to_csv(index=False))
    write_json(run_dir / "results.json", summary)
    atomic_write_text(run_dir / "folds.md", folds_table(summary))
    return summary


def folds_table(summary: dict) -> str:
    lines = ["| fold | test actors | val actors | test mean Pearson | val mean Pearson | best epoch / epochs run |",
             "|---:|---|---|---:|---:|---:|"]
    for r in summary["folds"]:
        lines.append(f"| {r['fold']} | {','.join(map(str, r['test_actors']))} | {','.join(map(str, r['val_actors']))} | "
                     f"{r['test_pearson_mean']:.4f} | {r['val_pearson_mean']:.4f} | {r['best_epoch']} / {r['epochs_run']} |")
    lines.append(f"| mean ± std | | | {summary['test_pearson_mean']:.4f} ± {summary['test_pearson_std']:.4f} | | |")
    return "\n".join(lines) + "\n"
