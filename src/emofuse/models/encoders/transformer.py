"""A small Transformer over frame sequences (pretrained speech-encoder states, MFCCs): the SUPERB-style
downstream for frame-level features, with an optional learned weighted sum over stacked layers (``layer_mix``).

``begin`` mixes the layers, projects each frame to ``d_model`` and adds sinusoidal positions; each stage is one
pre-norm encoder layer whose self-attention ignores padded frames; ``pool`` is the mean over valid frames, so in
eval mode a clip's vector does not depend on its batch's padding. Stage outputs are channels first (B, C, T) like
every sequence encoder's, for model-level fusion blocks.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.encoders.base import ENCODERS, Encoder
from emofuse.models.encoders.cnn1d import time_mask
from emofuse.models.encoders.layer_mix import layer_mix


def sinusoids(steps: int, dim: int, device) -> torch.Tensor:
    position = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(steps, dim, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : dim // 2]
    return table


class AttentionStage(nn.Module):
    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, activation="gelu", batch_first=True,
                                                norm_first=True)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        padding = ~time_mask(lengths, h.shape[2])[:, 0]  # (B, T): True where padded
        out = self.layer(h.transpose(1, 2), src_key_padding_mask=padding)
        return out.masked_fill(padding[..., None], 0.0).transpose(1, 2), lengths


@ENCODERS.register("transformer")
class TransformerEncoder(Encoder):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        d_model: int = Field(128, ge=8)
        heads: int = Field(4, ge=1)
        layers: int = Field(2, ge=1, description="encoder layers (each one stage)")
        ffn: int = Field(256, ge=8, description="width of each layer's feed-forward block")
        dropout: float = Field(0.1, ge=0, lt=1)
        layer_mix: int | None = Field(None, ge=1, description="input holds this many stacked layers: learn their weighted sum")

    def __init__(self, params: Params, input_dim: int, sequence: bool = True):
        super().__init__()
        if not sequence:
            raise ValueError("the transformer encoder takes frame sequences (T, D); use mlp for clip vectors")
        if params.d_model % params.heads:
            raise ValueError(f"d_model {params.d_model} is not a multiple of heads {params.heads}")
        self.mix, frame_dim = layer_mix(params.layer_mix, input_dim)
        self.project = nn.Sequential(nn.Linear(frame_dim, params.d_model), nn.Dropout(params.dropout))
        self.stages = nn.ModuleList(AttentionStage(params.d_model, params.heads, params.ffn, params.dropout)
                                    for _ in range(params.layers))
        self.norm = nn.LayerNorm(params.d_model)
        self.stage_dims = [params.d_model] * params.layers
        self.out_dim = params.d_model

    def begin(self, x: torch.Tensor, lengths: torch.Tensor | None):
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], device=x.device, dtype=torch.long)
        h = self.project(self.mix(x)) + sinusoids(x.shape[1], self.out_dim, x.device)
        return (h * time_mask(lengths, x.shape[1]).transpose(1, 2)).transpose(1, 2), lengths

    def pool(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = time_mask(lengths, h.shape[2])
        mean = (h * mask).sum(2) / mask.sum(2).clamp(min=1)
        return self.norm(mean)
