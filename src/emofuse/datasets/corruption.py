"""Controlled corruption of a fold's data: planted label noise and corrupted modality inputs.

Both are properties of the data set, drawn once per seed: which clips of each actor are flipped (or lose a
modality) does not depend on the fold, so a clip flipped in one fold's training data is flipped in every fold
where it is a training or validation clip, and it is scored with its true label in the fold where it is a test
clip. Labels of test clips are never changed.

Modality noise acts on the model's inputs, after standardisation with statistics of the clean training
features: a level then means the same thing in every fold and on every split (the standardised features have
unit power per dimension on the training clips, so an SNR of s dB is Gaussian noise of variance 10^(-s/10)),
and a test-only corruption meets the model with the statistics it was trained with. A missing modality enters
as zeros after standardisation, i.e. the training mean (mean imputation), which every fusion (decision-,
feature- or model-level) can take, so the methods are compared on the same inputs.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from emofuse.config.schema import DataConfig, LabelNoiseConfig, ModalityNoiseConfig
from emofuse.core.errors import DataError

SPLITS = ("train", "val", "test")
MODALITY_SPLITS = {"train": ("train", "val"), "test": ("test",), "both": SPLITS}


def _key(value) -> int:
    return zlib.crc32(str(value).encode())


def _rng(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng([seed % 2**32, *(_key(k) for k in keys)])


def chosen_per_actor(actors: np.ndarray, takes: np.ndarray, share: float, seed: int, salt: str) -> np.ndarray:
    """Mask of round(share x n) clips of every actor (n: that actor's clips); it depends on the seed, the actor and
    the take names only, so every fold sees the same clips chosen."""
    mask = np.zeros(len(actors), dtype=bool)
    for actor in pd.unique(actors):
        rows = np.flatnonzero(actors == actor)
        rows = rows[np.argsort(takes[rows], kind="stable")]
        k = int(math.floor(share * len(rows) + 0.5))
        mask[_rng(seed, salt, actor).choice(rows, k, replace=False)] = True
    return mask


def symmetric_targets(labels: np.ndarray, takes: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """Each clip's label moved to a uniformly drawn other class (drawn per take)."""
    offsets = np.array([_rng(seed, "symmetric", t).integers(1, n_classes) for t in takes], dtype=labels.dtype)
    return (labels + offsets) % n_classes


def most_confusable(matrix: np.ndarray) -> np.ndarray:
    """For each true class (row), the other class it is most often taken for: the row's largest off-diagonal entry."""
    off = np.array(matrix, dtype=float)
    np.fill_diagonal(off, -np.inf)
    return off.argmax(1)


def read_confusion_csv(path: Path, class_names) -> np.ndarray:
    try:
        table = pd.read_csv(path, index_col=0)
    except (OSError, ValueError) as err:
        raise DataError(path, f"data.label_noise.confusion_from: not a readable CSV ({err})") from None
    names = list(class_names)
    missing = sorted(set(names) - set(map(str, table.index)) | set(names) - set(map(str, table.columns)))
    if missing:
        raise DataError(path, f"data.label_noise.confusion_from: the confusion matrix needs a row and a column for "
                              f"every class {names}; missing {missing}")
    table.index, table.columns = table.index.map(str), table.columns.map(str)
    return table.loc[names, names].to_numpy(dtype=float)


def validation_confusion(run_dir: Path, class_names, fold_index: int, test_actors) -> np.ndarray:
    """Soft confusion matrix (mean fused probability of each class, per true class) of a clean run's validation
    predictions in the same fold. Its validation actors are drawn from that fold's training actors, so none of
    this fold's test speakers shapes the map."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise DataError(run_dir, "data.label_noise.confusion_from: not an `emofuse cv` run directory (no config.yaml)")
    noise = (yaml.safe_load(config_path.read_text()).get("data") or {}).get("label_noise")
    if noise and noise.get("rate", 0) > 0:
        raise DataError(config_path, "data.label_noise.confusion_from: this run has label noise itself; name a clean run")
    fold_dir = run_dir / "folds" / f"fold_{fold_index}"
    result_path, predictions_path = fold_dir / "result.json", fold_dir / "val_predictions.csv"
    for path in (result_path, predictions_path):
        if not path.is_file():
            raise DataError(path, f"data.label_noise.confusion_from: fold {fold_index} of the clean run is missing this "
                                  "file (run it to the end with this version of emofuse)")
    val_actors = {str(a) for a in json.loads(result_path.read_text())["val_actors"]}
    leaked = sorted(val_actors & {str(a) for a in test_actors})
    if leaked:
        raise DataError(result_path, f"data.label_noise.confusion_from: the clean run's validation actors {leaked} are "
                                     f"test actors of fold {fold_index} here; use a run with the same folds")
    table = pd.read_csv(predictions_path)
    names = list(class_names)
    probs = table[[f"prob_{c}" for c in names]].to_numpy()
    truth = table["label"].map({c: i for i, c in enumerate(names)}).to_numpy()
    matrix = np.zeros((len(names), len(names)))
    for k in range(len(names)):
        if (truth == k).any():
            matrix[k] = probs[truth == k].mean(0)
    return matrix


def confusable_targets(config: LabelNoiseConfig, class_names, fold_index: int, test_actors) -> np.ndarray:
    source = Path(config.confusion_from)
    if source.is_dir():
        matrix = validation_confusion(source, class_names, fold_index, test_actors)
    elif source.is_file():
        matrix = read_confusion_csv(source, class_names)
    else:
        raise DataError(source, "data.label_noise.confusion_from: no such run directory or CSV file")
    return most_confusable(matrix)


def corrupt_values(values, takes: np.ndarray, missing: np.ndarray, config: ModalityNoiseConfig, seed: int):
    """One modality's standardised rows (N, D) or N sequences (T_i, D), corrupted; ``missing`` marks the rows that
    lose the modality (kind missing)."""
    sequences = isinstance(values, list)
    rows = [np.array(v, dtype=np.float32, copy=True) for v in values] if sequences else np.array(values, np.float32, copy=True)
    for i, take in enumerate(takes):
        row = rows[i]
        if config.kind == "gaussian" and math.isfinite(config.level):
            sigma = 10.0 ** (-config.level / 20.0)
            row += (sigma * _rng(seed, "gaussian", take).standard_normal(row.shape)).astype(np.float32)
        elif config.kind == "dropout":
            dims = row.shape[-1]
            k = int(math.floor(config.level * dims + 0.5))
            row[..., _rng(seed, "dropout", take).choice(dims, k, replace=False)] = 0.0
        elif config.kind == "missing" and missing[i]:
            row[...] = 0.0
    return rows


class FoldCorruption:
    """The corruption a config plants in one fold: labels and inputs of the rows of each split."""

    def __init__(self, data: DataConfig, meta: pd.DataFrame, class_names, run_seed: int, fold_index: int, test_actors):
        self.label_config, self.noise_config = data.label_noise, data.modality_noise
        self.meta = meta.reset_index(drop=True)
        self.class_names = list(class_names)
        self.takes = self.meta["take"].astype(str).to_numpy()
        actors = self.meta["actor"].to_numpy()
        labels = self.meta["label"].to_numpy()
        self.noisy_labels = labels
        self.flipped: dict[str, np.ndarray] = {}
        self.corrupted: dict[str, int] = {}
        lc = self.label_config
        if lc is not None and lc.rate > 0:
            seed = run_seed if lc.seed is None else lc.seed
            flip = chosen_per_actor(actors, self.takes, lc.rate, seed, "label")
            if lc.kind == "symmetric":
                targets = symmetric_targets(labels, self.takes, len(self.class_names), seed)
            else:
                targets = confusable_targets(lc, self.class_names, fold_index, test_actors)[labels]
            self.noisy_labels = np.where(flip, targets, labels)
        nc = self.noise_config
        self.noise_seed = run_seed if nc is None or nc.seed is None else nc.seed
        self.missing = (chosen_per_actor(actors, self.takes, nc.level, self.noise_seed, "missing")
                        if nc is not None and nc.kind == "missing" else np.zeros(len(self.meta), dtype=bool))

    def apply(self, split: str, rows: np.ndarray, features: dict, labels: np.ndarray) -> tuple[dict, np.ndarray]:
        """The split's (standardised) features and labels as this fold trains, selects or tests on them."""
        if self.label_config is not None and split in self.label_config.splits:
            labels = self.noisy_labels[rows]
            self.flipped[split] = rows[labels != self.meta["label"].to_numpy()[rows]]
        nc = self.noise_config
        if nc is not None and split in MODALITY_SPLITS[nc.where]:
            features = dict(features)
            features[nc.modality] = corrupt_values(features[nc.modality], self.takes[rows], self.missing[rows], nc,
                                                   self.noise_seed)
            self.corrupted[split] = len(rows) if nc.kind != "missing" else int(self.missing[rows].sum())
        return features, labels

    def flipped_table(self) -> pd.DataFrame:
        """One row per flipped clip of this fold: clip, take, actor, split, label (true), noisy_label."""
        parts = []
        for split, rows in self.flipped.items():
            part = self.meta.loc[rows, ["clip", "take", "actor"]].assign(split=split)
            part["label"] = [self.class_names[i] for i in self.meta["label"].to_numpy()[rows]]
            part["noisy_label"] = [self.class_names[i] for i in self.noisy_labels[rows]]
            parts.append(part)
        columns = ["clip", "take", "actor", "split", "label", "noisy_label"]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)

    def summary(self) -> dict:
        out = {}
        if self.label_config is not None:
            out["label_noise"] = {"flipped": {s: int(len(r)) for s, r in self.flipped.items()}}
        if self.noise_config is not None:
            out["modality_noise"] = {"corrupted_clips": dict(self.corrupted)}
        return out


def plants_corruption(data: DataConfig) -> bool:
    return data.label_noise is not None or data.modality_noise is not None
