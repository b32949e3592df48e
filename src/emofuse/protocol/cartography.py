"""Training dynamics of every training clip, per branch (dataset cartography, Swayamdipta et al. 2020).

After each epoch the training clips are scored in eval mode; a clip's trajectory of p_m[y] (the probability
branch m gives the label it is trained on) summarises into its *confidence* (mean over epochs), *variability*
(standard deviation over epochs) and *correctness* (share of epochs whose prediction is the label). Easy clips
sit at high confidence, hard-to-learn ones at low confidence and low variability, where mislabelled clips are
expected too; the Mars weight exp(-gamma_m (1 - p_m[y])) sees only the last point of the trajectory. A clip without
modality m (a corpus without it, in a manifest of several) has no trajectory on branch m: NaN, not a hard clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from emofuse.config.schema import TrainConfig
from emofuse.core.atomic import atomic_write
from emofuse.metrics.classification import predict
from emofuse.datasets.feature_set import FeatureSet
from emofuse.training.batches import TensorData


def records_dynamics(setting: str, features: dict) -> bool:
    """``train.record_dynamics``: on, off, or auto (on when every input is one vector per clip, where an extra
    pass over the training clips per epoch costs little)."""
    if setting == "auto":
        return all(isinstance(v, np.ndarray) and v.ndim == 2 for v in features.values())
    return setting == "on"


def _save_npz(path: Path, arrays: dict) -> None:
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


class DynamicsRecorder:
    """Epoch callback: each branch's p_m[y] and predicted class on every training clip, saved after every epoch
    (a resumed fold keeps the epochs before the one it restarts at)."""

    def __init__(self, model: nn.Module, train: TensorData, train_meta: pd.DataFrame, class_names, path: Path,
                 batch_size: int = 256):
        self.model, self.train, self.path, self.batch_size = model, train, Path(path), batch_size
        self.labels = train.target.numpy()
        self.meta = {
            "clip": np.asarray(train_meta["clip"], dtype=str), "actor": np.asarray(train_meta["actor"], dtype=str),
            "label": self.labels, "true_label": train_meta["label"].to_numpy(),
            "class_names": np.asarray(class_names, dtype=str),
        }
        self.epochs: list[int] = []
        self.p_label: dict[str, list[np.ndarray]] = {}
        self.pred: dict[str, list[np.ndarray]] = {}
        if self.path.is_file():
            self._resume(np.load(self.path))

    def _resume(self, saved) -> None:
        if not np.array_equal(saved["clip"], self.meta["clip"]) or not np.array_equal(saved["label"], self.labels):
            raise ValueError(f"{self.path}: recorded for other training clips or labels; delete it or use a new run directory")
        self.epochs = saved["epochs"].tolist()
        for m in saved["modalities"]:
            self.p_label[m] = list(saved[f"p_{m}"])
            self.pred[m] = list(saved[f"pred_{m}"])

    def __call__(self, epoch: int, record: dict) -> None:
        keep = sum(e < epoch for e in self.epochs)  # a resumed fold re-runs the epochs after its checkpoint
        self.epochs = self.epochs[:keep] + [epoch]
        preds = predict(self.model, self.train, self.batch_size)
        rows = np.arange(len(self.labels))
        for m, probs in preds.branch_probs.items():
            absent = ~self.train.present(m)
            p_label, pred = probs[rows, self.labels].astype(np.float32), probs.argmax(1).astype(np.int8)
            p_label[absent], pred[absent] = np.nan, -1
            self.p_label[m] = self.p_label.get(m, [])[:keep] + [p_label]
            self.pred[m] = self.pred.get(m, [])[:keep] + [pred]
        arrays = {**self.meta, "epochs": np.asarray(self.epochs), "modalities": np.asarray(list(self.p_label), dtype=str)}
        for m in self.p_label:
            arrays[f"p_{m}"], arrays[f"pred_{m}"] = np.stack(self.p_label[m]), np.stack(self.pred[m])
        _save_npz(self.path, arrays)


def dynamics_recorders(config: TrainConfig, fs: FeatureSet, train_actors, model: nn.Module, train: TensorData,
                       fold_dir: Path | None) -> list[DynamicsRecorder]:
    """The fold's recorder (``fold_dir/dynamics.npz``), if ``train.record_dynamics`` asks for one; none without a
    fold directory (sweep trials, other torchrun ranks)."""
    if fold_dir is None or not records_dynamics(config.record_dynamics, fs.features):
        return []
    train_meta = fs.meta[np.isin(fs.meta["actor"], train_actors)].reset_index(drop=True)
    return [DynamicsRecorder(model, train, train_meta, fs.class_names, fold_dir / "dynamics.npz", config.eval_batch_size)]


@dataclass
class Dynamics:
    """One fold's recorded training dynamics (``dynamics.npz``)."""

    clip: np.ndarray
    actor: np.ndarray
    label: np.ndarray  # the label trained on (noisy where flipped)
    true_label: np.ndarray
    class_names: list[str]
    epochs: np.ndarray
    p_label: dict[str, np.ndarray]  # modality -> (epochs, clips)
    pred: dict[str, np.ndarray]

    @property
    def flipped(self) -> np.ndarray:
        return self.label != self.true_label

    @property
    def modalities(self) -> list[str]:
        return list(self.p_label)

    @classmethod
    def load(cls, path: Path) -> "Dynamics":
        z = np.load(path)
        modalities = [str(m) for m in z["modalities"]]
        return cls(z["clip"], z["actor"], z["label"], z["true_label"], [str(c) for c in z["class_names"]], z["epochs"],
                   {m: z[f"p_{m}"] for m in modalities}, {m: z[f"pred_{m}"] for m in modalities})

    def coordinates(self) -> pd.DataFrame:
        """Per clip and branch: confidence, variability, correctness over the epochs, and p_m[y] of the last epoch
        (NaN on a branch whose modality the clip lacks)."""
        table = pd.DataFrame({"clip": self.clip, "actor": self.actor, "label": [self.class_names[i] for i in self.label],
                              "true_label": [self.class_names[i] for i in self.true_label], "flipped": self.flipped})
        for m, p in self.p_label.items():
            table[f"confidence_{m}"] = p.mean(0)
            table[f"variability_{m}"] = p.std(0)
            table[f"correctness_{m}"] = np.where(self.pred[m][0] < 0, np.nan, (self.pred[m] == self.label[None, :]).mean(0))
            table[f"p_last_{m}"] = p[-1]
        return table
