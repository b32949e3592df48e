"""3D CNN over pressure-grid frame sequences, the tactile branch of Mars on FETE (face + touch).

The paper names the branch only: a 3D CNN over pressure-sensor frames ("d3D", 1.10 M parameters, Table I), on
1-second clips. Where it is silent this follows C3D, its visual backbone on FETE, scaled to a sensor grid: blocks of
a 3x3x3 convolution (stride 1, padding 1), batch norm, ReLU and a max-pool that halves space only in the first block
(1x2x2) and time and space after (2x2x2), as in C3D; a grid side already down to 1 is not pooled further. The
default widths (64, 128, 256) hold 1.11 M parameters, close to the 1.10 M the paper reports.

Input: a per-sample (T, D) array reaches the model as padded frames (B, T, D) with their true ``lengths``; each
frame is a grid flattened row-major, so ``grid: [H, W]`` must give H * W = D, and ``begin`` reshapes to the
(B, 1, T, H, W) layout of ``nn.Conv3d``. Padded frames are zeroed before every convolution and left out of the
pooled mean (over real frames and all cells), so in eval mode a sample's embedding does not depend on its batch's
padding. Tactile feature vectors (D,) take the ``mlp`` encoder instead. ``augment`` flips, turns, rolls or crops the
frames in training (models/encoders/touch_augment.py); ``touch_stats`` is the other touch encoder.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

from emofuse.models.encoders.base import ENCODERS, Encoder
from emofuse.models.encoders.resnext3d import zero_padding
from emofuse.models.encoders.touch_augment import TouchAugment, augment
from emofuse.core.registry import ConfigError


class TouchBlock(nn.Module):
    """Conv-BN-ReLU, zero the padding, max-pool (ceil mode); carries the valid lengths along."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int, int]):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True)
        )
        self.time_stride = pool[0]
        self.pool = nn.MaxPool3d(pool, ceil_mode=True)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pool(zero_padding(self.conv(h), lengths))  # ReLU output >= 0: zeroed frames never win the max
        lengths = torch.div(lengths + self.time_stride - 1, self.time_stride, rounding_mode="floor")
        return h, lengths  # a pooled frame past the new length saw only zeroed frames, so it is zero too


@ENCODERS.register("touch3d")
class Touch3DEncoder(Encoder):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        grid: tuple[PositiveInt, PositiveInt] = Field((8, 8), description="sensor rows and columns [H, W] of a frame")
        channels: list[PositiveInt] = Field(default_factory=lambda: [64, 128, 256], min_length=1,
                                            description="widths of the convolution blocks")
        augment: TouchAugment = Field(default_factory=TouchAugment, description="training-time augmentation")

    def __init__(self, params: Params, input_dim: int, sequence: bool = True):
        super().__init__()
        if not sequence:
            raise ConfigError("the touch3d encoder takes pressure-frame sequences (T, H*W); use mlp for tactile feature vectors")
        self.grid, self.augment = tuple(params.grid), params.augment
        height, width = self.grid
        if params.augment.rotate and height != width:
            raise ConfigError(f"touch3d: augment.rotate turns square grids only; this one is {height}x{width}")
        if input_dim != height * width:
            raise ConfigError(f"the touch3d encoder's grid {height}x{width} has {height * width} cells per frame but the "
                              f"frames have {input_dim} values; set grid: [H, W] with H * W = {input_dim}")
        widths = [1, *params.channels]
        self.stages = nn.ModuleList()
        for i in range(len(params.channels)):
            pool = (1 if i == 0 else 2, 2 if height > 1 else 1, 2 if width > 1 else 1)
            self.stages.append(TouchBlock(widths[i], widths[i + 1], pool))
            height, width = -(-height // pool[1]), -(-width // pool[2])
        self.stage_dims = list(params.channels)
        self.out_dim = widths[-1]

    def begin(self, x: torch.Tensor, lengths: torch.Tensor | None):
        if x.dim() != 3 or x.shape[2] != self.grid[0] * self.grid[1]:
            raise ValueError(f"touch3d expects frames (B, T, {self.grid[0] * self.grid[1]}) of a {self.grid[0]}x{self.grid[1]} "
                             f"grid; got shape {tuple(x.shape)}")
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], device=x.device, dtype=torch.long)
        if self.training and self.augment.active:
            x, lengths = augment(x, lengths, self.grid, self.augment)
        return zero_padding(x.reshape(x.shape[0], 1, x.shape[1], *self.grid), lengths), lengths

    def pool(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = (lengths.clamp(min=1) * h.shape[3] * h.shape[4]).to(h.dtype)
        return h.sum(dim=(2, 3, 4)) / valid[:, None]  # padded frames are zero
