"""Training losses over a model's outputs.

Most fusion losses here are per-branch cross-entropies with per-sample weights,
``L = mean_i sum_m w_m(i) * CE(z_m(i), y_i)``; a subclass only says how the weights are made.

A branch whose modality some samples lack (a training corpus without it; ``ModelOutput.presence``) is trained on the
samples that have it only: each branch term is its mean over those (``present_mean``), and a weight that looks at the
other branches (Multiplication's) looks at the present ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from emofuse.core.registry import Registry

LOSSES: Registry["Loss"] = Registry("loss")


@dataclass
class LossOutput:
    total: torch.Tensor
    terms: dict[str, float] = field(default_factory=dict)  # logged per epoch (batch-size weighted means)


class Loss(nn.Module):
    """What a loss records is said here, not by its name: plots, reports and diagnose ask these attributes."""

    trains_fused_head = False  # True: trains a fusion's own classifier (feature-level fusions need one such loss)
    records_branch_weights = False  # True: its per-sample branch weights vary, and are plotted (train/weight/<m> columns)
    comparable_branch_losses = False  # True: each branch trains on its own cross-entropy (compare's loss histograms)

    @classmethod
    def marked_epoch(cls, params: dict | None) -> int | None:
        """The epoch a plot of this loss's branch weights marks (a staged loss's fixed switch); None: none."""
        return None

    @classmethod
    def reweighting(cls, params: dict | None) -> dict:
        """The per-sample reweighting this loss applies, as diagnose takes it (``gamma``, ``normalize``: Mars' weight
        exp(-gamma (1 - p[y]))); {} for a loss without one (diagnose then shows the weights Mars would give)."""
        return {}

    @classmethod
    def check_modalities(cls, params, modalities: list[str]) -> None:
        """A ConfigError where the validated ``params`` do not fit these modalities (a value per modality that misses
        one); a classmethod, so that a config is checked without building the loss."""

    def __init__(self, params, modalities: list[str]):
        super().__init__()
        self.check_modalities(params, modalities)
        self.params = params
        self.modalities = list(modalities)

    @property
    def stage_start_epoch(self) -> int:
        """First epoch (0-based) of the loss's last stage; a staged loss overrides it so that early stopping
        gives that stage a full patience window (training/budget.py)."""
        return 0

    def forward(self, output, target: torch.Tensor, epoch: int) -> LossOutput:
        raise NotImplementedError

    def end_epoch(self, epoch: int, val_metrics: dict[str, float]) -> None:
        """Called by the trainer with each epoch's validation metrics; a loss that decides from them (Mars'
        automatic switch) keeps its decision in ``get_extra_state``, which the checkpoint saves."""


class BranchReweightingLoss(Loss):
    def branch_weights(
        self, branch_logits: dict[str, torch.Tensor], target: torch.Tensor, epoch: int,
        presence: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-sample weight (B,) for each branch; treated as constants (no gradient). ``presence``: per branch some
        samples lack, (B,) booleans of those that have it (a weight of an absent sample is never used)."""
        raise NotImplementedError

    def forward(self, output, target: torch.Tensor, epoch: int) -> LossOutput:
        logits = {m: z.float() for m, z in output.branch_logits.items()}
        presence = branch_presence(output)
        with torch.no_grad():
            weights = self.branch_weights(logits, target, epoch, presence)
        total = torch.zeros((), device=target.device)
        terms: dict[str, float] = {}
        for m, z in logits.items():
            ce = F.cross_entropy(z, target, reduction="none")
            total = total + present_mean(weights[m].detach() * ce, presence.get(m))
            terms[f"ce/{m}"] = present_mean(ce, presence.get(m)).item()
            terms[f"weight/{m}"] = present_mean(weights[m], presence.get(m)).item()
        return LossOutput(total=total, terms=terms)


def branch_presence(output) -> dict[str, torch.Tensor]:
    """Per branch some samples lack, (B,) booleans of those that have its modality; {} when every sample has all."""
    return getattr(output, "presence", None) or {}


def present_mean(values: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-sample ``values`` over the samples that have the branch's modality (all where ``present`` is
    None); 0 without any, so that an absent sample gives the branch no gradient."""
    if present is None:
        return values.mean()
    return torch.where(present, values, torch.zeros_like(values)).sum() / present.sum().clamp_min(1)


def mask_logits(logits: torch.Tensor, class_mask: torch.Tensor) -> torch.Tensor:
    """Logits with the classes outside ``class_mask`` (B, K) at the dtype's lowest value: a softmax gives them 0, and
    their logits get no gradient."""
    return logits.masked_fill(~class_mask, torch.finfo(logits.dtype).min)


def restrict_classes(output, class_mask: torch.Tensor | None):
    """A model's output (branch logits, fused logits and probabilities) restricted to each sample's classes (a
    manifest of several corpora: its corpus's), so that no loss pushes a sample towards or away from a class its corpus
    does not have: the trainer applies it before every loss. ``class_mask`` None: the output as it is."""
    if class_mask is None:
        return output
    probs = output.probs * class_mask
    return replace(output, branch_logits={m: mask_logits(z, class_mask) for m, z in output.branch_logits.items()},
                   fused_logits=mask_logits(output.fused_logits, class_mask) if output.fused_logits is not None else None,
                   probs=probs / probs.sum(-1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny))


def global_mean(values: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``values`` over the global batch (every rank's slice; no gradient): what one process would divide by;
    with ``present``, over the samples it marks."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):  # one process
        return present_mean(values, present)
    present = torch.ones_like(values, dtype=torch.bool) if present is None else present
    total = torch.stack([torch.where(present, values.detach(), 0).sum().double(),
                         present.sum().double()])
    dist.all_reduce(total)
    return (total[0] / total[1]).to(values.dtype)
