"""Multiplicative combination losses over the branches, both with constant (no-gradient) weights on
CE_m = -log p_m[y], over M branches:

- Multiplication (Liu et al. 2018, "Learn to combine modalities"): w_m = (prod_{j != m} (1 - p_j[y]))^(beta/(M-1)):
  a branch is pushed on a sample only as far as the other branches get it wrong.
- M3ER (Mittal et al. 2020): w_m = p_m[y]^(beta/(M-1)): a branch that already trusts the true class counts more,
  so unreliable (e.g. noisy) modalities of a sample are suppressed; beta = 0.2 in the Mars paper's comparison.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat

from emofuse.losses.base import LOSSES, BranchReweightingLoss


def true_class_probs(branch_logits: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
    return {m: z.softmax(-1).gather(1, target[:, None]).squeeze(1) for m, z in branch_logits.items()}


class _BetaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    beta: NonNegativeFloat = Field(0.2)


def exponent(beta: float, n_branches: int) -> float:
    return beta / max(1, n_branches - 1)


@LOSSES.register("multiplication")
class MultiplicationLoss(BranchReweightingLoss):
    class Params(_BetaParams):
        beta: NonNegativeFloat = Field(0.5, description="Liu et al.'s beta (the Mars paper does not state it)")

    def branch_weights(self, branch_logits, target, epoch, presence=None):
        p = true_class_probs(branch_logits, target)
        k = exponent(self.params.beta, len(p))
        presence = presence or {}
        weights = {}
        for m in p:  # a branch the sample lacks gets it nothing wrong: a factor 1
            others = [torch.where(presence[j], 1 - p[j], 1) if j in presence else 1 - p[j] for j in p if j != m]
            weights[m] = torch.stack(others).prod(0) ** k if others else torch.ones_like(p[m])
        return weights


@LOSSES.register("m3er")
class M3ERLoss(BranchReweightingLoss):
    Params = _BetaParams

    def branch_weights(self, branch_logits, target, epoch, presence=None):
        p = true_class_probs(branch_logits, target)
        k = exponent(self.params.beta, len(p))
        return {m: pm ** k for m, pm in p.items()}
