"""1D CNN over MFCC frames, the audio branch of Mars (conv-BN-ReLU-maxpool blocks over time).

Padded frames are zeroed after every block and excluded from the temporal pooling, so in eval mode
a clip's embedding does not depend on how much padding its batch adds.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.encoders.base import ENCODERS, Encoder
from emofuse.models.encoders.layer_mix import layer_mix


def time_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, 1, steps) boolean mask of the valid frames."""
    return (torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None])[:, None, :]


class ConvStage(nn.Module):
    """Conv-BN-ReLU, zero the padding, max-pool by 2; carries the valid lengths along."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, dropout: float):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.BatchNorm1d(out_channels)
        self.pool = nn.MaxPool1d(2, ceil_mode=True)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.norm(self.conv(h)))
        pad = self.kernel_size // 2
        lengths = torch.div(lengths + 2 * pad - self.kernel_size, self.stride, rounding_mode="floor") + 1
        h = h * time_mask(lengths, h.shape[2])  # ReLU output is >= 0, so zeros never win the max-pool
        h = self.dropout(self.pool(h))
        return h, torch.div(lengths + 1, 2, rounding_mode="floor").clamp(min=1)


@ENCODERS.register("cnn1d")
class CNN1DEncoder(Encoder):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        channels: list[int] = Field(default_factory=lambda: [64, 128, 256, 128], min_length=1)
        kernel_size: int = Field(3, ge=1)
        first_stride: int = Field(1, ge=1, description="stride of the first convolution (cheaper on long inputs)")
        pooling: Literal["mean", "max", "meanmax"] = "meanmax"
        dropout: float = Field(0.0, ge=0, lt=1, description="after each block (CPU dropout is costly on long sequences)")
        layer_mix: int | None = Field(None, ge=1, description="input holds this many stacked layers: learn their weighted sum")

    def __init__(self, params: Params, input_dim: int, sequence: bool = True):
        super().__init__()
        if not sequence:
            raise ValueError("the cnn1d encoder takes frame sequences (T, D); use mlp for clip vectors")
        self.pooling = params.pooling
        self.mix, frame_dim = layer_mix(params.layer_mix, input_dim)
        widths = [frame_dim, *params.channels]
        self.stages = nn.ModuleList(
            ConvStage(widths[i], widths[i + 1], params.kernel_size, params.first_stride if i == 0 else 1, params.dropout)
            for i in range(len(params.channels))
        )
        self.stage_dims = list(params.channels)
        self.out_dim = widths[-1] * (2 if params.pooling == "meanmax" else 1)

    def begin(self, x: torch.Tensor, lengths: torch.Tensor | None):
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], device=x.device, dtype=torch.long)
        return self.mix(x).transpose(1, 2) * time_mask(lengths, x.shape[1]), lengths  # (B, D, T), padding zeroed

    def pool(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = time_mask(lengths, h.shape[2])
        pooled = []
        if self.pooling in ("mean", "meanmax"):
            pooled.append((h * mask).sum(2) / mask.sum(2).clamp(min=1))
        if self.pooling in ("max", "meanmax"):
            pooled.append(h.masked_fill(~mask, float("-inf")).amax(2))
        return torch.cat(pooled, dim=1)
