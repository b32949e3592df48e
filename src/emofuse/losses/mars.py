"""Mars: Multimodal Adaptive Reweighting Strategy.

Stage 1 (epoch < L): w_m = 1.  Stage 2 (epoch >= L): w_m = exp(-gamma_m * (1 - p_m[y])), per sample
and per modality, without gradient. A branch keeps full weight on samples it already gets right
and is down-weighted on samples it gets badly wrong (the opposite of focal loss).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat

from emofuse.losses.base import LOSSES, BranchReweightingLoss


def mars_weight(prob_of_target: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.exp(-gamma * (1.0 - prob_of_target))


@LOSSES.register("mars")
class MarsLoss(BranchReweightingLoss):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gamma: dict[str, NonNegativeFloat] | NonNegativeFloat = Field(1.0, description="one value, or one per modality")
        switch_epoch: int = Field(10, ge=0, description="L: first epoch (0-based) of stage 2")

    def __init__(self, params: Params, modalities: list[str]):
        super().__init__(params, modalities)
        if isinstance(params.gamma, dict):
            if set(params.gamma) != set(modalities):
                raise ValueError(f"mars gamma names {sorted(params.gamma)} but the modalities are {sorted(modalities)}")
            self.gamma = dict(params.gamma)
        else:
            self.gamma = {m: float(params.gamma) for m in modalities}

    @property
    def stage_start_epoch(self) -> int:
        return self.params.switch_epoch

    def branch_weights(self, branch_logits, target, epoch):
        if epoch < self.params.switch_epoch:
            return {m: torch.ones_like(target, dtype=torch.float32) for m in branch_logits}
        weights = {}
        for m, z in branch_logits.items():
            p_true = z.softmax(dim=-1).gather(1, target[:, None]).squeeze(1)
            weights[m] = mars_weight(p_true, self.gamma[m])
        return weights
