"""MMTM, the Multimodal Transfer Module (Joze et al. 2020), between encoder stages.

After a stage, each modality's state is squeezed to channel descriptors S_m (mean over time / space), a joint
code Z = ReLU(W [S_1; ...; S_M] + b) is formed, and each modality is re-scaled channel-wise by
2 * sigmoid(W_m Z + b_m): cross-modal squeeze-and-excitation. The paper's block takes any number of modalities
(one joint code from all, one excitation each), and so does this one. The prediction is the average of the
branch decisions, as in Mars' decision fusion.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.fusion.average import average_probs
from emofuse.models.fusion.base import FUSIONS, Fusion, FusionInputs, FusionOutput, block_positions, excite, squeeze


class MMTMBlock(nn.Module):
    def __init__(self, channels: dict[str, int], reduction: float):
        super().__init__()
        total = sum(channels.values())
        joint = max(1, int(2 * total / reduction))
        self.squeeze = nn.Sequential(nn.Linear(total, joint), nn.ReLU())
        self.excite = nn.ModuleDict({m: nn.Linear(joint, c) for m, c in channels.items()})

    def forward(self, states: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> dict[str, torch.Tensor]:
        z = self.squeeze(torch.cat([squeeze(h, lengths) for h, lengths in states.values()], dim=1))
        return {m: excite(h, 2 * torch.sigmoid(self.excite[m](z))) for m, (h, _) in states.items()}


@FUSIONS.register("mmtm")
class MMTMFusion(Fusion):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        after_stages: list[int] | None = Field(None, description="0-based stages followed by a block (default: all shared)")
        reduction: float = Field(4.0, gt=0, description="joint code size = 2 * sum of channels / reduction")

    def __init__(self, params: Params, feature_dims, n_classes, stage_dims=None):
        super().__init__(params, feature_dims, n_classes, stage_dims)
        for i in block_positions(params.after_stages, self.stage_dims, "mmtm"):
            self.stage_blocks[str(i)] = MMTMBlock({m: dims[i] for m, dims in self.stage_dims.items()}, params.reduction)

    def forward(self, inputs: FusionInputs) -> FusionOutput:
        return FusionOutput(probs=average_probs(inputs.branch_logits))
