"""The experiment configuration's schema: typed sections, validated when a config is loaded (config/loading.py).

Unknown keys, ill-typed values and unknown or mis-parameterised parts (extractors, encoders,
fusions, losses) are all errors that name the key, before any data is read.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from emofuse.config.overrides import set_dotted
from emofuse.core.registry import ConfigError, Part, Strict, did_you_mean, validated
from emofuse.data.waveform_augment import Condition


class VisualSourceConfig(Strict):
    kind: Literal["table", "openface_frames", "video", "features"] = Field(
        "table", description="table: clip-level AU table; openface_frames: OpenFace per-frame CSVs; video: RAVDESS "
                             "audio-video (01-...) or video-only (02-...) files, or a manifest's video column, put through "
                             "features.visual (a manifest's default); features: a manifest's visual_features .npy files"
    )
    path: str = Field("openface_au_clip_means.csv", description="relative to the data directory (the manifest's folder)")
    key: str = Field("video_stem", description="manifest: the column naming each row's clip in the table or CSV folder")


MEDIA_MODALITIES = ("audio", "visual")  # computed from media files; the sources of the others are data.sources
MODALITY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "ua", "weighted_f1", "nll")  # metrics/classification.py's, plus accuracy/<modality>
DEVICES = ("auto", "cpu", "cuda", "mps")
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def classification_monitors(modalities: list[str]) -> list[str]:
    """The validation metrics a classification run can select its epoch by (train.early_stopping.monitor)."""
    return [*CLASSIFICATION_METRICS, *(f"accuracy/{m}" for m in modalities)]


def check_monitor(monitor: str, monitors: list[str]) -> None:
    """A ValueError naming the key where the early-stopping monitor is not a metric the evaluator gives."""
    if monitor not in monitors:
        raise ValueError(f"train.early_stopping.monitor: '{monitor}' is not a validation metric"
                         f"{did_you_mean(monitor, monitors)}; the metrics are {', '.join(monitors)}")


class ModalitySource(Strict):
    """Where a modality other than audio and visual comes from: stored per sample (a manifest), or computed from each
    sample's audio by an extractor (any corpus): e.g. ``text`` as the transcript's sentence embedding."""

    kind: Literal["features", "table", "speech", "transcript"] = Field(
        "features", description="features: the manifest's <modality>_features column (.npy per sample, (D,) or (T, D)); "
                                "table: columns of a CSV table with one row per sample; speech: computed from the "
                                "sample's audio by extractor (a RAVDESS take's audio file, a manifest's audio column); "
                                "transcript: what was said, a manifest column of text, embedded as extractor embeds"
    )
    path: str | None = Field(None, description="table: the CSV, relative to the manifest's folder")
    key: str = Field("id", description="table: the manifest column matched against the table's column of that name "
                                       "(id: the sample's id)")
    columns: list[str] | None = Field(None, min_length=1, description="table: the feature columns, by name")
    prefix: str | None = Field(None, min_length=1, description="table: the feature columns, every one whose name starts "
                                                               "with this")
    column: str | None = Field(None, min_length=1, description="transcript: the manifest column holding the text")
    extractor: Part | None = Field(None, description="speech: an audio feature extractor; transcript: the one whose "
                                                     "sentence encoder embeds the text (default for both: transcript)")

    @model_validator(mode="after")
    def _check(self) -> "ModalitySource":
        if self.kind != "table" and (self.path or self.columns or self.prefix or self.key != "id"):
            raise ValueError(f"path, key, columns and prefix belong to kind: table, not kind: {self.kind}")
        if self.kind == "table" and (self.path is None or (self.columns is None) == (self.prefix is None)):
            raise ValueError("kind: table needs path (the CSV) and one of columns (names) or prefix")
        if (self.column is not None) != (self.kind == "transcript"):
            raise ValueError("kind: transcript needs column (the manifest's text column), and only it takes one")
        if self.kind not in ("speech", "transcript") and self.extractor is not None:
            raise ValueError(f"extractor belongs to kind: speech or transcript, not kind: {self.kind}")
        if self.kind in ("speech", "transcript") and self.extractor is None:
            self.extractor = Part(name="transcript")
        return self

    @property
    def computed(self) -> bool:
        return self.kind == "speech"

    def describe(self, modality: str) -> str:
        return {"table": f"columns of {self.path}", "features": f"a manifest's {modality}_features column",
                "speech": f"the audio, through {self.extractor.name if self.extractor else '?'}",
                "transcript": f"the manifest's {self.column} column (text)"}[self.kind]


class LabelNoiseConfig(Strict):
    """Planted label noise on the training and validation clips of every fold (see datasets/corruption.py)."""

    rate: float = Field(..., ge=0, lt=1, description="share of each training / validation actor's clips whose label is flipped")
    kind: Literal["symmetric", "confusable"] = Field(
        "symmetric", description="symmetric: to a uniformly drawn other class; confusable: to the class's most confusable "
                                 "class, from the confusion matrix named by confusion_from"
    )
    confusion_from: str | None = Field(
        None, description="kind confusable: a clean `emofuse cv` run directory (per fold, its validation predictions) or "
                          "a CSV confusion matrix (rows true, columns predicted, class names as header and index)"
    )
    splits: list[Literal["train", "val", "test"]] = Field(
        default_factory=lambda: ["train", "val"], min_length=1, description="which clips are flipped: train and/or val"
    )
    seed: int | None = Field(None, description="which clips are flipped (default: the run's seed)")

    @model_validator(mode="after")
    def _check(self) -> "LabelNoiseConfig":
        if "test" in self.splits:
            raise ValueError("data.label_noise.splits: test labels are never corrupted (the test score must measure "
                             "the true labels); use train and/or val")
        if (self.kind == "confusable") != (self.confusion_from is not None):
            raise ValueError("data.label_noise.confusion_from is needed by kind: confusable, and only by it")
        return self


class ModalityNoiseConfig(Strict):
    """One modality's model inputs corrupted on some splits (see datasets/corruption.py)."""

    modality: str = Field(..., description="one of data.modalities")
    kind: Literal["gaussian", "dropout", "missing"]
    level: float = Field(..., description="gaussian: SNR in dB against the standardised features' unit power (.inf: "
                                          "clean); dropout: share of feature dimensions zeroed per clip; missing: "
                                          "share of each actor's clips without the modality")
    where: Literal["train", "test", "both"] = Field(
        "test", description="train: training and validation clips; test: test clips; both: all"
    )
    seed: int | None = Field(None, description="which clips, dimensions and noise (default: the run's seed)")

    @model_validator(mode="after")
    def _check(self) -> "ModalityNoiseConfig":
        if self.kind == "gaussian" and (self.level != self.level or self.level == -float("inf")):
            raise ValueError(f"data.modality_noise.level: a gaussian SNR in dB must be a number or .inf, got {self.level}")
        if self.kind != "gaussian" and not 0 <= self.level <= 1:
            raise ValueError(f"data.modality_noise.level: a {self.kind} level is a share in [0, 1], got {self.level}")
        return self


