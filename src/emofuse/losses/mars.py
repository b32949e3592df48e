"""Mars: Multimodal Adaptive Reweighting Strategy.

Stage 1 (epoch < L): w_m = 1.  Stage 2 (epoch >= L): w_m = exp(-gamma_m * (1 - p_m[y])), per sample
and per modality, without gradient, over however many branches the model has (gamma_m per modality name).
A branch keeps full weight on samples it already gets right and is down-weighted on samples it gets badly
wrong (the opposite of focal loss).

Two variants, off by default (the paper's behaviour): ``normalize`` divides each branch's weights by their
batch mean, so that stage 2 moves weight between samples without shrinking the loss (and the step size); under
torchrun that is the mean of the global batch, so that N processes divide by what one process would;
``switch_epoch: auto`` starts stage 2 once the validation loss (NLL of the fused prediction on the validation
actors) has not reached a new low for ``switch_patience`` epochs, instead of at a fixed L.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, model_validator

from emofuse.losses.base import LOSSES, BranchReweightingLoss, global_mean
from emofuse.core.registry import ConfigError

log = logging.getLogger(__name__)


def mars_weight(prob_of_target: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.exp(-gamma * (1.0 - prob_of_target))


@LOSSES.register("mars")
class MarsLoss(BranchReweightingLoss):
    records_branch_weights = True
    comparable_branch_losses = True

    @classmethod
    def marked_epoch(cls, params: dict | None) -> int | None:
        switch = cls.Params.model_validate(params or {}).switch_epoch
        return switch if isinstance(switch, int) else None  # auto: chosen per fold

    @classmethod
    def reweighting(cls, params: dict | None) -> dict:
        return {k: v for k, v in (params or {}).items() if k in ("gamma", "normalize")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gamma: dict[str, NonNegativeFloat] | NonNegativeFloat = Field(1.0, description="one value, or one per modality")
        switch_epoch: NonNegativeInt | Literal["auto"] = Field(
            10, description="L: first epoch (0-based) of stage 2; auto: when the validation loss stops improving"
        )
        switch_patience: int | None = Field(
            None, ge=1, description="switch_epoch auto: epochs without a new lowest validation loss (default 3); "
                                    "null under a fixed switch_epoch")
        normalize: bool = Field(False, description="divide each branch's weights by their mean over the batch")

        @model_validator(mode="after")
        def _patience_needs_auto(self):
            """Filled in under auto, so that a run's recorded parameters validate again as they are."""
            if self.switch_patience is not None and self.switch_epoch != "auto":
                raise ValueError("switch_patience is used only with switch_epoch: auto")
            if self.switch_epoch == "auto" and self.switch_patience is None:
                self.switch_patience = 3
            return self

    @classmethod
    def check_modalities(cls, params: Params, modalities: list[str]) -> None:
        if isinstance(params.gamma, dict):
            missing = [m for m in modalities if m not in params.gamma]
            unknown = [m for m in params.gamma if m not in modalities]
            if missing or unknown:
                raise ConfigError(f"loss.params.gamma needs one value per modality; the modalities are {modalities}, "
                                  f"missing: {missing or 'none'}, not a modality: {unknown or 'none'}")

    def __init__(self, params: Params, modalities: list[str]):
        super().__init__(params, modalities)
        if isinstance(params.gamma, dict):
            self.gamma = dict(params.gamma)
        else:
            self.gamma = {m: float(params.gamma) for m in modalities}
        self.auto = params.switch_epoch == "auto"
        self._switch = {"stage2_from": None if self.auto else params.switch_epoch, "best": math.inf, "bad_epochs": 0}

    @property
    def stage_start_epoch(self) -> int | None:
        """First epoch of stage 2: L, or the epoch the automatic switch chose (None while it has not fired)."""
        return self._switch["stage2_from"]

    def in_stage2(self, epoch: int) -> bool:
        return self.stage_start_epoch is not None and epoch >= self.stage_start_epoch

    def end_epoch(self, epoch: int, val_metrics: dict[str, float]) -> None:
        s = self._switch
        if not self.auto or s["stage2_from"] is not None:
            return
        if "nll" not in val_metrics:
            raise ValueError(f"mars switch_epoch: auto needs the validation loss 'nll'; the evaluator gave {sorted(val_metrics)}")
        if val_metrics["nll"] < s["best"]:
            s["best"], s["bad_epochs"] = float(val_metrics["nll"]), 0
        else:
            s["bad_epochs"] += 1
        if s["bad_epochs"] >= self.params.switch_patience:
            s["stage2_from"] = epoch + 1
            log.info("mars: validation loss has not improved for %d epochs; stage 2 from epoch %d",
                     self.params.switch_patience, epoch + 1)

    def get_extra_state(self) -> dict:
        return dict(self._switch)

    def set_extra_state(self, state: dict) -> None:
        self._switch = dict(state)

    def branch_weights(self, branch_logits, target, epoch, presence=None):
        if not self.in_stage2(epoch):
            return {m: torch.ones_like(target, dtype=torch.float32) for m in branch_logits}
        weights = {}
        for m, z in branch_logits.items():
            p_true = z.softmax(dim=-1).gather(1, target[:, None]).squeeze(1)
            w = mars_weight(p_true, self.gamma[m])
            weights[m] = w / global_mean(w, (presence or {}).get(m)) if self.params.normalize else w
        return weights

    def forward(self, output, target, epoch):
        out = super().forward(output, target, epoch)
        out.terms["stage"] = 2.0 if self.in_stage2(epoch) else 1.0
        return out
