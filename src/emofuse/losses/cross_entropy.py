"""Plain cross-entropy on every branch (all weights 1): the Averaging baseline and Mars' stage 1."""

from __future__ import annotations

import torch

from emofuse.losses.base import LOSSES, BranchReweightingLoss


@LOSSES.register("cross_entropy")
class BranchCrossEntropy(BranchReweightingLoss):
    comparable_branch_losses = True

    def branch_weights(self, branch_logits, target, epoch, presence=None):
        return {m: torch.ones_like(target, dtype=torch.float32) for m in branch_logits}
