"""Speaker-adversarial training (Ganin & Lempitsky 2015, domain-adversarial training with speakers as the domains).

A speaker classifier reads each branch's pooled embedding through a gradient-reversal layer: it learns to tell the
training speakers apart while the encoders receive the opposite gradient, ``-lambda_p * d(loss)/d(h)``, and so learn
embeddings that hide who is speaking. The reversal strength ramps up over training as in the paper,
``lambda_p = 2 / (1 + exp(-10 p)) - 1`` with p the share of training done, so that the emotion task shapes the
embeddings first. Only training speakers' labels (who spoke) are used; the heads are discarded after training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from emofuse.config.schema import SpeakerAdversaryConfig
from emofuse.losses.base import present_mean


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reversal_strength(progress: float) -> float:
    """DANN's schedule: 0 at the start of training, near 1 from about a third of it on."""
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


class SpeakerAdversary(nn.Module):
    """One speaker classifier per branch embedding; ``forward`` gives the weighted speaker cross-entropy to add to the
    training loss and its per-branch terms (speaker accuracy near chance means the embeddings hide the speaker)."""

    def __init__(self, config: SpeakerAdversaryConfig, feature_dims: dict[str, int], n_speakers: int):
        super().__init__()
        self.weight = config.weight
        self.heads = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, config.hidden), nn.ReLU(), nn.Linear(config.hidden, n_speakers))
            for m, d in feature_dims.items()
        })

    def forward(self, features: dict[str, torch.Tensor], speakers: torch.Tensor, progress: float,
                presence: dict[str, torch.Tensor] | None = None):
        """``presence``: per branch some rows lack, those that have it (the others' zero embeddings are no speaker's)."""
        scale = reversal_strength(progress)
        total = torch.zeros((), device=speakers.device)
        terms: dict[str, float] = {}
        for m, h in features.items():
            logits = self.heads[m](GradientReversal.apply(h.float(), scale))
            present = (presence or {}).get(m)
            ce = present_mean(F.cross_entropy(logits, speakers, reduction="none"), present)
            total = total + self.weight * ce
            terms[f"speaker_ce/{m}"] = ce.item()
            terms[f"speaker_acc/{m}"] = present_mean((logits.argmax(1) == speakers).float(), present).item()
        return total, terms
