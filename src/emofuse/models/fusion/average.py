"""Decision fusion by averaging: p = mean_m softmax(z_m) over the branches present (Mars' fusion).

No parameters of its own; a modality missing at prediction time simply drops out of the mean.
"""

from __future__ import annotations

import torch

from emofuse.models.fusion.base import FUSIONS, Fusion, FusionInputs, FusionOutput


def average_probs(branch_logits: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack([z.float().softmax(dim=-1) for z in branch_logits.values()]).mean(0)


@FUSIONS.register("average")
class AverageFusion(Fusion):
    def forward(self, inputs: FusionInputs) -> FusionOutput:
        return FusionOutput(probs=average_probs(inputs.branch_logits))
