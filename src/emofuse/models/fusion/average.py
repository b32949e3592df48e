"""Decision fusion by averaging: p = mean_m softmax(z_m). No parameters of its own (Mars' fusion)."""

from __future__ import annotations

import torch

from emofuse.models.fusion.base import FUSIONS, Fusion, FusionOutput


@FUSIONS.register("average")
class AverageFusion(Fusion):
    def forward(self, features, branch_logits: dict[str, torch.Tensor]) -> FusionOutput:
        probs = torch.stack([z.float().softmax(dim=-1) for z in branch_logits.values()]).mean(0)
        return FusionOutput(probs=probs)
