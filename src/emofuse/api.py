"""The Python front door: what the command line does, as functions (the CLI is a thin layer over them).

    import emofuse
    run = emofuse.load_run("runs/demo")                  # or emofuse.load_model() for the bundled default
    for p in run.predict(["clip.wav", waveform]):        # paths, 1-D float32 arrays at run.sample_rate, (array, rate)
        print(p.source, p.pred, p.probs, p.missing)
    print(run.predict("clip.wav").pred)                  # one input, one Prediction
    summary = emofuse.cross_validate("configs/ravdess_mars.yaml", data="../shared/data/ravdess", out="runs/mars")

Every heavy import happens inside the function that needs it, so ``import emofuse`` stays instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """One input's answer, probabilities at full precision (``emofuse predict --json`` rounds them to 6 decimals)."""

    source: str  # the file, or "array[i]" for the i-th waveform given
    pred: str | None  # None when nothing could be predicted (see error)
    probs: dict[str, float]  # fused, per class
    modality_probs: dict[str, dict[str, float]]  # each branch used, per class
    modalities: list[str]  # the modalities the answer used
    missing: dict[str, str]  # modality -> why it was left out
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # speaker statistics, warnings, faces found
    uncertain: bool | None = None  # the top probability is below the confidence level (None: no level applies)
    no_speech: str | None = None  # why there is no answer: the audio holds no speech, or is too short (pred is None)


