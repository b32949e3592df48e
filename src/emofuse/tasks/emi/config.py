"""Typed configuration of an EMI regression run (feature directory in, continuous targets out).

Validated when loaded, like the classification experiments: an unknown key, an ill-typed value or
an inconsistent combination (a VAD term without the VAD latent, a monitor the evaluator does not
produce) is an error naming the key before any data is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from emofuse.config.loading import load_config
from emofuse.config.schema import EarlyStoppingConfig, Passes, TrainConfig, check_monitor
from emofuse.core.registry import Strict, did_you_mean
from emofuse.tasks.emi.loss import EmiLossConfig
from emofuse.tasks.emi.model import EmiModelConfig


class EmiDataConfig(Strict):
    modalities: list[str] = Field(min_length=1, description="feature sub-directories (or .npz archives) of the data root")
    targets: list[str] = Field(min_length=1, description="target columns of labels.csv")
    vad_columns: list[str] | None = Field(
        None, min_length=3, max_length=3,
        description="valence, arousal, dominance pseudo-label columns of labels.csv (for loss.vad_target: columns)")
    standardize: bool = Field(True, description="z-score each feature dimension with statistics of the training frames")

    @field_validator("modalities", "targets")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"named more than once: {dup}")
        return names


class EmiTrainConfig(TrainConfig):
    """The trainer's settings with the EMI recipe's defaults (EMA 0.999 warmed up, early stopping on mean Pearson)."""

    ema_decay: Annotated[float, Field(gt=0, lt=1)] | Passes | None = 0.999
    ema_warmup: bool = Field(True, description="warm the EMA decay up (training/ema.py): one decay serves every data size")
    early_stopping: EarlyStoppingConfig | None = Field(
        default_factory=lambda: EarlyStoppingConfig(monitor="pearson_mean", mode="max", patience=8))


class EmiConfig(Strict):
    name: str
    description: str = Field("", description="one line for tables (the ablation row)")
    seed: int = 0
    data: EmiDataConfig
    model: EmiModelConfig = Field(default_factory=EmiModelConfig)
    loss: EmiLossConfig = Field(default_factory=EmiLossConfig)
    train: EmiTrainConfig = Field(default_factory=EmiTrainConfig)
    linear_peer: bool = Field(True, description="also fit ridge regressions on the same inputs (per modality, "
                                                "concatenated, late average; tasks/emi/peer.py) and report the network "
                                                "beside them; false: not (very large data)")

    @model_validator(mode="after")
    def _consistent(self) -> "EmiConfig":
        if self.model.vad and self.model.vad_modality not in self.data.modalities:
            raise ValueError(f"model.vad_modality '{self.model.vad_modality}' is not in data.modalities "
                             f"{self.data.modalities}{did_you_mean(self.model.vad_modality, self.data.modalities)} "
                             f"(or set model.vad: false)")
        if self.loss.vad and not self.model.vad:
            raise ValueError("loss.vad > 0 regularises the VAD latent, but model.vad is false (set loss.vad: 0)")
        if self.loss.vad and self.loss.vad_target == "columns" and not self.data.vad_columns:
            raise ValueError("loss.vad_target 'columns' needs data.vad_columns")
        if self.data.vad_columns and not (self.loss.vad and self.loss.vad_target == "columns"):
            raise ValueError("data.vad_columns is set but unused (needs loss.vad > 0 and loss.vad_target: columns)")
        es = self.train.early_stopping
        if es is not None:
            check_monitor(es.monitor, ["pearson_mean", "mse", *(f"pearson/{t}" for t in self.data.targets)])
        return self

    @property
    def extra_columns(self) -> list[str]:
        """labels.csv columns the loss reads besides the targets."""
        return list(self.data.vad_columns or [])


def load_emi_config(path: str | Path, overrides: list[str] | None = None) -> EmiConfig:
    return load_config(path, overrides, schema=EmiConfig)
