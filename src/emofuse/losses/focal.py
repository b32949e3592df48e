"""Focal loss per branch (Lin et al. 2017): l_m = -(1 - p_m[y])^gamma log p_m[y].

Hard samples of a branch get more weight: the opposite of Mars. The modulating factor keeps its gradient,
as in the original loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat

from emofuse.losses.base import LOSSES, Loss, LossOutput, branch_presence, present_mean


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample focal loss (B,)."""
    log_p = F.log_softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
    return -((1 - log_p.exp()) ** gamma) * log_p


@LOSSES.register("focal")
class FocalLoss(Loss):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gamma: NonNegativeFloat = Field(2.0, description="focusing parameter; 0 is cross-entropy")

    def forward(self, output, target, epoch) -> LossOutput:
        total = torch.zeros((), device=target.device)
        terms = {}
        presence = branch_presence(output)
        for m, z in output.branch_logits.items():
            term = present_mean(focal_loss(z, target, self.params.gamma), presence.get(m))
            total = total + term
            terms[f"focal/{m}"] = term.item()
        return LossOutput(total=total, terms=terms)
