"""Tensor Fusion Network (Zadeh et al. 2017): z = vec([h_1; 1] (x) [h_2; 1] (x) ... (x) [h_M; 1]).

Appending a constant 1 keeps the unimodal and all lower-order interaction terms inside the outer product.
Each vector is optionally projected down first (the product grows as prod_m (d_m + 1)); a small MLP classifies z.
The paper defines the product for two modalities and for its three (language, visual, acoustic): M is 2 or 3.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.fusion.base import FUSIONS, FusedClassifier, FusionInputs


def tensor_fusion(vectors: list[torch.Tensor]) -> torch.Tensor:
    """(B, prod_m (d_m + 1)) flattened outer product of the vectors, each extended by a constant 1."""
    fused = None
    for h in vectors:
        h1 = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
        fused = h1 if fused is None else torch.einsum("bi,bj->bij", fused, h1).flatten(1)
    return fused


@FUSIONS.register("tfn")
class TensorFusion(FusedClassifier):
    modality_counts = (2, 3)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        project_dim: int | None = Field(32, ge=1, description="project each vector to this size first (None: as is)")
        hidden: int = Field(128, ge=1, description="width of the post-fusion layer")
        dropout: float = Field(0.3, ge=0, lt=1)

    def __init__(self, params: Params, feature_dims, n_classes, stage_dims=None):
        super().__init__(params, feature_dims, n_classes, stage_dims)
        dims = {m: params.project_dim or d for m, d in feature_dims.items()}
        self.project = nn.ModuleDict(
            {m: nn.Linear(d, params.project_dim) if params.project_dim else nn.Identity() for m, d in feature_dims.items()}
        )
        fused_dim = math.prod(d + 1 for d in dims.values())
        self.post = nn.Sequential(nn.Dropout(params.dropout), nn.Linear(fused_dim, params.hidden), nn.ReLU())
        self.build_head(params.hidden, params.dropout)

    def fuse(self, inputs: FusionInputs) -> torch.Tensor:
        return self.post(tensor_fusion([self.project[m](inputs.features[m]) for m in self.feature_dims]))