class DataConfig(Strict):
    dataset: Literal["ravdess", "manifest"] = Field(
        "ravdess", description="ravdess: a directory named by RAVDESS file names; manifest: a CSV, one row per sample"
    )
    path: str | None = Field(None, description="manifest: the CSV (emofuse cv --data sets it)")
    audio_dir: str = Field("audio16k", description="ravdess: folder of Actor_XX audio, relative to the data directory")
    audio_source: Literal["media", "features"] = Field(
        "media", description="manifest: media (the audio column, else the video's audio track, through features.audio) "
                             "or features (the audio_features .npy files)"
    )
    visual: VisualSourceConfig = Field(default_factory=VisualSourceConfig)
    modalities: list[str] = Field(
        default_factory=lambda: ["audio", "visual"], min_length=1,
        description="by name: audio and visual as audio_source and visual say, any other (touch, physio, ...) as "
                    "data.sources says (default: the manifest's <name>_features column)"
    )
    sources: dict[str, ModalitySource] = Field(
        default_factory=dict, description="manifest: modality -> where it is stored, for modalities other than audio "
                                          "and visual (default {kind: features})"
    )
    on_incomplete: Literal["error", "skip"] = Field(
        "error", description="a take whose modality is missing or unreadable: fail, or leave it out and report it"
    )
    label_noise: LabelNoiseConfig | None = None
    modality_noise: ModalityNoiseConfig | None = None

    @model_validator(mode="after")
    def _check_corruption(self) -> "DataConfig":
        noise = self.modality_noise
        if noise is not None and noise.modality not in self.modalities:
            raise ValueError(f"data.modality_noise.modality: {noise.modality!r} is not one of data.modalities "
                             f"{self.modalities}{did_you_mean(noise.modality, self.modalities)}")
        if noise is not None and noise.modality == "visual" and self.visual.kind == "video":
            raise ValueError("data.modality_noise: face clips from video cannot be corrupted (clip-level or frame "
                             "features only)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _manifest_visual_from_video(cls, tree: Any) -> Any:
        """A manifest's visual modality comes from its videos unless the config says otherwise."""
        if isinstance(tree, dict) and tree.get("dataset") == "manifest" and "visual" not in tree:
            return {**tree, "visual": {"kind": "video"}}
        return tree

    @field_validator("modalities")
    @classmethod
    def _modality_names(cls, modalities: list[str]) -> list[str]:
        for m in modalities:
            if not MODALITY_NAME.match(m):
                raise ValueError(f"{m!r} is not a modality name (lower-case letters, digits and _, from a letter)")
            if modalities.count(m) > 1:
                raise ValueError(f"{m!r} is named twice")
        return modalities

    @model_validator(mode="after")
    def _check_sources(self) -> "DataConfig":
        if self.dataset == "ravdess" and (self.visual.kind == "features" or self.audio_source == "features"):
            raise ValueError("precomputed .npy features (data.visual.kind / data.audio_source: features) come from a "
                             "manifest's <modality>_features column: set data.dataset: manifest")
        stored = [m for m in self.modalities if m not in MEDIA_MODALITIES and not self.source(m).computed]
        if self.dataset == "ravdess" and stored:
            raise ValueError(f"data.modalities: a RAVDESS directory has its audio and visual modalities and those "
                             f"computed from the audio (data.sources.<name>.kind: speech), not stored ones {stored}; "
                             f"stored features come from a manifest (data.dataset: manifest)")
        for m in self.sources:
            if m in MEDIA_MODALITIES:
                raise ValueError(f"data.sources.{m}: {m} has settings of its own (data.audio_source, data.visual)")
            if m not in self.modalities:
                raise ValueError(f"data.sources.{m}: {m!r} is not one of data.modalities {self.modalities}"
                                 f"{did_you_mean(m, self.modalities)}")
        return self

    def source(self, modality: str) -> ModalitySource:
        """A modality other than audio and visual: where it is stored (default: its <modality>_features column)."""
        return self.sources.get(modality, ModalitySource())

    def stored(self, modality: str) -> str | None:
        """Where a modality was read from if it is stored per sample rather than computed from a media file (which
        predict cannot do); None for one computed from media or OpenFace output."""
        if modality in MEDIA_MODALITIES:
            kind = self.audio_source if modality == "audio" else self.visual.kind
            return ModalitySource().describe(modality) if kind == "features" else None
        source = self.source(modality)
        return None if source.computed else source.describe(modality)

    def speech_sourced(self) -> dict[str, Part]:
        """Modality -> the extractor that computes it from each sample's audio (kind: speech)."""
        return {m: s.extractor for m, s in self.sources.items() if s.computed}


DEFAULT_FACE_FEATURES = {"name": "face_features", "params": {"descriptors": ["expression", "hog"], "pool": True}}


class AugmentConfig(Strict):
    """Training-time augmentation of recording conditions as cached copies (features/conditioned.py): each clip has
    ``copies`` corrupted copies, each with one kind drawn and its ranges drawn, extracted once; every epoch each
    training clip is fed clean with probability ``p_clean``, else one of its copies. Validation and test stay clean."""

    copies: int = Field(2, ge=1, description="augmented copies per clip")
    kinds: dict[str, Condition] = Field(..., min_length=1, description="name -> a condition whose numbers may be "
                                                                       "[low, high] ranges (drawn per copy)")
    p_clean: float = Field(0.5, ge=0, lt=1, description="per clip and epoch: the chance of the clean clip")


def fixed_conditions(value: dict[str, Condition]) -> dict[str, Condition]:
    ranged = {name: c.ranged() for name, c in value.items() if c.ranged()}
    if ranged:
        raise ValueError(f"test conditions are fixed settings, not ranges or choices: {ranged}")
    return value


class FeaturesConfig(Strict):
    audio: Part = Field(default_factory=lambda: Part(name="mfcc"))
    visual: Part | None = Field(
        None, description="video extractor (face_clips, face_features) when data.visual.kind is video"
    )
    speaker_norm: Literal["none", "transductive", "inductive"] = Field(
        "none", description="standardise features per speaker with statistics of the speaker's own unlabelled clips: "
                            "all of them (transductive), or for held-out speakers only features.adapt_clips enrolment "
                            "clips that are then never scored (inductive); true / false mean transductive / none"
    )
    adapt_clips: int = Field(
        10, ge=0, description="inductive: enrolment clips per held-out speaker, drawn with the run's seed "
                              "(0: a typical training speaker's statistics instead)"
    )
    enrolment: Literal["auto", "full", "mean", "shrink"] = Field(
        "auto", description="inductive (and predict's speaker groups): how a speaker's statistics are estimated from "
                            "their enrolment clips: full (their own mean and std), mean (their own mean, the typical "
                            "training speaker's std), shrink (both pulled toward the typical speaker with the weight of "
                            "features.shrink_clips clips), auto (the shrinkage strengths that best reproduce each "
                            "validation speaker's all-clip normalisation from k-clip draws; label-free, chosen per fold)"
    )
    shrink_clips: float = Field(10.0, gt=0, description="enrolment: shrink: the typical speaker's weight in clips")
    train_draws: bool = Field(
        False, description="inductive (no effect otherwise): train as you test: each epoch every training speaker is "
                           "standardised with features.adapt_clips random clips of their own through the same estimator "
                           "(redrawn every epoch) instead of with all of their clips"
    )
    train_draw_clips: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, min_length=1, description="train_draws: how many enrolment clips a training speaker is standardised with, "
                                        "one of these drawn per speaker and epoch (0: the typical training speaker's "
                                        "statistics, as a file on its own gets them), so that one network serves a "
                                        "file on its own and an enrolled speaker; default: features.adapt_clips")
    workers: int = Field(2, ge=1)
    augment: AugmentConfig | None = Field(None, description="train on augmented copies of the training clips' audio "
                                                            "as well as the clean clips (recording conditions)")

    @field_validator("speaker_norm", mode="before")
    @classmethod
    def _speaker_norm_aliases(cls, value):
        return {True: "transductive", False: "none"}.get(value, value) if isinstance(value, bool) else value

    @property
    def per_speaker(self) -> bool:
        return self.speaker_norm != "none"


