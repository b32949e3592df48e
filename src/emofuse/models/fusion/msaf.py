"""MSAF, Multimodal Split Attention Fusion (Su et al. 2020), between encoder stages.

Each modality's channels are split into blocks of ``block_channels`` (the last one zero-padded); the blocks of a
modality are summed and squeezed (mean over time / space), the descriptors of all modalities are summed into one
joint code Z = ReLU(BN(W S)), and every block b gets its own channel attention from a softmax over all blocks of
all modalities: a_b = softmax_b(W_b Z), mapped to lowest + a_b (1 - lowest). Blocks are re-scaled by their
attention. Defined for any number of modalities (the paper fuses three on CMU-MOSEI). The prediction is the
average of the branch decisions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.fusion.average import average_probs
from emofuse.models.fusion.base import FUSIONS, Fusion, FusionInputs, FusionOutput, block_positions, squeeze


class MSAFBlock(nn.Module):
    def __init__(self, channels: dict[str, int], block_channels: int, reduction: int, lowest: float):
        super().__init__()
        self.block_channels, self.lowest = block_channels, lowest
        self.n_blocks = {m: math.ceil(c / block_channels) for m, c in channels.items()}
        reduced = max(1, block_channels // reduction)
        self.joint = nn.Sequential(nn.Linear(block_channels, reduced), nn.BatchNorm1d(reduced), nn.ReLU())
        self.attend = nn.ModuleList(nn.Linear(reduced, block_channels) for _ in range(sum(self.n_blocks.values())))

    def split(self, h: torch.Tensor, m: str) -> torch.Tensor:
        """(B, C, ...) -> (B, n_blocks, block_channels, ...), zero-padding the channels."""
        pad = self.n_blocks[m] * self.block_channels - h.shape[1]
        if pad:
            h = torch.cat([h, h.new_zeros(h.shape[0], pad, *h.shape[2:])], dim=1)
        return h.reshape(h.shape[0], self.n_blocks[m], self.block_channels, *h.shape[2:])

    def forward(self, states: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> dict[str, torch.Tensor]:
        blocks = {m: self.split(h, m) for m, (h, _) in states.items()}
        joint = sum(squeeze(blocks[m].sum(1), lengths) for m, (_, lengths) in states.items())
        z = self.joint(joint)
        attention = F.softmax(torch.stack([a(z) for a in self.attend], dim=1), dim=1)  # (B, all blocks, block_channels)
        attention = self.lowest + attention * (1 - self.lowest)
        out, start = {}, 0
        for m, (h, _) in states.items():
            a = attention[:, start:start + self.n_blocks[m]]
            start += self.n_blocks[m]
            scaled = blocks[m] * a.reshape(*a.shape, *([1] * (h.dim() - 2)))
            out[m] = scaled.flatten(1, 2)[:, : h.shape[1]]
        return out


@FUSIONS.register("msaf")
class MSAFFusion(Fusion):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        after_stages: list[int] | None = Field(None, description="0-based stages followed by a block (default: all shared)")
        block_channels: int = Field(32, ge=1)
        reduction: int = Field(4, ge=1)
        lowest_attention: float = Field(0.0, ge=0, lt=1)

    def __init__(self, params: Params, feature_dims, n_classes, stage_dims=None):
        super().__init__(params, feature_dims, n_classes, stage_dims)
        for i in block_positions(params.after_stages, self.stage_dims, "msaf"):
            channels = {m: dims[i] for m, dims in self.stage_dims.items()}
            self.stage_blocks[str(i)] = MSAFBlock(channels, params.block_channels, params.reduction, params.lowest_attention)

    def forward(self, inputs: FusionInputs) -> FusionOutput:
        return FusionOutput(probs=average_probs(inputs.branch_logits))
