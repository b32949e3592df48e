"""Exponential moving average of the weights, with the decay warmed up over the first updates.

With a fixed decay d the EMA starts as a copy of the weights and still gives that copy the weight d^n after
n updates (0.999^840 = 0.43): on a short run, the EMA that is evaluated and selected is mostly the early
model. Warmed up, the update that follows n averaged updates (n = 1, 2, ...) blends with

    decay_n = min(d, n / (n + 1))        (timm's ModelEmaV3 warm-up, 1 - (1 + n / gamma)^-power, gamma = power = 1)

so the EMA is the plain mean of every weight it has seen until n / (n + 1) reaches d, after d / (1 - d)
updates (999 for d = 0.999), and the EMA of decay d from then on, without the bias towards its starting
copy. A run that ends sooner (few training clips) gets the mean of its whole trajectory since the EMA
started; a long one (Hume-Vidmimic2: about 250 steps per epoch, so after 4 epochs) the EMA it asked for.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_decay(decay: float, n_averaged: int, warmup: bool) -> float:
    """The decay of the update that follows ``n_averaged`` averaged updates."""
    return min(decay, n_averaged / (n_averaged + 1)) if warmup else decay


def ema_horizon(decay: float, n_averaged: int, warmup: bool) -> float:
    """How many recent updates the EMA spans, 1 / (1 - decay): n + 1 while warming up (all of them), then 1 / (1 - d)."""
    return 1.0 / (1.0 - ema_decay(decay, n_averaged, warmup))


def ema_model(model: nn.Module, decay: float, warmup: bool) -> AveragedModel:
    """An ``AveragedModel`` (buffers averaged too) whose first update copies the weights and later ones blend them
    with ``ema_decay``; its ``n_averaged`` is part of its state dict, so a resumed run continues the warm-up."""

    @torch.no_grad()
    def update(ema_params: list[torch.Tensor], params: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        d = ema_decay(decay, int(n_averaged), warmup)
        if torch.is_floating_point(ema_params[0]) or torch.is_complex(ema_params[0]):
            torch._foreach_lerp_(ema_params, params, 1 - d)
        else:  # integer buffers (BatchNorm's batch counter), as torch's own EMA treats them
            for p_ema, p in zip(ema_params, params):
                p_ema.copy_(p_ema * d + p * (1 - d))

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
