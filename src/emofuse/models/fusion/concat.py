"""Feature fusion by concatenation: z = W [h_1; ...; h_M] + b over the encoders' pooled vectors."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from emofuse.models.fusion.base import FUSIONS, FusedClassifier, FusionInputs


@FUSIONS.register("concat")
class ConcatFusion(FusedClassifier):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        dropout: float = Field(0.3, ge=0, lt=1)

    def __init__(self, params: Params, feature_dims, n_classes, stage_dims=None):
        super().__init__(params, feature_dims, n_classes, stage_dims)
        self.build_head(sum(feature_dims.values()), params.dropout)

    def fuse(self, inputs: FusionInputs) -> torch.Tensor:
        return torch.cat([inputs.features[m] for m in self.feature_dims], dim=1)
