"""Unimodal encoders: a modality's features in, a fixed-size vector out (no classifier)."""

from __future__ import annotations

import torch
from torch import nn

from emofuse.registry import Registry

ENCODERS: Registry["Encoder"] = Registry("encoder")


class Encoder(nn.Module):
    """``forward(x, lengths)``: x is (B, D) for clip vectors or (B, T, D) padded sequences with
    their true ``lengths`` (B,); returns (B, out_dim)."""

    out_dim: int

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError
