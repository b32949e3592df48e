"""`emofuse predict`: emotion probabilities for your own recordings from a finished `emofuse cv` run.

The deployed model is the ensemble of the run's finished folds: each fold's selected weights, fed
features prepared with that fold's own training-actor statistics (saved as ``standardizer.json``),
and the class probabilities averaged over the folds (``fold=k`` uses one fold instead). No fold is
chosen by its test score, so the ensemble uses nothing the protocol did not already allow.

Per file, every modality of the run is looked for: audio is decoded from any container (PyAV) and
put through the run's extractor. A run whose visual branch was trained on video (``data.visual.kind:
video``) puts the file's video stream through the same face pipeline (the entry's ``face`` says how
many frames had a face); a run trained on OpenFace action units is fed only from
``openface_dir/<file stem>.csv`` (OpenFace's per-frame output). A modality stored per sample in
training (a manifest's ``<modality>_features`` .npy files or feature-table columns: touch, physio,
precomputed audio, ...) cannot be made from a file. A modality that is missing, stored or unreadable
(an audio-only file, a video with no face) is left out of the decision fusion (the mean of the
available branches' probabilities) and reported with the reason; a fusion with its own
classifier over all modalities cannot leave one out, so such a file gets an error entry instead.
A file that is not a whole, readable recording (empty, not media, truncated, corrupt) gets an error
entry with the refusal `emofuse serve` gives it (``emofuse.data.media_check.check_media``); the other files
of the call are predicted all the same.

Runs trained with ``features.speaker_norm`` standardised each speaker by that speaker's own clips
(every modality but face clips). Here a file is normalised on its own by default, so that its answer
never depends on the other files of the call: with a typical training speaker's statistics (saved per
fold), for clip vectors and frame sequences alike (docs/speaker-adaptation.md has the measurement behind
that choice). Files are one speaker only when the caller says so (``speakers``: one name for all files,
or a file -> speaker map); a group then gets its own statistics, with a warning where they are shaky
(``speaker_groups``). Each entry's ``speaker_stats`` says which statistics it got.

Each fold model's temperatures (``calibration.json``: fitted by `emofuse cv` on the fold's validation speakers,
``protocol/calibration.py``) scale its fused and branch probabilities before the folds are averaged, bringing its
confidence closer to how often it is right for new speakers of its corpus; a run without them (made before, or with
``protocol.calibrate: false``) answers as its models do. With a modality left out of a decision fusion, the
fused answer is the mean of the present branches' scaled probabilities. ``classes`` answers among some of the model's
classes (their probabilities renormalised), and an answer whose top probability is below ``min_confidence`` (default:
a bundled model card's ``min_confidence``) is flagged ``uncertain`` rather than presented as certain.

Live input (``Predictor.stream``, ``emofuse predict --stream``): audio that arrives in chunks, from a microphone say, is
predicted on a sliding window, each window exactly as a file of that audio on its own would be (the run's extractor,
a typical training speaker's statistics, the folds' mean); the run's other modalities are left out of the fusion.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emofuse.config.loading import load_run_config
from emofuse.config.schema import ExperimentConfig
from emofuse.core.errors import DataError
from emofuse.data.media import BadMedia
from emofuse.data.media_check import check_media
from emofuse.datasets.normalize import Enrolment, SpeakerSummary, Standardizer
from emofuse.core.registry import ConfigError, did_you_mean
from emofuse.core.threads import thread_budget
from emofuse.core.runs import deployed_run, finished_folds
from emofuse.inference import speech, stream
from emofuse.inference.run_record import run_data_record
from emofuse.inference.stream import StreamWindow
from emofuse.inference.speaker_groups import MIN_GROUP_FILES, assign_speakers, group_warnings
from emofuse.metrics.calibration import Temperatures
from emofuse.metrics.classification import among_classes

log = logging.getLogger(__name__)

DECIMALS = 6  # probabilities are rounded so that the output is byte-identical from run to run
PRECOMPUTED = ("not computed: the model's {m} branch was trained on precomputed features ({where}), which predict "
               "cannot make from a file")
LIVE_AUDIO_ONLY = "not streamed: live input is audio only"
OPENFACE_HINT = ("not given: the model's visual branch takes OpenFace action-unit clip means; pass --openface DIR "
                 "holding OpenFace's per-frame CSV of each file as <file stem>.csv")


class Missing(Exception):
    """A modality that is not available for a file, for a reason that is not the file's fault."""


