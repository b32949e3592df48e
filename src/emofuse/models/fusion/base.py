"""Fusion blocks: combine per-modality encoder features and/or branch logits into one prediction."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emofuse.registry import Registry

FUSIONS: Registry["Fusion"] = Registry("fusion")


@dataclass
class FusionOutput:
    probs: torch.Tensor  # (B, K) fused class probabilities
    logits: torch.Tensor | None = None  # fused logits where the fusion has its own classifier


class Fusion(nn.Module):
    def __init__(self, params, feature_dims: dict[str, int], n_classes: int):
        super().__init__()
        self.feature_dims = feature_dims
        self.n_classes = n_classes

    def forward(self, features: dict[str, torch.Tensor], branch_logits: dict[str, torch.Tensor]) -> FusionOutput:
        raise NotImplementedError
