"""CFN-SR, cross-modal fusion with self-attention and a self-residual (Fu et al. 2021), of two modalities.

On the encoders' last-stage tokens: the auxiliary modality (audio in the paper) is refined by self-attention;
the primary one (video in the paper) then attends to it, Q = primary, K = V = auxiliary, and its own tokens are
added back (the self-residual). The primary result and the auxiliary tokens are pooled and concatenated for a
classifier. A clip-level vector counts as a sequence of one token. The paper pairs one primary with one
auxiliary modality, so the fusion takes exactly two; the primary is ``primary``, or else the first encoder.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.fusion.base import FUSIONS, FusedClassifier, FusionInputs
from emofuse.core.registry import ConfigError


def as_tokens(h: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A stage state as (B, T, C) tokens and a padding mask (B, T), True where padded."""
    if h.dim() != 3:  # a clip vector is one token; a video state is pooled over space, every frame valid
        h, lengths = (h[:, :, None] if h.dim() == 2 else h.flatten(3).mean(3)), None
    tokens = h.transpose(1, 2)
    steps = tokens.shape[1]
    if lengths is None:
        lengths = torch.full((tokens.shape[0],), steps, device=h.device)
    return tokens, torch.arange(steps, device=h.device)[None, :] >= lengths[:, None]


def masked_mean(tokens: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    keep = (~pad).to(tokens.dtype)[:, :, None]
    return (tokens * keep).sum(1) / keep.sum(1).clamp(min=1)


@FUSIONS.register("cfn_sr")
class CFNSRFusion(FusedClassifier):
    modality_counts = (2,)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        primary: str | None = Field(None, description="modality that queries the other (default: the first encoder)")
        d_model: int = Field(64, ge=1)
        heads: int = Field(4, ge=1)
        dropout: float = Field(0.3, ge=0, lt=1)

    def __init__(self, params: Params, feature_dims, n_classes, stage_dims=None):
        super().__init__(params, feature_dims, n_classes, stage_dims)
        modalities = list(feature_dims)
        self.primary = params.primary or modalities[0]
        if self.primary not in modalities:
            raise ConfigError(f"cfn_sr primary modality {self.primary!r} is not one of the modalities {modalities}")
        self.auxiliary = next(m for m in modalities if m != self.primary)
        if params.d_model % params.heads:
            raise ValueError(f"cfn_sr d_model {params.d_model} is not divisible by heads {params.heads}")
        token_dims = {m: dims[-1] for m, dims in self.stage_dims.items()}
        self.project = nn.ModuleDict({m: nn.Linear(token_dims[m], params.d_model) for m in modalities})
        def attention() -> nn.MultiheadAttention:
            return nn.MultiheadAttention(params.d_model, params.heads, dropout=params.dropout, batch_first=True)

        self.self_attention = nn.ModuleDict({self.auxiliary: attention()})  # keyed by name, as checkpoints hold them
        self.cross_attention = nn.ModuleDict({self.auxiliary: attention()})
        self.norm = nn.ModuleDict({m: nn.LayerNorm(params.d_model) for m in modalities})
        self.build_head(params.d_model * len(modalities), params.dropout)

    def fuse(self, inputs: FusionInputs) -> torch.Tensor:
        tokens, pads = {}, {}
        for m in self.feature_dims:
            t, pads[m] = as_tokens(*inputs.tokens[m])
            tokens[m] = self.project[m](t)
        p, a = self.primary, self.auxiliary
        refined, _ = self.self_attention[a](tokens[a], tokens[a], tokens[a], key_padding_mask=pads[a], need_weights=False)
        aux = self.norm[a](tokens[a] + refined)
        attended, _ = self.cross_attention[a](tokens[p], aux, aux, key_padding_mask=pads[a], need_weights=False)
        fused = self.norm[p](tokens[p] + attended)  # self-residual
        return torch.cat([masked_mean(fused, pads[p]), masked_mean(aux, pads[a])], dim=1)