@dataclass
class FoldModel:
    index: int
    model: torch.nn.Module
    scalers: dict[str, Standardizer]  # model-input statistics of the fold's training actors
    typical: dict[str, Standardizer]  # a typical training speaker's raw-feature statistics (speaker_norm runs)
    enrolment: dict[str, Enrolment]  # how a speaker group's files become its statistics (features.enrolment)
    temperatures: Temperatures = field(default_factory=Temperatures)  # fitted on its validation speakers (calibration.json)


def _read_standardizers(fold_dir: Path, modalities: list[str]) -> dict:
    path = fold_dir / "standardizer.json"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: this run was made before `emofuse cv` saved each fold's feature "
                          "standardisation, which predict needs; rerun the config into a new --out directory")
    state = json.loads(path.read_text())
    if sorted(state.get("inputs", {})) != sorted(modalities):
        raise ConfigError(f"{path}: holds statistics for {sorted(state.get('inputs', {}))}, the run's modalities are {modalities}")
    return state


def confidence_level(value, where: str) -> float | None:
    """A confidence level in (0, 1], or None for none (None or 0); anything else is a ConfigError naming ``where``."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{where}: a confidence level is a probability from 0 (no flag) to 1, got {value!r}")
    return float(value)


def stated_confidence(run_dir: Path) -> float | None:
    """The confidence level a bundled model's card states (``card.json``'s ``min_confidence``), if any."""
    card = run_dir / "card.json"
    if not card.is_file():
        return None
    return confidence_level(json.loads(card.read_text()).get("min_confidence"), f"{card}: min_confidence")


class Predictor:
    def __init__(self, run_dir: str | Path, fold: int | None = None, decimals: int | None = DECIMALS,
                 speech_gate: bool | None = None):
        """``decimals``: probabilities rounded for byte-identical output (None: full precision, the Python API's).
        ``speech_gate``: a file whose audio holds no speech (voice-activity detector) gets "no speech" and no class
        (None: on unless the environment sets EMOFUSE_SPEECH_GATE=0)."""
        from emofuse.features import EXTRACTORS, VIDEO_EXTRACTORS
        from emofuse.models import create_model

        self.run_dir, self.decimals = Path(run_dir), decimals
        self.speech_gate = speech.gate_default() if speech_gate is None else speech_gate
        if not (self.run_dir / "config.yaml").is_file():
            raise ConfigError(f"{self.run_dir}: no config.yaml; RUN_DIR must be a finished `emofuse cv` run directory")
        self.min_confidence = stated_confidence(self.run_dir)  # the level below which an answer is flagged uncertain
        self.calibrated = True  # each fold's temperatures applied (false: the models' raw probabilities)
        self.config: ExperimentConfig = load_run_config(self.run_dir)
        if self.config.selection is not None:  # a nested selection: the candidate most folds chose (selection.py)
            self.run_dir = deployed_run(self.run_dir)
            self.config = load_run_config(self.run_dir)
        self.modalities = list(self.config.data.modalities)
        record = run_data_record(self.run_dir)
        self.class_names = tuple(record["class_names"])
        audio = self.config.features.audio
        self.extractor = EXTRACTORS.create(audio.name, audio.params) if "audio" in self.modalities else None
        self.speech = {m: EXTRACTORS.create(part.name, part.params)  # modalities computed from the audio (e.g. text)
                       for m, part in self.config.data.speech_sourced().items()}
        video = "visual" in self.modalities and self.config.data.visual.kind == "video"
        self.video = VIDEO_EXTRACTORS.create(self.config.features.visual.name, self.config.features.visual.params) \
            if video else None
        # check_media decodes at the audio branch's rate and hands the audio on; a run that reads nothing from the file
        # (precomputed features, OpenFace output) does not check it
        self.stored = {m: PRECOMPUTED.format(m=m, where=where) for m in self.modalities
                       if (where := self.config.data.stored(m))}  # modality -> why no file can give it
        rates = [e.sample_rate for e in ([self.extractor] if self.extractor and "audio" not in self.stored else [])
                 + list(self.speech.values())]
        self.media_rate = rates[0] if rates else None
        self.reads_media = self.media_rate is not None or self.video is not None
        self.sequence = sequence = {"audio": bool(self.extractor and self.extractor.sequence),
                                    "visual": bool(self.video and self.video.sequence), **record.get("sequence", {})}
        self.speaker_normalized = [m for m in self.modalities if not (m == "visual" and self.video and self.video.clips)]
        self.folds: list[FoldModel] = []
        for _, fold_dir in finished_folds(self.run_dir, fold):
            state = _read_standardizers(fold_dir, self.modalities)
            scalers = {m: Standardizer.from_dict(s) for m, s in state["inputs"].items()}
            typical = {m: Standardizer.from_dict(s) for m, s in state.get("typical_speaker", {}).items()}
            if self.config.features.per_speaker and sorted(typical) != sorted(self.speaker_normalized):
                raise ConfigError(f"{fold_dir}/standardizer.json: the run used speaker_norm but holds no typical-speaker statistics")
            model = create_model(self.config.model, {m: len(s.mean) for m, s in scalers.items()}, sequence, len(self.class_names))
            try:
                model.load_state_dict(torch.load(fold_dir / "best.pt", map_location="cpu", weights_only=True))
            except Exception as err:  # noqa: BLE001  (unreadable, corrupt or mismatched checkpoints all end here)
                reason = " ".join(str(err).split())[:300]
                raise ConfigError(f"{fold_dir}/best.pt: cannot load the fold's weights into the run's model "
                                  f"({type(err).__name__}: {reason})") from None
            enrolment = {m: Enrolment.from_dict(state["enrolment"][m]) if "enrolment" in state else Enrolment()
                         for m in typical}  # runs from before the estimators: the group's own statistics
            self.folds.append(FoldModel(int(fold_dir.name[5:]), model.eval(), scalers, typical, enrolment,
                                        Temperatures.of_fold(fold_dir)))
        fusion = self.folds[0].model.fusion
        self.fusion_name = self.config.model.fusion.name
        self.can_drop = getattr(fusion, "decision_level", True) and not len(getattr(fusion, "stage_blocks", None) or {})

    @property
    def has_temperatures(self) -> bool:
        """Whether any fold model has a fitted temperature (``calibration.json``)."""
        return any(f.temperatures != Temperatures() for f in self.folds)

    # ---- features -------------------------------------------------------------------------------
    def _audio(self, path: Path, timings: dict, wave: np.ndarray | None) -> np.ndarray:
        from emofuse.data.audio import load_audio

        started = time.perf_counter()
        wave = load_audio(path, self.extractor.sample_rate) if wave is None else wave
        timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - started
        return self.audio_features(wave, path, timings)

    def _speech(self, m: str, path: Path, timings: dict, wave: np.ndarray | None) -> np.ndarray:
        """A modality computed from the file's audio (data.sources.<m>.kind: speech), e.g. text from a transcript."""
        from emofuse.data.audio import load_audio

        extractor = self.speech[m]
        if wave is None or extractor.sample_rate != self.media_rate:
            wave = load_audio(path, extractor.sample_rate)
        return self.audio_features(wave, path, timings, extractor)

    def audio_features(self, wave: np.ndarray, source: str | Path, timings: dict, extractor=None) -> np.ndarray:
        """The audio branch's raw features of a mono waveform at the extractor's rate (or another extractor's of the
        audio): one path for a file's audio and a stream's window, so that both get the same features. ``source`` names
        the audio in a DataError."""
        started = time.perf_counter()
        try:
            features = (extractor or self.extractor)(wave)
        except Exception as err:  # noqa: BLE001  (an extractor failure on this audio only)
            raise DataError(source, f"audio feature extraction failed ({type(err).__name__}: {err})") from None
        finally:
            timings["features"] = timings.get("features", 0.0) + time.perf_counter() - started
        if not np.isfinite(features).all():
            raise DataError(source, "audio features hold NaN or infinity")
        return features

    def _video(self, path: Path, timings: dict, records: dict) -> np.ndarray:
        from emofuse.data.media import NoStream

        started = time.perf_counter()
        try:
            cached, records["face"] = self.video.extract_file(path)
            features = self.video.view(cached)
        except NoStream as err:
            raise Missing(err.problem) from None
        except DataError:
            raise
        except Exception as err:  # noqa: BLE001  (a decoder or detector failure on this file only)
            raise DataError(path, f"face extraction failed ({type(err).__name__}: {err})") from None
        finally:
            timings["faces"] = timings.get("faces", 0.0) + time.perf_counter() - started
        return features

    def _visual(self, path: Path, openface_dir: Path | None, timings: dict, records: dict) -> np.ndarray:
        from emofuse.data.openface import clip_vector_from_frames

        if self.video is not None:
            return self._video(path, timings, records)
        if openface_dir is None:
            raise Missing(OPENFACE_HINT)
        csv = Path(openface_dir) / f"{path.stem}.csv"
        if not csv.is_file():
            raise DataError(csv, "no OpenFace output for this file")
        started = time.perf_counter()
        vector, names, _ = clip_vector_from_frames(csv)
        timings["features"] = timings.get("features", 0.0) + time.perf_counter() - started
        expected = len(self.folds[0].scalers["visual"].mean)
        if len(vector) != expected:
            raise DataError(csv, f"{len(vector)} action-unit columns, the model was trained on {expected}")
        return vector

    def features(self, path: Path, openface_dir: Path | None = None, timings: dict | None = None):
        """Raw features of one file per modality, the reason for each modality that could not be had, and what the
        extractors recorded (``face``: frames analysed, with and without a face; ``error``: why the file was refused)."""
        timings = {} if timings is None else timings
        wave = None
        if self.reads_media:
            started = time.perf_counter()
            try:
                wave = check_media(path, self.media_rate)
            except BadMedia as err:
                return {}, {}, {"error": str(err)}
            finally:
                timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - started
        values, missing, records = {}, {}, {}
        silenced: dict[str, str] = {}  # the branches that hear the audio, when it holds no speech: why
        heard = [m for m in self.modalities if (m == "audio" or m in self.speech) and m not in self.stored]
        if wave is not None and heard and self.speech_gate:
            started = time.perf_counter()
            silent = speech.why_no_speech(wave, self.media_rate)
            timings["vad"] = timings.get("vad", 0.0) + time.perf_counter() - started
            if silent:  # no speech, no emotion: the audio-borne branches are left out, the file says why
                records["no_speech"] = silent
                silenced = dict.fromkeys(heard, silent)
        own = {m: {} for m in self.modalities}  # each reader's timings, added up below
        readers = {"audio": lambda: self._audio(path, own["audio"], wave),
                   "visual": lambda: self._visual(path, openface_dir, own["visual"], records),
                   **{m: (lambda m=m: self._speech(m, path, own[m], wave)) for m in self.speech}}

        def read(m: str):
            if m in self.stored or m in silenced:
                return None, self.stored.get(m) or silenced[m]
            try:
                return readers[m](), None
            except (DataError, Missing) as err:
                return None, str(err)

        # The modalities of one file at once: the decoders, openSMILE and OpenCV release the GIL, so a video's faces
        # and its audio features take the time of the slower, not of both. One modality needs no thread (starting
        # one costs milliseconds, a tenth of a short clip's prediction in a batch).
        with ThreadPoolExecutor(len(self.modalities)) if len(self.modalities) > 1 else nullcontext() as pool:
            for m, (value, problem) in zip(self.modalities, (pool.map if pool else map)(read, self.modalities)):
                if problem is None:
                    values[m] = value
                else:
                    missing[m] = problem
        for stage, seconds in ((k, v) for part in own.values() for k, v in part.items()):
            timings[stage] = timings.get(stage, 0.0) + seconds
        return values, missing, records

    # ---- speakers -------------------------------------------------------------------------------
    def _speaker_stats(self, extracted: list[dict], speakers: list[str | None],
                       enrolled: list[bool] | None = None) -> tuple[list[dict], list[list[str]]]:
        """Per file, the statistics of its speaker group per modality (absent: the file is on its own, and each
        fold's typical training speaker stands in), and the group's warnings. ``enrolled``: the files whose features
        make their group's statistics (default: all of them)."""
        stats: list[dict[str, SpeakerSummary]] = [{} for _ in extracted]
        warnings: list[list[str]] = [[] for _ in extracted]
        min_files = max(MIN_GROUP_FILES, self.config.features.adapt_clips)
        for name in dict.fromkeys(s for s in speakers if s is not None):
            members = [i for i, s in enumerate(speakers) if s == name and self._predictable(extracted[i])]
            sources = [i for i in members if enrolled is None or enrolled[i]]
            for m in self.speaker_normalized:
                have = [i for i in sources if m in extracted[i]]
                if len(have) >= MIN_GROUP_FILES:
                    rows = [extracted[i][m] for i in have]
                    group = SpeakerSummary.of(rows if rows[0].ndim == 2 else np.stack(rows))
                    for i in members:
                        if m in extracted[i]:
                            stats[i][m] = group
            alone = [self.class_names[int(np.argmax(self.forward(extracted[i], {})[0]))] for i in sources]
            for message in group_warnings(name, len(sources), min_files, alone):
                log.warning(message)
                for i in members:
                    warnings[i].append(message)
        return stats, warnings

    # ---- model ----------------------------------------------------------------------------------
    def _predictable(self, raw: dict) -> bool:
        return bool(raw) and (self.can_drop or len(raw) == len(self.modalities))

    def _prepare(self, raw: np.ndarray, m: str, fold: FoldModel, stats: dict[str, SpeakerSummary]) -> torch.Tensor:
        x = raw
        if self.config.features.per_speaker and m in self.speaker_normalized:
            x = (fold.enrolment[m].standardizer(stats[m], fold.typical[m]) if m in stats else fold.typical[m]).transform(x)
        return torch.as_tensor(fold.scalers[m].transform(x), dtype=torch.float32)[None]

    @torch.no_grad()
    def forward(self, raw: dict[str, np.ndarray], stats: dict[str, SpeakerSummary]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One file's fused and per-branch probabilities, averaged over the folds; ``stats``: speaker statistics per
        modality (a modality without them gets each fold's typical training speaker)."""
        # one clip through small networks: one thread; a 3D CNN on face clips is worth several (core/threads.py)
        with thread_budget(self.video is not None and self.video.clips):
            return self._forward_folds(raw, stats)

    def _forward_folds(self, raw: dict[str, np.ndarray], stats: dict[str, SpeakerSummary]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        fused, branch = [], {m: [] for m in raw}
        for fold in self.folds:
            inputs = {m: self._prepare(v, m, fold, stats) for m, v in raw.items()}
            lengths = {m: (torch.tensor([x.shape[1]]) if x.dim() >= 3 else None) for m, x in inputs.items()}
            out = fold.model(inputs, lengths)
            t = fold.temperatures if self.calibrated else Temperatures()
            probs = {m: t.branch_probs(m, z[0].float().softmax(-1)) for m, z in out.branch_logits.items()}
            # the fused temperature was fitted with every modality; a decision fusion of fewer is the mean of its
            # branches, each with its own temperature
            fused.append(t.fused_probs(out.probs[0].float()) if len(raw) == len(self.modalities)
                         else torch.stack(list(probs.values())).mean(0))
            for m, p in probs.items():
                branch[m].append(p)
        mean = lambda ps: torch.stack(ps).mean(0).numpy().astype(np.float64)  # noqa: E731
        return mean(fused), {m: mean(ps) for m, ps in branch.items()}

    def _named(self, probs: np.ndarray, names: Sequence[str]) -> dict[str, float]:
        return {c: float(p) if self.decimals is None else round(float(p), self.decimals) for c, p in zip(names, probs)}

    def class_indices(self, classes: Sequence[str] | None) -> list[int]:
        """The positions of ``classes`` among the model's, in the model's order (None: every class); a name the model
        does not have is a ConfigError."""
        if classes is None:
            return list(range(len(self.class_names)))
        for c in classes:
            if c not in self.class_names:
                raise ConfigError(f"classes: '{c}' is not a class of the model ({', '.join(self.class_names)})"
                                  f"{did_you_mean(c, self.class_names)}")
        if len(set(classes)) < 2:
            raise ConfigError(f"classes: {list(classes)} names {len(set(classes))} class; an answer needs two or more")
        return sorted({self.class_names.index(c) for c in classes})

    def _answer(self, fused: np.ndarray, branch: dict[str, np.ndarray], keep: list[int],
                min_confidence: float | None) -> dict:
        """An entry's pred and probabilities among the classes ``keep`` (renormalised to sum to 1) and, with a
        ``min_confidence``, whether the top probability falls below it (``uncertain``)."""
        names = [self.class_names[k] for k in keep]
        fused = among_classes(fused, keep)
        answer = {"pred": names[int(np.argmax(fused))], "probs": self._named(fused, names),
                  "modality_probs": {m: self._named(among_classes(p, keep), names) for m, p in sorted(branch.items())}}
        if min_confidence is not None:
            answer["uncertain"] = bool(fused.max() < min_confidence)
        return answer

    def predict(self, files: list[str | Path], openface_dir: str | Path | None = None,
                speakers: str | Mapping[str, str] | None = None, timings: dict | None = None,
                classes: Sequence[str] | None = None, min_confidence: float | None = None) -> list[dict]:
        """One entry per file: file, pred, probs, modality_probs, modalities, missing (error when no prediction could be
        made; face with a video-trained visual branch; speaker and speaker_stats with speaker normalisation; warnings
        about its speaker group; uncertain where a confidence level applies).

        ``speakers``: None (each file on its own), one speaker name for all files, or a map file -> speaker (the
        file as given, or its name). ``classes``: answer among these of the model's classes only, their probabilities
        renormalised to sum to 1 (None: all). ``min_confidence``: an answer whose top probability is below it gets
        ``uncertain: true`` (None: the model card's level, if it states one; 0: no flag)."""
        self.class_indices(classes)  # refused before any file is read
        speaker_of = self.speakers_of(files, speakers)
        timings = {} if timings is None else timings
        extracted = [self.features(Path(f), Path(openface_dir) if openface_dir else None, timings) for f in files]
        return self.predict_extracted(files, extracted, speaker_of, timings, classes=classes, min_confidence=min_confidence)

    def speakers_of(self, files: list[str | Path], speakers: str | Mapping[str, str] | None) -> list[str | None]:
        """Each file's speaker as ``predict`` takes them (None for all where the run has no speaker normalisation)."""
        speaker_of = assign_speakers([str(f) for f in files], speakers)
        if speakers is not None and not self.config.features.per_speaker:
            log.warning("speakers are ignored: run %s was trained without speaker normalisation", self.run_dir)
            speaker_of = [None] * len(files)
        return speaker_of

    def predict_extracted(self, files: list, extracted: list[tuple[dict, dict, dict]],
                          speaker_of: list[str | None] | None = None, timings: dict | None = None,
                          enrolled: list[bool] | None = None, classes: Sequence[str] | None = None,
                          min_confidence: float | None = None) -> list[dict]:
        """``predict`` on features already at hand: per file, the (raw features, missing, records) of ``features``,
        its speaker (``speakers_of``; None: each file on its own) and whether it is one of the files its speaker's
        statistics are made of (``enrolled``; default: all are); ``classes`` and ``min_confidence`` as ``predict``."""
        keep = self.class_indices(classes)
        level = confidence_level(self.min_confidence if min_confidence is None else min_confidence, "min_confidence")
        speaker_of = [None] * len(files) if speaker_of is None else speaker_of
        timings = {} if timings is None else timings
        started = time.perf_counter()
        stats, warnings = self._speaker_stats([raw for raw, _, _ in extracted], speaker_of, enrolled)
        entries = []
        for f, (raw, missing, records), speaker, own, notes in zip(files, extracted, speaker_of, stats, warnings):
            entry = {"file": str(f), "pred": None, "probs": None, "modality_probs": {}, "modalities": sorted(raw),
                     "missing": missing, **records}
            if self.config.features.per_speaker:
                entry["speaker"] = speaker
                entry["speaker_stats"] = {m: "speaker" if m in own else "typical" for m in sorted(raw) if m in self.speaker_normalized}
            if notes:
                entry["warnings"] = notes
            if not raw and "no_speech" in records:
                pass  # not an error: the answer is "no speech", and no class
            elif not raw:
                entry.setdefault("error", "no usable modality")  # a refused file's entry holds its refusal
            elif not self._predictable(raw):
                entry["error"] = (f"fusion '{self.fusion_name}' combines the modalities before its own classifier and "
                                  f"cannot leave out {', '.join(sorted(missing))}")
            else:
                entry.update(self._answer(*self.forward(raw, own), keep, level))
            entries.append(entry)
        timings["model"] = timings.get("model", 0.0) + time.perf_counter() - started
        return entries

    # ---- live input -----------------------------------------------------------------------------
    def stream(self, chunks: Iterable[np.ndarray], sample_rate: int | None = None, window_s: float = 3.0,
               hop_s: float = 1.0) -> Iterator[StreamWindow]:
        """Live input (a microphone): every ``hop_s`` seconds, the prediction of the last ``window_s`` seconds of
        ``chunks`` (1-D mono pieces of any length, at the audio extractor's rate unless ``sample_rate`` gives theirs),
        the first once ``window_s`` seconds are in. A run that cannot be fed audio alone is refused here, before any
        audio is taken (ConfigError)."""
        others = self.audio_only("live input", LIVE_AUDIO_ONLY)
        rate = self.extractor.sample_rate
        window, hop = round(window_s * rate), round(hop_s * rate)
        if window < 1 or hop < 1:
            raise ValueError(f"window_s ({window_s}) and hop_s ({hop_s}) must each hold a sample at {rate} Hz")
        self.audio_features(np.zeros(rate, np.float32), "warm-up", {})  # loads lazy weights: not the first window's latency
        return stream.windows(self, stream.at_rate(chunks, sample_rate, rate), window, hop, others)

    def audio_only(self, what: str, reason: str) -> dict[str, str]:
        """The run's modalities other than audio, each with ``reason`` (predict's ``missing``), for input that is audio
        alone (``what``: live input, a recording's segments); a run that cannot be fed audio alone is a ConfigError."""
        if self.extractor is None:
            raise ConfigError(f"{self.run_dir}: the run's modalities are {self.modalities}; {what} is audio, which "
                              "only a run with an audio branch can take")
        if "audio" in self.stored:
            raise ConfigError(f"{self.run_dir}: the run's audio branch was trained on precomputed features "
                              f"(data.audio_source: features), which cannot be made from {what}")
        others = [m for m in self.modalities if m != "audio"]
        if others and not self.can_drop:
            raise ConfigError(f"{self.run_dir}: fusion '{self.fusion_name}' combines the modalities before its own "
                              f"classifier and cannot leave out {', '.join(others)}, which {what} does not have")
        return dict.fromkeys(others, reason)
