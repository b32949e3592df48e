"""The checks of a config that look parts up in their registries: every part exists with valid parameters, and the
parts fit together (a fusion that takes the modalities, a loss that trains what the fusion outputs).

The registries live in the part packages (features, models, losses), which import torch: this module is imported
when a config is checked (config/schema.py), and the config package sits above the part packages in the layers. It
takes parts and modality names, not the config's sections, so that it does not import the schema back. Nothing here
builds a part: parameters are validated against each part's ``Params`` model, and the per-modality checks are
classmethods."""

from __future__ import annotations

from emofuse.core.registry import Part, Registry
from emofuse.features import EXTRACTORS, VIDEO_EXTRACTORS
from emofuse.losses import LOSSES
from emofuse.models import ENCODERS, FUSIONS

REGISTRIES: dict[str, Registry] = {"extractor": EXTRACTORS, "video_extractor": VIDEO_EXTRACTORS, "encoder": ENCODERS,
                                   "fusion": FUSIONS, "loss": LOSSES}


def resolved(kind: str, part: Part, where: str) -> Part:
    """``part`` with every parameter its ``Params`` model gives it, defaults included, so that a run's config.yaml
    pins every value (a later change of a default does not change an old run); a ConfigError naming ``where``."""
    params = REGISTRIES[kind].validate_params(part.name, part.params, where)
    return Part(name=part.name, params=params.model_dump(mode="json"))


def check_fit(modalities: list[str], fusion: Part, loss: Part) -> None:
    """Raise a ConfigError or ValueError where the fusion or the loss does not take these modalities, or the loss
    does not train what the fusion outputs."""
    FUSIONS.get(fusion.name).check_modalities(modalities)
    LOSSES.get(loss.name).check_modalities(LOSSES.validate_params(loss.name, loss.params, "loss.params"), modalities)
    fused_head = not FUSIONS.get(fusion.name).decision_level
    if fused_head != LOSSES.get(loss.name).trains_fused_head:
        need = "a loss on its fused logits (fused_cross_entropy)" if fused_head else "a loss on the branch logits"
        raise ValueError(f"fusion {fusion.name!r} needs {need}; loss {loss.name!r} does not fit it")
