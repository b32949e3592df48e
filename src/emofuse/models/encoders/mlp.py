"""MLP encoder for clip-level vectors (eGeMAPS functionals, mean OpenFace action units)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.encoders.base import ENCODERS, Encoder


@ENCODERS.register("mlp")
class MLPEncoder(Encoder):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
        dropout: float = Field(0.3, ge=0, lt=1)

    def __init__(self, params: Params, input_dim: int, sequence: bool = False):
        super().__init__()
        if sequence:
            raise ValueError("the mlp encoder takes clip-level vectors; use cnn1d for frame sequences")
        layers: list[nn.Module] = []
        width = input_dim
        for hidden in params.hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(params.dropout)]
            width = hidden
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)