class Run:
    """A trained model: a run directory of `emofuse cv` or `emofuse fit`, or a bundled model."""

    def __init__(self, run_dir: str | Path, fold: int | None = None):
        from emofuse.inference.predict import Predictor

        self.predictor = Predictor(run_dir, fold=fold, decimals=None)
        self.run_dir = self.predictor.run_dir

    @property
    def classes(self) -> tuple[str, ...]:
        return self.predictor.class_names

    @property
    def modalities(self) -> list[str]:
        return list(self.predictor.modalities)

    @property
    def sample_rate(self) -> int | None:
        """The rate waveforms given to :meth:`predict` must have (the audio extractor's); None without audio."""
        return self.predictor.extractor.sample_rate if self.predictor.extractor is not None else None

    def predict(self, inputs: Input | Sequence[Input], speakers: str | dict[str, str] | None = None,
                openface_dir: str | Path | None = None, classes: Sequence[str] | None = None,
                min_confidence: float | None = None) -> Prediction | list[Prediction]:
        """One input gives one :class:`Prediction`, a list of inputs a list. An input is a media file's path (read as
        `emofuse predict` reads it; ``speakers``: one speaker for all files, or file -> speaker), a mono waveform at
        :attr:`sample_rate`, or a ``(waveform, sample_rate)`` pair (mono, or (samples, channels); resampled); each
        waveform goes on its own through the audio branch. ``classes``: answer among these of :attr:`classes` only,
        renormalised; ``min_confidence``: a top probability below it sets ``uncertain`` (default: the model card's
        level, if any; 0: none)."""
        if _is_single(inputs):
            return self.predict([inputs], speakers, openface_dir, classes, min_confidence)[0]
        self.predictor.class_indices(classes)  # refused before any input is read
        inputs = [_waveform_at(x, i, self.sample_rate) if isinstance(x, tuple) else x for i, x in enumerate(inputs)]
        files = [(i, Path(x)) for i, x in enumerate(inputs) if not isinstance(x, np.ndarray)]
        waves = [(i, np.asarray(x, dtype=np.float32)) for i, x in enumerate(inputs) if isinstance(x, np.ndarray)]
        entries: dict[int, dict] = {}
        if files:
            predicted = self.predictor.predict([f for _, f in files], openface_dir, speakers, classes=classes,
                                               min_confidence=min_confidence)
            entries.update({i: e for (i, _), e in zip(files, predicted)})
        if waves:
            names = [f"array[{i}]" for i, _ in waves]
            predicted = self.predictor.predict_extracted(names, [self._from_waveform(w, n) for (_, w), n in zip(waves, names)],
                                                         classes=classes, min_confidence=min_confidence)
            entries.update({i: e for (i, _), e in zip(waves, predicted)})
        return [_typed(entries[i]) for i in range(len(inputs))]

    def _from_waveform(self, wave: np.ndarray, name: str) -> tuple[dict, dict, dict]:
        """(features, missing, records) of a waveform: the audio branch and the modalities computed from audio."""
        p, values, missing = self.predictor, {}, {}
        for m in self.modalities:
            extractor = p.extractor if m == "audio" and "audio" not in p.stored else p.speech.get(m)
            if extractor is None:
                missing[m] = p.stored.get(m, "not given: a waveform holds audio only")
            else:
                values[m] = p.audio_features(wave, name, {}, extractor)
        return values, missing, {}

    def segments(self, recording: str | Path | tuple[np.ndarray, int] | np.ndarray, min_s: float = 1.0,
                 max_s: float = 10.0, enrol_self: bool = False, classes: Sequence[str] | None = None,
                 min_confidence: float | None = None) -> dict:
        """A long recording cut by speech, one prediction per segment (`emofuse predict --segments`): a path (decoded
        in pieces, never whole), a waveform at :attr:`sample_rate` or a (waveform, rate) pair. Returns {file,
        duration_s, speech_s, pred, label, segments: [{start, end, label, pred, probs}], summary: {emotion: share of
        speech time}}; without speech ``pred`` is None, ``label`` "no speech" and ``no_speech`` says why.
        :func:`emofuse.inference.timeline_formats.write_timeline` writes it as CSV, JSON, WebVTT or SRT."""
        from emofuse.data.audio_stream import array_blocks, audio_blocks
        from emofuse.data.media import resample
        from emofuse.inference.segments import SegmentSettings, segment_recording

        settings = SegmentSettings(min_s=min_s, max_s=max_s)
        if isinstance(recording, (str, Path)):
            return segment_recording(self.predictor, lambda rate: audio_blocks(recording, rate), str(recording), settings,
                                     enrol_self, classes, min_confidence)
        wave = _waveform_at(recording, 0, self.sample_rate) if isinstance(recording, tuple) else \
            np.asarray(recording, dtype=np.float32)
        own = self.sample_rate
        return segment_recording(self.predictor, lambda rate: array_blocks(wave if rate == own else resample(wave, own, rate),
                                                                           rate), "array", settings, enrol_self, classes,
                                 min_confidence)

    def predict_many(self, inputs: str | Path | Sequence[str | Path], out: str | Path | None = None,
                     format: str | None = None, top_k: int | None = None, lists: Sequence[str | Path] = (),
                     classes: Sequence[str] | None = None, min_confidence: float | None = None,
                     chunk: int | None = None, workers: int | None = None) -> Iterator[Prediction]:
        """Many recordings in constant memory (`emofuse predict INPUT... --out FILE`), yielded as they are predicted,
        each file on its own. ``inputs``: files, folders (searched recursively), glob patterns, Kaldi ``wav.scp``
        files; ``lists``: files of paths, one a line (or ``wav.scp``). Each result's ``details`` holds, with ``top_k``, its
        ``top_k`` list of ``{label, score}``, and a ``wav.scp`` utterance's ``id``. ``out``:
        also written there, as ``format`` or its suffix says (jsonl, csv: each chunk as it is made; json: when the
        iteration ends); a file that exists is resumed, its recordings skipped (not yielded). Nothing is read until
        the iteration starts. ``chunk`` recordings are decoded, predicted and written together; ``workers``
        processes decode and extract (default: the run's ``features.workers`` for large batches, else none)."""
        from emofuse.data.inputs import expand_inputs
        from emofuse.inference.batch import CHUNK, default_workers, predicted_chunks
        from emofuse.inference.formats import csv_columns, output_format
        from emofuse.inference.results_file import ResultsFile

        items = expand_inputs([inputs] if isinstance(inputs, (str, Path)) else inputs, lists)
        names = [self.classes[k] for k in self.predictor.class_indices(classes)]
        sink = None
        if out is not None:
            fmt = output_format(format, Path(out))
            sink = ResultsFile(Path(out), fmt, csv_columns(names, top_k), names)
            items = [i for i in items if i.id not in sink.done]
        workers = default_workers(self.predictor, len(items)) if workers is None else workers
        try:
            for results in predicted_chunks(self.predictor, items, chunk or CHUNK, workers, None, classes,
                                            min_confidence, top_k):
                if sink is not None:
                    sink.append(results)
                yield from (_typed(r) for r in results)
        finally:
            if sink is not None:
                sink.close()

    def stream(self, chunks: Iterable[np.ndarray], sample_rate: int | None = None, window_s: float = 3.0,
               hop_s: float = 1.0) -> Iterator:
        """Live audio on a sliding window (:meth:`emofuse.inference.predict.Predictor.stream`)."""
        return self.predictor.stream(chunks, sample_rate, window_s, hop_s)


Input = str | Path | np.ndarray | tuple[np.ndarray, int]


def _is_pair(x) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], np.ndarray) and isinstance(x[1], (int, np.integer))


def _is_single(inputs) -> bool:
    """A path, a waveform or a (waveform, rate) pair, not a list of them: a string is one path, never its characters."""
    return isinstance(inputs, (str, Path, np.ndarray)) or _is_pair(inputs)