class ModelConfig(Strict):
    encoders: dict[str, Part]
    fusion: Part = Field(default_factory=lambda: Part(name="average"))
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before each branch classifier")


class EarlyStoppingConfig(Strict):
    monitor: str = "accuracy"
    mode: Literal["max", "min"] = "max"
    patience: int = Field(10, ge=1)
    min_epochs: int = Field(0, ge=0, description="never stop before this many epochs")


class Passes(Strict):
    """A per-step rate given as the span of the average it makes, in passes over the training rows
    (training/timescales.py): the same setting then averages over the same share of the data at any data size."""

    passes: float = Field(gt=0, description="passes over the training rows that the average spans")


class SpeakerAdversaryConfig(Strict):
    """Speaker-adversarial training (training/speaker_adversary.py): a speaker classifier on every branch embedding
    behind a gradient-reversal layer, so that the encoders learn to hide the (training) speaker."""

    weight: float = Field(0.1, gt=0, description="weight of the speaker cross-entropy in the training loss")
    hidden: int = Field(64, ge=1, description="hidden width of each speaker classifier")


class TrainConfig(Strict):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: Annotated[float, Field(ge=0)] | Passes = Field(
        1e-2, description="AdamW's decoupled weight decay: a number, or {passes: P}: 1 / (lr * P * steps per pass)")
    warmup_epochs: int = Field(0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    crop_frames: int | None = Field(
        None, gt=0, description="train on a random window of at most this many frames of each sequence (augmentation)"
    )
    hflip: float = Field(0.0, ge=0, le=1, description="probability of mirroring a training face clip (augmentation)")
    eval_batch_size: int = Field(256, ge=1, description="batch size for validation and test (lower it for video clips)")
    ema_decay: Annotated[float, Field(gt=0, lt=1)] | Passes | None = Field(
        None, description="EMA of the weights: a decay, or {passes: P}: 1 - 1 / (P * steps per pass); null: no EMA")
    ema_start_epoch: int = Field(
        0, ge=0, description="first epoch (0-based) whose steps update the EMA; earlier epochs evaluate the raw weights"
    )
    speaker_adversary: SpeakerAdversaryConfig | None = Field(
        None, description="speaker-adversarial training with a gradient-reversal speaker head per branch; null: off")
    ema_warmup: bool = Field(
        False, description="warm the EMA decay up: the running mean of the weights until it spans 1 / (1 - ema_decay) "
                           "updates, the EMA from then on (training/ema.py)"
    )
    min_epoch_steps: int | None = Field(
        None, ge=1, description="an epoch makes as many passes over the training rows as reach this many optimiser steps"
    )
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)
    select_from_last_stage: bool = Field(
        False, description="staged losses (Mars): choose the best validation epoch among the last stage's epochs only"
    )
    amp: Literal["auto", "off"] = Field("auto", description="mixed precision when CUDA is present")
    device: str = Field("auto", description="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps")
    record_dynamics: Literal["auto", "on", "off"] = Field(
        "auto", description="score the training clips after every epoch (folds/fold_k/dynamics.npz, for `emofuse "
                            "diagnose`); auto: when every input is a clip-level vector (cheap)"
    )

    @field_validator("record_dynamics", "amp", mode="before")
    @classmethod
    def _yaml_on_off(cls, value):
        """YAML reads a bare on / off as true / false."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        """Checked when the config loads, not when training starts after feature extraction."""
        if not DEVICE.match(value):
            raise ValueError(f"'{value}' is not a device{did_you_mean(value, DEVICES)}; one of auto, cpu, cuda, cuda:N, mps")
        return value


class ProtocolConfig(Strict):
    n_folds: int = Field(6, ge=2, description="contiguous groups of the sorted actor ids (24 actors: 1-4, 5-8, ...)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of each fold's training actors held out for model selection")
    refit: bool = Field(False, description="after the epoch is selected on the validation actors, train again on the "
                                          "training and validation actors up to that epoch and score those weights, "
                                          "as a final fit trains the deployed model (protocol/cross_validation.py)")
    linear_peer: bool = Field(True, description="also fit logistic regressions on each fold's inputs (per modality, "
                                                "concatenated, late average) and report the network beside them "
                                                "(protocol/linear_peer.py); false: not (very large data)")
    calibrate: bool = Field(False, description="fit a temperature per fold on its validation speakers' predictions "
                                              "(temperature scaling), which predict applies; the test speakers' "
                                              "calibration error is reported either way, before and after "
                                              "(protocol/calibration.py). Off by default: on RAVDESS the fitted "
                                              "temperatures made Whisper features' test ECE worse (docs/ravdess.md)")
    test_conditions: dict[str, Condition] = Field(
        default_factory=dict, description="name -> a recording condition at fixed settings (data/waveform_augment.py: "
                                          "noise, gain, telephone, codec, reverb): each fold's test clips are also "
                                          "scored with their audio so corrupted, fed as the clean clips are; features "
                                          "of each condition are extracted once and cached (docs/recording-conditions.md)")

    _fixed_conditions = field_validator("test_conditions")(fixed_conditions)


class SelectionConfig(Strict):
    """Variants of a config chosen per fold (protocol/selection.py): each candidate is cross-validated on the same
    folds and every fold keeps the one with the best validation score on its own validation speakers (its training
    speakers' share held out), so the test score is a nested estimate."""

    candidates: dict[str, dict[str, Any]] = Field(
        ..., min_length=2, description="name -> {dotted.key: value} overrides of this config (e.g. "
                                       "{features.audio.params.layers: 3}); every candidate must be a valid config")
    monitor: Literal["accuracy", "nll"] | None = Field(
        None, description="the validation score each fold chooses by, at each candidate's selected epoch: 'nll' (the "
                          "log-loss, a proper scoring rule that varies less than accuracy on a few validation "
                          "speakers), 'accuracy'; None: the early-stopping monitor")


class ExperimentConfig(Strict):
    name: str
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig
    loss: Part = Field(default_factory=lambda: Part(name="cross_entropy"))
    train: TrainConfig = Field(default_factory=TrainConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    selection: SelectionConfig | None = Field(None, description="variants of this config chosen per fold on its "
                                                                "validation speakers (nested); null: none")

    @model_validator(mode="before")
    @classmethod
    def _manifest_faces(cls, tree: Any) -> Any:
        """A manifest with videos gets face features (expression probabilities + HOG, averaged over the video's
        sampled frames) as its visual modality, unless the config names another video extractor."""
        if not isinstance(tree, dict) or not isinstance(tree.get("data"), dict) or not isinstance(tree.get("features", {}), dict):
            return tree
        try:
            data = DataConfig.model_validate(tree["data"])
        except ValidationError:
            return tree  # reported, with its keys, by the validation proper
        features = tree.get("features", {})
        if data.dataset == "manifest" and "visual" in data.modalities and data.visual.kind == "video" \
                and features.get("visual") is None:
            return {**tree, "features": {**features, "visual": DEFAULT_FACE_FEATURES}}
        return tree

    @model_validator(mode="after")
    def _check_parts(self) -> "ExperimentConfig":
        """Every part is registered with valid parameters and they fit together; no part is built."""
        from emofuse.config.parts import check_fit  # the part registries: imported when a config is checked

        missing = [m for m in self.data.modalities if m not in self.model.encoders]
        extra = sorted(set(self.model.encoders) - set(self.data.modalities))
        if missing:
            hint = "".join(f"; model.encoders.{e}{did_you_mean(e, missing)}" for e in extra if did_you_mean(e, missing))
            raise ValueError(f"model.encoders has no encoder for modalities {missing}{hint}")
        if extra:
            raise ValueError(f"model.encoders names modalities not in data.modalities: {extra}")
        self.resolved()
        check_fit(list(self.data.modalities), self.model.fusion, self.loss)
        if self.train.early_stopping is not None:
            check_monitor(self.train.early_stopping.monitor, classification_monitors(self.data.modalities))
        if self.selection is not None:
            for name in self.selection.candidates:
                candidate_config(self, name)  # each candidate is a valid config (its error names the candidate)
        return self


    def resolved(self) -> "ExperimentConfig":
        """A copy with every part's parameters filled in, defaults included: what a run's config.yaml records
        (config/loading.py's dump_config), so that a later change of a default does not change a recorded run."""
        from emofuse.config.parts import resolved

        config = self.model_copy(deep=True)
        features, data, model = config.features, config.data, config.model
        features.audio = resolved("extractor", features.audio, "features.audio.params")
        for modality, source in data.sources.items():
            if source.extractor is not None:
                source.extractor = resolved("extractor", source.extractor, f"data.sources.{modality}.extractor.params")
        features.visual = check_visual_features(data, features)
        model.encoders = {m: resolved("encoder", part, f"model.encoders.{m}.params") for m, part in model.encoders.items()}
        model.fusion = resolved("fusion", model.fusion, "model.fusion.params")
        config.loss = resolved("loss", config.loss, "loss.params")
        return config


def check_visual_features(data: DataConfig, features: FeaturesConfig) -> Part | None:
    """A visual modality from video needs a video extractor, and only it uses one: that extractor with its parameters
    resolved (config/parts.py), or None."""
    video = "visual" in data.modalities and data.visual.kind == "video"
    if video and features.visual is None:
        raise ValueError("data.visual.kind: video needs features.visual (a video extractor: face_clips or face_features)")
    if not video and features.visual is not None:
        raise ValueError("features.visual is set but the visual modality does not come from video (data.visual.kind: video)")
    if not video:
        return None
    from emofuse.config.parts import resolved

    return resolved("video_extractor", features.visual, "features.visual.params")


def candidate_config(config: "ExperimentConfig", name: str) -> "ExperimentConfig":
    """One candidate of ``selection``: the config with the candidate's overrides and no selection of its own."""
    tree = config.model_dump(mode="json")
    tree["selection"] = None
    for key, value in config.selection.candidates[name].items():
        if key.split(".")[0] in ("selection", "seed", "protocol", "name"):
            raise ConfigError(f"selection.candidates.{name}: {key} cannot vary between candidates (the folds and seed "
                              "must be the same for all)")
        set_dotted(tree, key, value)
    return validated(tree, f"selection.candidates.{name}", ExperimentConfig)
