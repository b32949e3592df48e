"""Training-time augmentation of pressure-grid frames (B, T, H * W), shared by the touch encoders.

A gesture means the same wherever and whenever on the sensor it is made, as far as the sensor allows: mirrored
or turned grids (only where the sensor's mounting has no up and down, left and right: an option), the capture
started a little earlier or later (its frames rolled round within its length), a shorter window of it (a crop of
random length and place). Each sample draws its own; only in training mode, so evaluation sees the frames as they are.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field


class TouchAugment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flip: Literal["none", "rows", "columns", "both"] = Field(
        "none", description="mirror the grid (each with probability 1/2): rows (upside down), columns (left-right), both")
    rotate: bool = Field(False, description="turn the grid by a random multiple of 90 degrees (square grids only)")
    roll: bool = Field(False, description="roll each capture's frames round by a random shift within its length")
    crop: float = Field(1.0, gt=0, le=1, description="keep a random window of at least this share of each capture's "
                                                     "frames (1: all)")

    @property
    def active(self) -> bool:
        return self.flip != "none" or self.rotate or self.roll or self.crop < 1


def augment(x: torch.Tensor, lengths: torch.Tensor, grid: tuple[int, int],
            params: TouchAugment) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (B, T, H * W) and their lengths, each sample transformed as ``params`` says; padding stays zero."""
    batch, frames = x.shape[:2]
    height, width = grid
    cells = x.reshape(batch, frames, height, width)
    for axis, on in ((2, params.flip in ("rows", "both")), (3, params.flip in ("columns", "both"))):
        if on:
            chosen = torch.rand(batch, device=x.device) < 0.5
            cells = torch.where(chosen[:, None, None, None], cells.flip(axis), cells)
    if params.rotate and height == width:
        turns = torch.randint(0, 4, (batch,), device=x.device)
        cells = torch.stack([torch.rot90(c, int(k), dims=(1, 2)) for c, k in zip(cells, turns)])
    x = cells.reshape(batch, frames, height * width)
    t = torch.arange(frames, device=x.device)[None, :]
    n = lengths.to(x.device)[:, None].clamp(min=1)
    if params.roll:
        shift = (torch.rand(batch, 1, device=x.device) * n).long()
        index = torch.where(t < n, (t + shift) % n, t)
        x = x.gather(1, index[..., None].expand_as(x))
    if params.crop < 1:
        keep = torch.ceil(n * (params.crop + (1 - params.crop) * torch.rand(batch, 1, device=x.device))).long().clamp(max=n)
        start = (torch.rand(batch, 1, device=x.device) * (n - keep + 1)).long()
        index = (start + t).clamp(max=frames - 1)
        x = x.gather(1, index[..., None].expand_as(x)) * (t < keep)[..., None]
        lengths = keep[:, 0].to(lengths.device)
    return x, lengths
