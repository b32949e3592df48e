"""The training budget: how long a run may train, and a record of how long it did.

A staged loss (Mars: plain cross-entropy until epoch L, reweighting from L on) is only tried once its last
stage has had a full patience window, so early stopping never ends such a run before ``L + patience``
epochs; otherwise a run that plateaus in stage 1 stops before the method it is named after ever acts.
A comparison gives every method the strictest of these minimums, so no method is cut shorter than another.
"""

from __future__ import annotations

from collections import Counter

from emofuse.config.schema import EarlyStoppingConfig, ExperimentConfig
from emofuse.losses import LOSSES


def minimum_epochs(early_stopping: EarlyStoppingConfig | None, schedule_epochs: int, stage_start_epoch: int | None = 0) -> int:
    """Epochs a run trains before early stopping may end it: ``max(min_epochs, stage start + patience)``,
    or the whole schedule without early stopping or while the stage start is still undecided (None: a loss that
    decides it during training, Mars' ``switch_epoch: auto``)."""
    if early_stopping is None or stage_start_epoch is None:
        return schedule_epochs
    return max(early_stopping.min_epochs, stage_start_epoch + early_stopping.patience)


def stage_start_epoch(config: ExperimentConfig) -> int:
    """First epoch (0-based) of the config's loss's last stage (0 for single-stage losses, and for a loss that decides
    it during training, whose run then enforces its own minimum)."""
    return LOSSES.create(config.loss.name, config.loss.params, modalities=list(config.data.modalities)).stage_start_epoch or 0


def config_minimum_epochs(config: ExperimentConfig) -> int:
    return minimum_epochs(config.train.early_stopping, config.train.epochs, stage_start_epoch(config))


def with_minimum_epochs(config: ExperimentConfig, epochs: int) -> ExperimentConfig:
    """``config`` with early stopping forbidden before ``epochs`` (unchanged without early stopping)."""
    es = config.train.early_stopping
    if es is None:
        return config
    train = config.train.model_copy(update={"early_stopping": es.model_copy(update={"min_epochs": epochs})})
    return config.model_copy(update={"train": train})


def fold_budget(schedule_epochs: int, min_epochs: int, stage_start: int, epochs_run: int, best_epoch: int,
                selection_from_epoch: int) -> dict:
    """What one fit's budget was and how it was used (``result.json`` of a fold); a stage decided during training that
    never started is recorded as starting at ``schedule_epochs``."""
    stage_start = schedule_epochs if stage_start is None else stage_start
    return {
        "schedule_epochs": schedule_epochs,  # the cosine learning-rate schedule's length
        "min_epochs": min_epochs,
        "stage_start_epoch": stage_start,
        "epochs_run": epochs_run,
        "stop_reason": "budget_end" if epochs_run >= schedule_epochs else "patience",
        "selection_from_epoch": selection_from_epoch,
        "best_epoch_in_last_stage": best_epoch >= stage_start,
    }


def summarize_budgets(budgets: list[dict]) -> dict:
    """The folds' budgets in one record (``results.json``)."""
    if not budgets:
        return {}
    first = budgets[0]
    return {
        "schedule_epochs": first["schedule_epochs"],
        "min_epochs": first["min_epochs"],
        "stage_start_epoch": first["stage_start_epoch"],
        "epochs_run": [b["epochs_run"] for b in budgets],
        "stop_reasons": dict(Counter(b["stop_reason"] for b in budgets)),
        "best_epoch_in_last_stage": sum(b["best_epoch_in_last_stage"] for b in budgets),
        "n_folds": len(budgets),
    }
