"""Encoders + per-branch classifiers + a fusion (MultiBench-style composition).

The encoders run stage by stage in step so that a fusion's model-level blocks can act between stages.

A modality may be absent: for a whole batch (not in ``inputs``: its branch drops out), or for some rows
(``presence``: a training corpus without it). Under decision-level fusion a branch then runs on the rows that have
its modality only, so that a row without it gives it no gradient and no share in its batch statistics (BatchNorm);
its logits and features on the other rows are zeros, which the fusion and every loss leave out (``ModelOutput
.presence``). A feature-level fusion reads every row, an absent modality's input being its zero-filled, i.e.
training-mean, features (mean imputation); a model-level fusion (blocks between encoder stages) cannot and stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from emofuse.core.registry import Part
from emofuse.models.encoders import ENCODERS
from emofuse.models.fusion import FUSIONS
from emofuse.models.fusion.base import FusionInputs


class ModelSpec(Protocol):
    """What building a model reads of a config's model section (config/schema.py's ModelConfig has it; the config
    package sits above the part packages, so it is not imported here)."""

    @property
    def encoders(self) -> Mapping[str, Part]: ...

    @property
    def fusion(self) -> Part: ...

    @property
    def dropout(self) -> float: ...


@dataclass
class ModelOutput:
    branch_logits: dict[str, torch.Tensor]  # modality -> (B, K)
    probs: torch.Tensor  # (B, K) fused probabilities
    fused_logits: torch.Tensor | None = None
    features: dict[str, torch.Tensor] | None = None  # modality -> (B, D) pooled branch embeddings
    presence: dict[str, torch.Tensor] | None = None  # modality -> (B,) booleans, for a branch some rows lack


class MultimodalClassifier(nn.Module):
    def __init__(self, encoders: dict[str, nn.Module], n_classes: int, fusion: nn.Module, dropout: float = 0.0):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.classifiers = nn.ModuleDict(
            {m: nn.Sequential(nn.Dropout(dropout), nn.Linear(e.out_dim, n_classes)) for m, e in encoders.items()}
        )
        self.fusion = fusion

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    def n_parameters(self) -> int:
        """Trainable parameters of the predictor; the probes of a feature-level fusion are not part of it."""
        probes = set() if self.fusion.decision_level else {id(p) for p in self.classifiers.parameters()}
        return sum(p.numel() for p in self.parameters() if p.requires_grad and id(p) not in probes)

    def forward(self, inputs: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor | None] | None = None,
                presence: dict[str, torch.Tensor] | None = None) -> ModelOutput:
        lengths = lengths or {}
        presence = {m: p for m, p in (presence or {}).items() if m in inputs and m in self.encoders and not bool(p.all())}
        if self.fusion.stage_blocks and (len(inputs.keys() & self.encoders.keys()) < len(self.encoders) or presence):
            raise ValueError(f"model-level fusion needs every modality ({self.modalities}) on every row; got "
                             f"{sorted(inputs)}" + (f", {', '.join(presence)} on some rows only" if presence else ""))
        # a branch run on its rows only needs one of them, two in training (BatchNorm cannot normalise one): with
        # fewer, it sits the batch out (zeros, no row present); a feature-level fusion runs every branch on every row
        fewest = (2 if self.training else 1) if self.fusion.decision_level else 0
        sitting_out = [m for m, p in presence.items() if int(p.sum()) < fewest]
        present = [m for m in self.encoders if m in inputs and m not in sitting_out]
        rows = {m: p.nonzero().squeeze(1) for m, p in presence.items() if m in present} if self.fusion.decision_level else {}
        own = lambda m, x: x[rows[m]] if m in rows and x is not None else x  # noqa: E731
        states = {m: self.encoders[m].begin(own(m, inputs[m]), own(m, lengths.get(m))) for m in present}
        depth = max((len(self.encoders[m].stages) for m in present), default=0)  # 0: every branch sits out
        for i in range(depth):
            for m in present:
                if i < len(self.encoders[m].stages):
                    states[m] = self.encoders[m].stages[i](*states[m])
            if str(i) in self.fusion.stage_blocks:
                gated = self.fusion.stage_blocks[str(i)](states)
                states = {m: (gated[m], states[m][1]) for m in present}
        features = {m: self.encoders[m].pool(*states[m]) for m in present}
        head_inputs = features if self.fusion.decision_level else {m: h.detach() for m, h in features.items()}
        logits = {m: self.classifiers[m](head_inputs[m]) for m in present}
        for m, r in rows.items():  # back to every row of the batch, zeros where the modality is absent
            features[m], logits[m] = (x.new_zeros(len(presence[m]), *x.shape[1:]).index_copy(0, r, x)
                                      for x in (features[m], logits[m]))
        for m in sitting_out:
            presence[m] = torch.zeros_like(presence[m])
            features[m] = presence[m].new_zeros(len(presence[m]), self.encoders[m].out_dim, dtype=torch.float32)
            logits[m] = presence[m].new_zeros(len(presence[m]), self.classifiers[m][-1].out_features, dtype=torch.float32)
        order = [m for m in self.encoders if m in logits]
        features, logits = {m: features[m] for m in order}, {m: logits[m] for m in order}
        fused = self.fusion(FusionInputs(features, logits, states, presence or None))
        return ModelOutput(branch_logits=logits, probs=fused.probs, fused_logits=fused.logits, features=features,
                           presence=presence or None)


def create_model(config: ModelSpec, input_dims: dict[str, int], sequence: dict[str, bool], n_classes: int,
                 pretrained: bool = False) -> MultimodalClassifier:
    """The configured model; ``pretrained`` loads encoders' starting weights (for training; a trained run's
    weights replace them anyway)."""
    encoders = {
        m: ENCODERS.create(part.name, part.params, input_dim=input_dims[m], sequence=sequence[m])
        for m, part in config.encoders.items()
    }
    if pretrained:
        for encoder in encoders.values():
            getattr(encoder, "load_pretrained", lambda: None)()
    fusion = FUSIONS.create(
        config.fusion.name, config.fusion.params, feature_dims={m: e.out_dim for m, e in encoders.items()},
        n_classes=n_classes, stage_dims={m: list(e.stage_dims) for m, e in encoders.items()},
    )
    return MultimodalClassifier(encoders, n_classes, fusion, dropout=config.dropout)
