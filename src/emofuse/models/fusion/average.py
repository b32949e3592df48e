"""Decision fusion by averaging: p = mean_m softmax(z_m) over the branches present (Mars' fusion).

No parameters of its own; a modality missing at prediction time simply drops out of the mean, and so, per row, does
a modality the row lacks (``presence``: a training corpus without it): an audio-only row's answer is its audio
branch's.
"""

from __future__ import annotations

import torch

from emofuse.models.fusion.base import FUSIONS, Fusion, FusionInputs, FusionOutput


def average_probs(branch_logits: dict[str, torch.Tensor], presence: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    probs = torch.stack([z.float().softmax(dim=-1) for z in branch_logits.values()])
    if not presence:
        return probs.mean(0)
    weight = torch.stack([presence[m].float() if m in presence else torch.ones(len(z), device=z.device)
                          for m, z in branch_logits.items()])[..., None]  # (M, B, 1)
    return (probs * weight).sum(0) / weight.sum(0).clamp_min(1)


@FUSIONS.register("average")
class AverageFusion(Fusion):
    def forward(self, inputs: FusionInputs) -> FusionOutput:
        return FusionOutput(probs=average_probs(inputs.branch_logits, inputs.presence))
