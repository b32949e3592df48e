"""Unimodal encoders: a modality's features in, a fixed-size vector out (no classifier).

An encoder is a stack of stages so that model-fusion blocks (MMTM, MSAF) can sit between them:
``begin`` puts the input in stage layout, each stage maps ``(h, lengths) -> (h, lengths)``, ``pool``
turns the last stage's output into the encoder's vector. Stage outputs are (B, C) for clip vectors
and (B, C, T) for sequences with the true ``lengths`` (B,) of each, so a block sees channels first.
"""

from __future__ import annotations

import torch
from torch import nn

from emofuse.core.registry import Part, Registry

ENCODERS: Registry["Encoder"] = Registry("encoder")

State = tuple[torch.Tensor, "torch.Tensor | None"]


class Encoder(nn.Module):
    compute_bound = False  # every step large enough to pay for several threads (a 3D CNN over frames); core/threads.py
    out_dim: int
    stages: nn.ModuleList
    stage_dims: list[int]  # channels C after each stage

    def begin(self, x: torch.Tensor, lengths: torch.Tensor | None) -> State:
        return x, lengths

    def pool(self, h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return h

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x is (B, D) for clip vectors or (B, T, D) padded sequences with their true lengths; returns (B, out_dim)."""
        h, lengths = self.begin(x, lengths)
        for stage in self.stages:
            h, lengths = stage(h, lengths)
        return self.pool(h, lengths)


def compute_bound(encoders: dict[str, Part]) -> bool:
    """Whether a model with these encoders is worth several threads: one of them is :attr:`Encoder.compute_bound`."""
    return any(ENCODERS.get(part.name).compute_bound for part in encoders.values())
