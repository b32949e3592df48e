"""A learned softmax-weighted sum over a pretrained encoder's layers (the SUPERB downstream convention).

Features extracted with several layers stacked (the whisper extractor's ``combine: stack``) arrive as
(B, T, k * D); ``LayerMix(k)`` returns sum_l softmax(a)_l x_l, (B, T, D), with the k weights a learned with the
rest of the branch (zero-initialised: the plain mean to start with). Sequence encoders take it as ``layer_mix: k``.
"""

from __future__ import annotations

import torch
from torch import nn


class LayerMix(nn.Module):
    def __init__(self, n_layers: int, input_dim: int):
        super().__init__()
        if input_dim % n_layers:
            raise ValueError(f"layer_mix: {n_layers} layers do not divide the input's {input_dim} features per frame")
        self.n_layers, self.out_dim = n_layers, input_dim // n_layers
        self.logits = nn.Parameter(torch.zeros(n_layers))

    def weights(self) -> torch.Tensor:
        return self.logits.softmax(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = x.unflatten(-1, (self.n_layers, self.out_dim))  # (B, T, k, D)
        return torch.einsum("btkd,k->btd", layers, self.weights())


def layer_mix(n_layers: int | None, input_dim: int) -> tuple[nn.Module, int]:
    """(the mixing module or an identity, the features per frame after it)."""
    if not n_layers or n_layers == 1:
        return nn.Identity(), input_dim
    mix = LayerMix(n_layers, input_dim)
    return mix, mix.out_dim
