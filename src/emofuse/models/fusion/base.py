"""Fusion blocks: combine per-modality encoder outputs and/or branch decisions into one prediction.

Three places a fusion can act, as in the Mars paper's taxonomy:
- decision level (``decision_level = True``): combine the branch classifiers' outputs;
- feature level (``decision_level = False``): its own classifier over the encoders' vectors or last-stage tokens;
  the branch classifiers then read detached features (probes that report per-modality accuracy without
  shaping the encoders);
- model level: ``stage_blocks`` ("0", "1", ...) exchange information between the encoders after those stages.

Modalities are whatever names the model's encoders carry, in their order; no fusion knows a name. A method
published for a fixed number of modalities says so in ``modality_counts``, and building it on another number is
a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emofuse.core.registry import ConfigError, Registry

FUSIONS: Registry["Fusion"] = Registry("fusion")

State = tuple[torch.Tensor, "torch.Tensor | None"]  # (B, C) or (B, C, T) with lengths (B,)


@dataclass
class FusionInputs:
    features: dict[str, torch.Tensor]  # modality -> pooled encoder vector (B, D_m)
    branch_logits: dict[str, torch.Tensor]  # modality -> (B, K)
    tokens: dict[str, State]  # modality -> last encoder stage output, before pooling
    presence: dict[str, torch.Tensor] | None = None  # modality -> (B,) booleans, for a modality some rows lack


@dataclass
class FusionOutput:
    probs: torch.Tensor  # (B, K) fused class probabilities
    logits: torch.Tensor | None = None  # fused logits where the fusion has its own classifier


class Fusion(nn.Module):
    decision_level = True
    modality_counts: tuple[int, ...] | None = None  # the numbers of modalities the method is defined for; None: any

    def __init__(self, params, feature_dims: dict[str, int], n_classes: int, stage_dims: dict[str, list[int]] | None = None):
        super().__init__()
        self.check_modalities(list(feature_dims))
        self.params = params
        self.feature_dims = feature_dims
        self.n_classes = n_classes
        self.stage_dims = stage_dims or {}
        self.stage_blocks = nn.ModuleDict()

    @classmethod
    def check_modalities(cls, modalities: list[str]) -> None:
        """A ConfigError where the method is not defined for this many modalities; a classmethod, so that a config
        can be checked before any model is built."""
        if cls.modality_counts is None or len(modalities) in cls.modality_counts:
            return
        takes = " or ".join(map(str, cls.modality_counts))
        general = [n for n in FUSIONS.names() if FUSIONS.get(n).modality_counts is None]
        raise ConfigError(f"fusion '{cls.registry_name}' is defined for {takes} modalities; got {len(modalities)} "
                          f"({', '.join(modalities)}). Fusions for any number: {', '.join(general)}")

    def forward(self, inputs: FusionInputs) -> FusionOutput:
        raise NotImplementedError


class FusedClassifier(Fusion):
    """Feature-level fusion: ``fuse`` the modalities into one vector, then dropout + linear classifier."""

    decision_level = False

    def build_head(self, fused_dim: int, dropout: float) -> None:
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(fused_dim, self.n_classes))

    def fuse(self, inputs: FusionInputs) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, inputs: FusionInputs) -> FusionOutput:
        logits = self.head(self.fuse(inputs))
        return FusionOutput(probs=logits.float().softmax(-1), logits=logits)


def block_positions(after_stages: list[int] | None, stage_dims: dict[str, list[int]], name: str) -> list[int]:
    """Stage indices a model-fusion block sits after: every stage all encoders have, unless configured."""
    depth = min(len(d) for d in stage_dims.values())
    positions = list(range(depth)) if after_stages is None else after_stages
    if any(not 0 <= i < depth for i in positions):
        raise ValueError(f"{name}: after_stages {positions} outside the {depth} stages every encoder has")
    return positions


def squeeze(h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Channel descriptor (B, C) of a stage state: a (B, C) vector itself, the mean over valid time steps of a
    (B, C, T) sequence, the mean over all positions of a (B, C, T, H, W) video state."""
    if h.dim() == 2:
        return h
    if h.dim() > 3 or lengths is None:
        return h.flatten(2).mean(2)
    mask = (torch.arange(h.shape[2], device=h.device)[None, :] < lengths[:, None]).to(h.dtype)
    return (h * mask[:, None, :]).sum(2) / mask.sum(1, keepdim=True).clamp(min=1)


def excite(h: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """Scale the channels of a (B, C, ...) state by a (B, C) gate."""
    return h * gate.reshape(*gate.shape, *([1] * (h.dim() - 2)))
