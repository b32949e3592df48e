"""Small stateful training callbacks (Lightning-style): early stopping and best-checkpoint tracking."""

from __future__ import annotations

import math


class EarlyStopping:
    def __init__(self, monitor: str, mode: str = "max", patience: int = 10, min_epochs: int = 0):
        self.monitor, self.mode, self.patience, self.min_epochs = monitor, mode, patience, min_epochs
        self.best = -math.inf if mode == "max" else math.inf
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        return value > self.best if self.mode == "max" else value < self.best

    def step(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record this epoch's metric; True when training should stop."""
        value = metrics[self.monitor]
        if self.improved(value):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return epoch + 1 >= self.min_epochs and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class BestTracker:
    """Which epoch from ``first_epoch`` on scored best on the validation monitor (first best wins ties)."""

    def __init__(self, monitor: str, mode: str = "max", first_epoch: int = 0):
        self.monitor, self.mode, self.first_epoch = monitor, mode, first_epoch
        self.best = -math.inf if mode == "max" else math.inf
        self.best_epoch = -1

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        if epoch < self.first_epoch:
            return False
        value = metrics[self.monitor]
        better = value > self.best if self.mode == "max" else value < self.best
        if better:
            self.best, self.best_epoch = value, epoch
        return better

    def take(self, epoch: int) -> bool:
        """Without a validation score (a final fit), every epoch is taken, so the last one run is kept."""
        self.best_epoch = epoch
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
