"""The EMI multi-objective loss.

    L = w_mse * MSE(yhat, y) + w_pearson * (1 - mean_k PCC_batch(yhat_k, y_k))
        + w_aux * sum_m MSE(aux_m, y) + w_vad * R(v)

R(v), the VAD latent regulariser (its formula is lost in the paper's text), has two readings:
``prior`` (default): a standard-normal prior on v, R(v) = mean over batch and the 3 dimensions of
v^2, which keeps the latent small and centred so that U v modulates rather than swamps h_a;
``columns``: supervision of v by valence / arousal / dominance pseudo-labels the dataset provides
(``data.vad_columns``), R(v) = MSE(v, vad). A term with weight 0 is off: neither computed nor logged.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from emofuse.losses.base import LossOutput
from emofuse.tasks.emi.model import EmiOutput


class EmiLossConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mse: float = Field(1.0, ge=0)
    pearson: float = Field(1.0, ge=0, description="weight of 1 - batch Pearson (mean over targets)")
    aux: float = Field(0.3, ge=0, description="weight of the summed auxiliary branch MSEs")
    vad: float = Field(0.01, ge=0, description="weight of the VAD latent regulariser R(v)")
    vad_target: Literal["prior", "columns"] = Field(
        "prior", description="R(v): L2 prior on v, or MSE to the VAD pseudo-label columns data.vad_columns")

    @model_validator(mode="after")
    def _some_term(self) -> "EmiLossConfig":
        if not any((self.mse, self.pearson, self.aux, self.vad)):
            raise ValueError("every loss weight is 0: nothing to train")
        return self


def batch_pearson(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column Pearson of one batch (K,) and which columns are defined (target not constant).

    rsqrt of (variance + eps) keeps the gradient finite where a column is constant in the batch.
    """
    p = pred - pred.mean(0)
    t = target - target.mean(0)
    cov, var_p, var_t = (p * t).sum(0), (p * p).sum(0), (t * t).sum(0)
    return cov * torch.rsqrt(var_p + eps) * torch.rsqrt(var_t + eps), var_t > eps


class EmiLoss(nn.Module):
    """``target`` is (B, K) targets, followed by the 3 VAD pseudo-label columns when vad_target is columns."""

    def __init__(self, cfg: EmiLossConfig, n_targets: int):
        super().__init__()
        self.cfg = cfg
        self.n_targets = n_targets

    def forward(self, output: EmiOutput, target: torch.Tensor, epoch: int) -> LossOutput:
        cfg = self.cfg
        pred, y = output.pred.float(), target[:, : self.n_targets].float()
        parts: dict[str, tuple[float, torch.Tensor]] = {}
        if cfg.mse:
            parts["mse"] = (cfg.mse, F.mse_loss(pred, y))
        if cfg.pearson:
            r, defined = batch_pearson(pred, y)
            mean_r = r[defined].mean() if defined.any() else r.sum() * 0.0
            parts["pearson"] = (cfg.pearson, 1.0 - mean_r)
        if cfg.aux:
            parts["aux"] = (cfg.aux, sum(F.mse_loss(a.float(), y) for a in output.aux.values()))
        if cfg.vad:
            if output.vad is None:
                raise ValueError("loss.vad > 0 needs a model with the VAD latent (model.vad: true)")
            v = output.vad.float()
            reg = (v**2).mean() if cfg.vad_target == "prior" else F.mse_loss(v, target[:, self.n_targets :].float())
            parts["vad"] = (cfg.vad, reg)
        total = sum(w * value for w, value in parts.values())
        return LossOutput(total=total, terms={name: value.item() for name, (_, value) in parts.items()})