def _waveform_at(pair, index: int, sample_rate: int | None) -> np.ndarray:
    """A (waveform, sample_rate) pair as a mono waveform at the model's rate."""
    from emofuse.core.registry import ConfigError
    from emofuse.data.media import to_mono_at_rate

    if not _is_pair(pair):
        raise ConfigError(f"input {index}: a tuple must be (waveform array, sample rate in Hz), got {pair!r:.80}")
    if sample_rate is None:
        raise ConfigError(f"input {index}: this model has no audio branch to take a waveform")
    wave, rate = np.asarray(pair[0], dtype=np.float32), int(pair[1])
    if wave.ndim not in (1, 2):
        raise ConfigError(f"input {index}: a waveform is (samples,) or (samples, channels), got shape {wave.shape}")
    return to_mono_at_rate(f"array[{index}]", wave.reshape(len(wave), -1), rate, sample_rate)


def _typed(entry: dict) -> Prediction:
    known = {"file", "pred", "probs", "modality_probs", "modalities", "missing", "error", "uncertain", "no_speech"}
    return Prediction(source=entry["file"], pred=entry["pred"], probs=entry["probs"] or {},
                      modality_probs=entry["modality_probs"], modalities=entry["modalities"], missing=entry["missing"],
                      error=entry.get("error"), details={k: v for k, v in entry.items() if k not in known},
                      uncertain=entry.get("uncertain"), no_speech=entry.get("no_speech"))


def load_run(run_dir: str | Path, fold: int | None = None) -> Run:
    """A run directory (the ensemble of its finished folds, or one ``fold``)."""
    return Run(run_dir, fold)


def load_model(name: str | None = None) -> Run:
    """A bundled model by name (:func:`list_models`; default ``emofuse.zoo.DEFAULT``), trained and ready."""
    from emofuse import zoo

    return Run(zoo.model_dir(name))


def list_models() -> list[str]:
    from emofuse import zoo

    return zoo.names()


def load_config(path: str | Path, overrides: list[str] | None = None):
    """A validated :class:`emofuse.config.schema.ExperimentConfig` (``extends`` followed; ``overrides`` as --set)."""
    from emofuse.config.loading import load_config as load

    return load(path, overrides)


def directory_or_sample(data: str | Path | None) -> Path:
    """A RAVDESS-style directory, or without one the packaged 6-actor sample."""
    from emofuse.data.sample import sample_dir

    return Path(data) if data is not None else sample_dir()


def locate_data(config, data: str | Path | None = None):
    """(config, data location): a RAVDESS config's directory (``data``, else the packaged sample), or a manifest
    config's CSV (``data``, recorded as data.path in the config, else data.path)."""
    if config.data.dataset != "manifest":
        return config, directory_or_sample(data)
    from emofuse.datasets.build import manifest_path

    path = manifest_path(config.data) if data is None else Path(data)
    return config.model_copy(update={"data": config.data.model_copy(update={"path": str(path)})}), path


def _config(config, overrides: list[str] | None):
    return load_config(config, overrides) if isinstance(config, (str, Path)) else config


def _cache(cache: str | Path | None) -> Path:
    from emofuse.features.cache import default_cache_dir

    return Path(cache) if cache is not None else default_cache_dir()


def cross_validate(config, out: str | Path, data: str | Path | None = None, overrides: list[str] | None = None,
                   cache: str | Path | None = None, folds: list[int] | None = None, progress: bool = False) -> dict:
    """`emofuse cv`: speaker-independent cross-validation of a config (a path or a loaded config); resumable. Returns
    the summary written to ``out/results.json``."""
    from emofuse.protocol.cross_validation import run_cross_validation

    config, data = locate_data(_config(config, overrides), data)
    return run_cross_validation(config, data, Path(out), _cache(cache), progress=progress, only_folds=folds)


def compare(configs: Sequence, out: str | Path, data: str | Path | None = None, seeds: int = 3,
            overrides: list[str] | None = None, reference: str | None = None, cache: str | Path | None = None,
            jobs: int = 1, progress: bool = False) -> dict:
    """`emofuse compare`: several configs under the same folds and seeds, with intervals and paired tests over
    speakers; the first is the reference unless ``reference`` names another."""
    from emofuse.experiments.compare import Variant, run_compare

    located = [locate_data(_config(c, overrides), data) for c in configs]
    variants = [Variant(c.name, c) for c, _ in located]
    sources = [str(c) for c in configs if isinstance(c, (str, Path))]
    return run_compare(variants, located[0][1], Path(out), _cache(cache), seeds=seeds, reference=reference,
                       progress=progress, sources=sources if len(sources) == len(configs) else None, jobs=jobs)


def list_parts() -> dict[str, list[str]]:
    """Every registered part a config can name, by kind (`emofuse registry`)."""
    from emofuse.data.corpora import CORPORA
    from emofuse.features import EXTRACTORS, VIDEO_EXTRACTORS
    from emofuse.losses import LOSSES
    from emofuse.models import ENCODERS, FUSIONS

    return {reg.kind: reg.names() for reg in (EXTRACTORS, VIDEO_EXTRACTORS, ENCODERS, FUSIONS, LOSSES, CORPORA)}
