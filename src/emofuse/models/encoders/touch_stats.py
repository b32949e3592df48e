"""Robust touch features over pressure-grid frames, then a linear or small MLP readout: the second touch encoder.

On real touch recordings (a few hundred captures, idle frames around each gesture, dead and noisy cells) a
logistic regression on per-cell statistics beat the 3D CNN (touch3d). This encoder computes, from each capture's
valid frames (B, T, H * W), features that do not depend on where the gesture was made nor on the sensor's offsets:

- each cell's pressure above its resting level (the cell's median over the capture), and its mean, standard
  deviation and maximum over time (``cells``: 3 H W values; where on the grid);
- contact: cells more than ``contact`` robust noise scales (1.4826 x the median absolute deviation over the
  capture) above rest, so that dead cells never touch and noisy cells need more; from it the share of frames in
  contact, contact onsets per frame, contact area (mean and max), pressure in contact (log, mean and max);
- temporal energy: the mean squared frame-to-frame change (log) and the mean change of the total pressure;
- the total pressure's spectrum: relative power in octave bands of the frame rate (up to 1/64, 1/32, 1/16, 1/8,
  1/4, 1/2) and its spectral centroid;
- the pressure centroid's motion over frames in contact: mean speed (cells per frame), spread, straightness.

The features are standardised (batch norm without scale and shift), then go through ``hidden`` dense layers
(none: the branch classifier is a logistic regression on them). Per-person normalisation (speaker_norm) acts on
the frames before this, as for any modality; ``augment`` (models/encoders/touch_augment.py) acts in training.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn

from emofuse.core.registry import ConfigError
from emofuse.models.encoders.base import ENCODERS, Encoder
from emofuse.models.encoders.mlp import DenseStage
from emofuse.models.encoders.touch_augment import TouchAugment, augment

BANDS = (0.0, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 0.5 + 1e-9)  # fractions of the frame rate
MAD_TO_STD = 1.4826
N_GLOBAL = 8 + len(BANDS) + 3  # the features other than the per-cell ones: 8 of contact and energy, the spectrum, motion


def _masked_median(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Median over time (dim 1) of the valid frames, per cell."""
    return torch.nanmedian(torch.where(valid, x, torch.nan), dim=1).values


