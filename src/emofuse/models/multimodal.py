"""Encoders + per-branch classifiers + a fusion block (MultiBench-style composition)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emofuse.config import ModelConfig
from emofuse.models.encoders import ENCODERS
from emofuse.models.fusion import FUSIONS


@dataclass
class ModelOutput:
    branch_logits: dict[str, torch.Tensor]  # modality -> (B, K)
    probs: torch.Tensor  # (B, K) fused probabilities
    fused_logits: torch.Tensor | None = None


class MultimodalClassifier(nn.Module):
    def __init__(self, encoders: dict[str, nn.Module], n_classes: int, fusion: nn.Module, dropout: float = 0.0):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.classifiers = nn.ModuleDict(
            {m: nn.Sequential(nn.Dropout(dropout), nn.Linear(e.out_dim, n_classes)) for m, e in encoders.items()}
        )
        self.fusion = fusion

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    def forward(self, inputs: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor | None] | None = None) -> ModelOutput:
        lengths = lengths or {}
        features = {m: enc(inputs[m], lengths.get(m)) for m, enc in self.encoders.items() if m in inputs}
        logits = {m: self.classifiers[m](h) for m, h in features.items()}
        fused = self.fusion(features, logits)
        return ModelOutput(branch_logits=logits, probs=fused.probs, fused_logits=fused.logits)


def create_model(config: ModelConfig, input_dims: dict[str, int], sequence: dict[str, bool], n_classes: int) -> MultimodalClassifier:
    encoders = {
        m: ENCODERS.create(part.name, part.params, input_dim=input_dims[m], sequence=sequence[m])
        for m, part in config.encoders.items()
    }
    fusion = FUSIONS.create(
        config.fusion.name, config.fusion.params, feature_dims={m: e.out_dim for m, e in encoders.items()}, n_classes=n_classes
    )
    return MultimodalClassifier(encoders, n_classes, fusion, dropout=config.dropout)
