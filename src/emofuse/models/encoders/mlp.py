"""MLP encoder for clip-level vectors (eGeMAPS functionals, mean OpenFace action units); one stage per layer."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.encoders.base import ENCODERS, Encoder

NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "none": lambda width: nn.Identity()}


class DenseStage(nn.Module):
    """Linear-norm-ReLU-dropout; clip vectors have no lengths, which pass through."""

    def __init__(self, in_dim: int, out_dim: int, norm: str, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), NORMS[norm](out_dim), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, h: torch.Tensor, lengths=None):
        return self.net(h), lengths


@ENCODERS.register("mlp")
class MLPEncoder(Encoder):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
        dropout: float = Field(0.3, ge=0, lt=1)
        norm: Literal["batch", "layer", "none"] = "batch"

    def __init__(self, params: Params, input_dim: int, sequence: bool = False):
        super().__init__()
        if sequence:
            raise ValueError("the mlp encoder takes clip-level vectors; use cnn1d for frame sequences")
        widths = [input_dim, *params.hidden]
        self.stages = nn.ModuleList(
            DenseStage(widths[i], widths[i + 1], params.norm, params.dropout) for i in range(len(params.hidden))
        )
        self.stage_dims = list(params.hidden)
        self.out_dim = widths[-1]