def _mean(x: torch.Tensor, weight: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return (x * weight).sum(dim) / weight.sum(dim).clamp(min=1)


def touch_features(x: torch.Tensor, lengths: torch.Tensor, grid: tuple[int, int], contact: float = 4.0,
                   cells: bool = True) -> torch.Tensor:
    """(B, 3 H W + N_GLOBAL) features of frames (B, T, H * W) with valid ``lengths``, as the module says (without
    ``cells``: N_GLOBAL)."""
    batch, frames, n_cells = x.shape
    t = torch.arange(frames, device=x.device)
    valid = (t[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    n = lengths.clamp(min=1).to(x.dtype)[:, None]
    rest = _masked_median(x, valid)
    p = (x - rest[:, None]) * valid
    noise = MAD_TO_STD * _masked_median((x - rest[:, None]).abs(), valid)
    touching = (p > contact * noise[:, None]) & (p > 0) & valid
    weight = torch.relu(p) * touching
    out = []
    if cells:
        mean = p.sum(1) / n
        std = ((p - mean[:, None]) ** 2 * valid).sum(1).div(n).sqrt()
        peak = torch.where(valid, p, -torch.inf).amax(1)
        out += [mean, std, peak]
    area = touching.sum(-1).to(x.dtype) / n_cells  # (B, T)
    active = area > 0
    on = active.to(x.dtype)
    onsets = (active[:, 1:] & ~active[:, :-1]).sum(1, keepdim=True).to(x.dtype) + active[:, :1].to(x.dtype)
    pressure = weight.sum(-1)  # total pressure in contact per frame
    step = valid[:, 1:, 0] & valid[:, :-1, 0]
    change = ((p[:, 1:] - p[:, :-1]) ** 2).mean(-1)
    out += [on.sum(1, keepdim=True) / n, onsets / n, _mean(area, on)[:, None], area.amax(1, keepdim=True),
            torch.log1p(_mean(pressure, on))[:, None], torch.log1p(pressure.amax(1))[:, None],
            torch.log1p(_mean(change, step.to(x.dtype)))[:, None],
            _mean((pressure[:, 1:] - pressure[:, :-1]).abs(), step.to(x.dtype))[:, None]]
    out.append(_spectrum(pressure, valid[..., 0], n))
    out.append(_centroid_motion(weight, active, grid))
    return torch.nan_to_num(torch.cat(out, dim=1), nan=0.0, posinf=0.0, neginf=0.0)


def _spectrum(signal: torch.Tensor, valid: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Relative power in BANDS (log) and the spectral centroid (fraction of the rate) of each (B, T) signal, each
    over its own valid length (samples of one length at once), so that a batch's padding changes nothing."""
    centred = (signal - (signal * valid).sum(1, keepdim=True) / n) * valid
    out = torch.empty(len(signal), len(BANDS), device=signal.device, dtype=signal.dtype)
    lengths = valid.sum(1)
    for length in lengths.unique().tolist():
        rows = lengths == length
        power = torch.fft.rfft(centred[rows, : max(int(length), 1)], dim=1).abs() ** 2
        freqs = torch.fft.rfftfreq(max(int(length), 1), device=signal.device)
        total = power[:, 1:].sum(1, keepdim=True).clamp(min=1e-12)
        bands = [power[:, (freqs > lo) & (freqs <= hi)].sum(1, keepdim=True) for lo, hi in zip(BANDS[:-1], BANDS[1:])]
        out[rows] = torch.cat([torch.log(torch.cat(bands, dim=1) / total + 1e-4), (power * freqs).sum(1, keepdim=True) / total],
                              dim=1)
    return out


def pressure_centroid(weight: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, T, 2) the (row, column) of each frame's pressure centroid, from (B, T, H * W) pressures (0 where none)."""
    height, width = grid
    rows = torch.arange(height, device=weight.device, dtype=weight.dtype).repeat_interleave(width)
    cols = torch.arange(width, device=weight.device, dtype=weight.dtype).repeat(height)
    total = weight.sum(-1).clamp(min=1e-12)
    return torch.stack([(weight * rows).sum(-1) / total, (weight * cols).sum(-1) / total], dim=-1)


def _centroid_motion(weight: torch.Tensor, active: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Mean speed (cells per frame between frames in contact), spread and straightness of the pressure centroid."""
    centre = pressure_centroid(weight, grid)
    on = active.to(weight.dtype)
    pairs = (active[:, 1:] & active[:, :-1]).to(weight.dtype)
    moves = (centre[:, 1:] - centre[:, :-1]).norm(dim=-1)
    path = (moves * pairs).sum(1)
    mean = _mean(centre, on[..., None])
    spread = (((centre - mean[:, None]) ** 2).sum(-1) * on).sum(1).div(on.sum(1).clamp(min=1)).sqrt()
    first = centre.gather(1, active.to(torch.long).argmax(1)[:, None, None].expand(-1, 1, 2))[:, 0]
    last_index = active.shape[1] - 1 - active.flip(1).to(torch.long).argmax(1)
    last = centre.gather(1, last_index[:, None, None].expand(-1, 1, 2))[:, 0]
    straight = (last - first).norm(dim=-1) / path.clamp(min=1e-6)
    return torch.stack([path / pairs.sum(1).clamp(min=1), spread, straight.clamp(max=1)], dim=1)


class Standardise(nn.Module):
    """The features standardised over the batch (running statistics in evaluation): the first stage."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False)

    def forward(self, h: torch.Tensor, lengths=None):
        return self.norm(h), None


@ENCODERS.register("touch_stats")
class TouchStatsEncoder(Encoder):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        grid: tuple[PositiveInt, PositiveInt] | None = Field(
            None, description="sensor rows and columns [H, W] of a frame (default: square, from the frames' width)")
        cells: bool = Field(True, description="include each cell's mean, std and max over time (3 H W values)")
        contact: float = Field(4.0, gt=0, description="a cell is in contact this many robust noise scales above rest")
        hidden: list[PositiveInt] = Field(default_factory=list, description="dense layers after the features "
                                                                            "(none: a linear readout)")
        dropout: float = Field(0.3, ge=0, lt=1, description="dropout in the dense layers")
        norm: Literal["batch", "layer", "none"] = "batch"
        augment: TouchAugment = Field(default_factory=TouchAugment, description="training-time augmentation")

    def __init__(self, params: Params, input_dim: int, sequence: bool = True):
        super().__init__()
        if not sequence:
            raise ConfigError("the touch_stats encoder takes pressure-frame sequences (T, H*W); use mlp or linear for "
                              "tactile feature vectors")
        side = math.isqrt(input_dim)
        grid = tuple(params.grid) if params.grid is not None else (side, side)
        if grid[0] * grid[1] != input_dim:
            raise ConfigError(f"the touch_stats encoder's grid {grid[0]}x{grid[1]} has {grid[0] * grid[1]} cells per "
                              f"frame but the frames have {input_dim} values; set grid: [H, W] with H * W = {input_dim}")
        self.grid, self.params = grid, params
        if params.augment.rotate and grid[0] != grid[1]:
            raise ConfigError(f"touch_stats: augment.rotate turns square grids only; this one is {grid[0]}x{grid[1]}")
        dim = (3 * input_dim if params.cells else 0) + N_GLOBAL
        widths = [dim, *params.hidden]
        self.stages = nn.ModuleList([Standardise(dim), *(DenseStage(widths[i], widths[i + 1], params.norm, params.dropout)
                                                         for i in range(len(params.hidden)))])
        self.stage_dims = widths
        self.out_dim = widths[-1]

    def begin(self, x: torch.Tensor, lengths: torch.Tensor | None):
        if x.dim() != 3 or x.shape[2] != self.grid[0] * self.grid[1]:
            raise ValueError(f"touch_stats expects frames (B, T, {self.grid[0] * self.grid[1]}) of a {self.grid[0]}x"
                             f"{self.grid[1]} grid; got shape {tuple(x.shape)}")
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], device=x.device, dtype=torch.long)
        with torch.autocast(x.device.type, enabled=False):
            x, lengths = x.float(), lengths.to(x.device)
            if self.training and self.params.augment.active:
                x, lengths = augment(x, lengths, self.grid, self.params.augment)
            return touch_features(x, lengths, self.grid, self.params.contact, self.params.cells), None
