"""The EMI regressor (ABAW-10 EMI track): per-modality projectors, VAD-aware audio, fusion, shared head.

Each modality's sequence (T_m, D_m) is resampled to ``seq_len`` steps by adaptive average pooling
(over its own length, padding ignored), projected to ``hidden`` (Linear + GELU + dropout),
optionally passed through one temporal layer (the ablation's "temporal enhancement") and averaged
over time to h_m. On the VAD modality (audio), the time mean g of the projected sequence gives a
3-d latent v = W g that is added back as h_a' = h_a + U v. Fusion concatenates (or averages) the
h_m; one shared head regresses the K targets and each branch has an auxiliary regressor of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class EmiModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq_len: int = Field(128, ge=1, description="steps after adaptive average pooling in time")
    hidden: int = Field(256, ge=1, description="projector and fused width d")
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    fusion: Literal["concat", "average"] = "concat"
    temporal: Literal["none", "gru", "transformer"] = Field(
        "none", description="extra temporal layer over the resampled steps of each modality (ablation)")
    vad: bool = Field(True, description="VAD-aware latent on the vad_modality branch")
    vad_modality: str = "audio"
    output: Literal["sigmoid", "linear"] = Field(
        "sigmoid", description="sigmoid for targets in [0, 1] (EMI intensities); linear for unbounded targets")


def adaptive_avg_pool_time(x: torch.Tensor, lengths: torch.Tensor | None, steps: int) -> torch.Tensor:
    """(B, T, D) -> (B, steps, D): ``F.adaptive_avg_pool1d`` over each row's own first ``lengths[i]`` frames.

    Bin j of a row of length T averages frames floor(j T / S) .. ceil((j + 1) T / S) - 1, exactly as
    torch's adaptive pooling does, computed for the whole padded batch with cumulative sums.
    """
    b, t, _ = x.shape
    lengths = torch.full((b,), t, device=x.device) if lengths is None else lengths.to(x.device)
    j = torch.arange(steps, device=x.device)
    start = torch.div(j[None, :] * lengths[:, None], steps, rounding_mode="floor")
    end = torch.div((j[None, :] + 1) * lengths[:, None] + steps - 1, steps, rounding_mode="floor")
    cumsum = torch.cat([x.new_zeros(b, 1, x.shape[2], dtype=torch.float32), x.float().cumsum(1)], dim=1)
    upto_end = cumsum.gather(1, end[:, :, None].expand(-1, -1, x.shape[2]))
    upto_start = cumsum.gather(1, start[:, :, None].expand(-1, -1, x.shape[2]))
    return ((upto_end - upto_start) / (end - start)[:, :, None]).to(x.dtype)


class TemporalLayer(nn.Module):
    def __init__(self, kind: str, hidden: int, dropout: float):
        super().__init__()
        self.kind = kind
        if kind == "gru":
            self.layer = nn.GRU(hidden, hidden, batch_first=True)
        else:
            heads = next(h for h in (8, 4, 2, 1) if hidden % h == 0)
            self.layer = nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout, batch_first=True, norm_first=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.layer(z)[0] if self.kind == "gru" else self.layer(z)


class Branch(nn.Module):
    def __init__(self, input_dim: int, cfg: EmiModelConfig):
        super().__init__()
        self.seq_len = cfg.seq_len
        self.project = nn.Sequential(nn.Linear(input_dim, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout))
        self.temporal = TemporalLayer(cfg.temporal, cfg.hidden, cfg.dropout) if cfg.temporal != "none" else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled vector h_m, time mean g of the projected sequence)."""
        z = self.project(adaptive_avg_pool_time(x, lengths, self.seq_len))
        g = z.mean(1)
        return (self.temporal(z).mean(1) if self.temporal is not None else g), g


@dataclass
class EmiOutput:
    pred: torch.Tensor  # (B, K) fused prediction
    aux: dict[str, torch.Tensor]  # modality -> (B, K) auxiliary branch prediction
    vad: torch.Tensor | None  # (B, 3) VAD latent v, when the model has one


class EmiRegressor(nn.Module):
    def __init__(self, cfg: EmiModelConfig, input_dims: dict[str, int], n_targets: int):
        super().__init__()
        self.cfg = cfg
        self.branches = nn.ModuleDict({m: Branch(d, cfg) for m, d in input_dims.items()})
        self.vad_modality = cfg.vad_modality if cfg.vad else None
        if self.vad_modality is not None:
            if self.vad_modality not in input_dims:
                raise ValueError(f"model.vad_modality '{self.vad_modality}' is not one of the modalities {list(input_dims)}")
            self.to_vad = nn.Linear(cfg.hidden, 3)  # W
            self.from_vad = nn.Linear(3, cfg.hidden)  # U
        fused = cfg.hidden * (len(input_dims) if cfg.fusion == "concat" else 1)
        self.head = nn.Sequential(nn.Linear(fused, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n_targets))
        self.aux_heads = nn.ModuleDict({m: nn.Linear(cfg.hidden, n_targets) for m in input_dims})

    def _out(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z) if self.cfg.output == "sigmoid" else z

    def forward(self, inputs: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor | None] | None = None) -> EmiOutput:
        lengths = lengths or {}
        h, vad = {}, None
        for m, branch in self.branches.items():
            h[m], g = branch(inputs[m], lengths.get(m))
            if m == self.vad_modality:
                vad = self.to_vad(g)
                h[m] = h[m] + self.from_vad(vad)
        vectors = list(h.values())
        fused = torch.cat(vectors, dim=-1) if self.cfg.fusion == "concat" else torch.stack(vectors).mean(0)
        return EmiOutput(
            pred=self._out(self.head(fused)),
            aux={m: self._out(self.aux_heads[m](v)) for m, v in h.items()},
            vad=vad,
        )
