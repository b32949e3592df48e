"""The check that spans a config's parts: every part exists in its registry with valid parameters, and the parts fit
together (an encoder per modality, a fusion that takes the modalities, a loss that trains what the fusion outputs).

The registries live in the part packages (features, models, losses), which import torch: this module is imported
when a config is checked (config/schema.py), and the config package sits above the part packages in the layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emofuse.features import EXTRACTORS, VIDEO_EXTRACTORS
from emofuse.losses import LOSSES
from emofuse.models import ENCODERS, FUSIONS

if TYPE_CHECKING:
    from emofuse.config.schema import DataConfig, ExperimentConfig, FeaturesConfig


def check_parts(config: "ExperimentConfig") -> None:
    """Raise ValueError (or ConfigError) naming the key of the first part that is unknown, ill-parameterised or does
    not fit the others."""
    missing = [m for m in config.data.modalities if m not in config.model.encoders]
    if missing:
        raise ValueError(f"model.encoders has no encoder for modalities {missing}")
    extra = sorted(set(config.model.encoders) - set(config.data.modalities))
    if extra:
        raise ValueError(f"model.encoders names modalities not in data.modalities: {extra}")
    EXTRACTORS.validate_params(config.features.audio.name, config.features.audio.params, "features.audio.params")
    for modality, source in config.data.sources.items():
        if source.extractor is not None:
            EXTRACTORS.validate_params(source.extractor.name, source.extractor.params,
                                       f"data.sources.{modality}.extractor.params")
    check_visual_features(config.data, config.features)
    for modality, part in config.model.encoders.items():
        ENCODERS.validate_params(part.name, part.params, f"model.encoders.{modality}.params")
    FUSIONS.validate_params(config.model.fusion.name, config.model.fusion.params, "model.fusion.params")
    FUSIONS.get(config.model.fusion.name).check_modalities(list(config.data.modalities))
    LOSSES.validate_params(config.loss.name, config.loss.params, "loss.params")
    LOSSES.create(config.loss.name, config.loss.params, modalities=list(config.data.modalities))  # per-modality settings
    fused_head = not FUSIONS.get(config.model.fusion.name).decision_level
    if fused_head != LOSSES.get(config.loss.name).trains_fused_head:
        need = "a loss on its fused logits (fused_cross_entropy)" if fused_head else "a loss on the branch logits"
        raise ValueError(f"fusion {config.model.fusion.name!r} needs {need}; loss {config.loss.name!r} does not fit it")


def check_visual_features(data: "DataConfig", features: "FeaturesConfig") -> None:
    """A visual modality from video needs a video extractor, and only it uses one."""
    video = "visual" in data.modalities and data.visual.kind == "video"
    if video and features.visual is None:
        raise ValueError("data.visual.kind: video needs features.visual (a video extractor: face_clips or face_features)")
    if not video and features.visual is not None:
        raise ValueError("features.visual is set but the visual modality does not come from video (data.visual.kind: video)")
    if video:
        VIDEO_EXTRACTORS.validate_params(features.visual.name, features.visual.params, "features.visual.params")
