"""Long recordings, segmented by speech: one prediction per utterance, with its start and end, and a summary.

A call, an interview or a podcast pooled into one answer loses every change of emotion, and its silences and music
count as speech. Here the recording is read twice in blocks (``emofuse.data.audio_stream``), never whole: the first
pass finds the speech (Silero VAD, ``inference.speech``), the second cuts each planned segment out and predicts it as
a file of that audio on its own would be. Segments are brought to the lengths the model was trained on (RAVDESS takes
are 3-5 s): a region longer than ``max_s`` is cut at its longest pause, one shorter than ``min_s`` joins a neighbour
within ``join_gap_s`` (when the two fit in ``max_s``), else is widened around its centre to ``min_s``. Features are
predicted in batches and dropped, so memory stays flat whatever the length.

A recording without speech gets one segment over its whole length with the label "no speech" and no class. The
summary is the share of speech time per emotion. ``enrol_self``: the recording is one speaker, whose statistics
(``features.speaker_norm`` runs) are made from up to ENROL_SEGMENTS of its own segments, spread over the recording,
without labels, as ``predict --speaker`` would make them from that speaker's files.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from emofuse.core.registry import ConfigError
from emofuse.inference.speech import NO_SPEECH, RATE, VadSettings, speech_probabilities, speech_regions

AUTO_SEGMENT_S = 60.0  # `emofuse predict` segments a recording longer than this without being asked
AUDIO_ONLY = "not used: a recording's segments are predicted from their audio"
BATCH = 32  # segments whose features are held at once
ENROL_SEGMENTS = 50  # at most this many segments make a self-enrolled speaker's statistics
SELF = "this recording's speaker"

Blocks = Callable[[int], Iterable[np.ndarray]]  # rate -> the recording's mono blocks at that rate, from the start


@dataclass(frozen=True)
class SegmentSettings:
    """Segment lengths in seconds (``min_s`` to ``max_s``: what the model was trained on) and the detector's."""
    min_s: float = 1.0
    max_s: float = 10.0
    join_gap_s: float = 1.0
    vad: VadSettings = field(default_factory=VadSettings)

    def __post_init__(self):
        if not 0 < self.min_s <= self.max_s:
            raise ConfigError(f"segment lengths: need 0 < min ({self.min_s:g} s) <= max ({self.max_s:g} s)")
        if self.max_s < 2 * self.vad.pad_s + 0.1 or self.join_gap_s < 0:
            raise ConfigError(f"segment lengths: max {self.max_s:g} s is too short to hold speech, or join gap < 0")


def plan(regions: Sequence[tuple[int, int]], samples: int, rate: int, settings: SegmentSettings) -> list[tuple[int, int]]:
    """Speech regions (samples) as segments of ``min_s`` to ``max_s`` seconds where the recording allows."""
    lo, hi, gap = (round(x * rate) for x in (settings.min_s, settings.max_s, settings.join_gap_s))
    starts, ends = [a for a, _ in regions], [b for _, b in regions]
    before, after = list(range(-1, len(regions) - 1)), list(range(1, len(regions) + 1))
    alive = [True] * len(regions)
    queue = [(b - a, i) for i, (a, b) in enumerate(regions)]
    heapq.heapify(queue)
    while queue:  # the shortest segment joins its nearer neighbour where the two may join, until none is short
        length, i = heapq.heappop(queue)
        if not alive[i] or length != ends[i] - starts[i]:
            continue  # merged away, or grown since it was queued
        if length >= lo:
            break
        options = []
        for j, pause in ((before[i], starts[i] - ends[before[i]] if before[i] >= 0 else 0),
                         (after[i], starts[after[i]] - ends[i] if after[i] < len(regions) else 0)):
            if 0 <= j < len(regions) and pause <= gap and max(ends[i], ends[j]) - min(starts[i], starts[j]) <= hi:
                options.append((pause, j))
        if not options:
            continue  # a neighbour that grows keeps its pause and only gets longer: this one stays alone
        _, j = min(options)
        keep, gone = min(i, j), max(i, j)
        starts[keep], ends[keep], alive[gone] = min(starts[i], starts[j]), max(ends[i], ends[j]), False
        after[keep] = after[gone]
        if after[gone] < len(regions):
            before[after[gone]] = keep
        heapq.heappush(queue, (ends[keep] - starts[keep], keep))
    segments = [[starts[i], ends[i]] for i in range(len(regions)) if alive[i]]
    out = []
    for k, (start, end) in enumerate(segments):  # widen what is still short, within its neighbours and the recording
        if end - start < lo:
            floor = segments[k - 1][1] if k else 0
            ceiling = segments[k + 1][0] if k + 1 < len(segments) else samples
            start = max(floor, min(start - (lo - (end - start)) // 2, ceiling - lo))
            end = min(ceiling, start + lo)
        out.append((int(start), int(end)))
    return out


def cut(blocks: Iterable[np.ndarray], segments: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The samples of each segment (sorted, at the blocks' rate), holding no more than a segment and a block."""
    buffered, first, k = np.zeros(0, np.float32), 0, 0
    for block in blocks:
        buffered = np.concatenate([buffered, block])
        while k < len(segments) and segments[k][1] <= first + len(buffered):
            start, end = segments[k]
            yield buffered[start - first:end - first]
            k += 1
        keep = segments[k][0] if k < len(segments) else first + len(buffered)
        drop = min(max(0, keep - first), len(buffered))
        buffered, first = buffered[drop:], first + drop
    for start, end in segments[k:]:  # the last may end past the resampled length by a sample's rounding
        yield buffered[max(0, start - first):max(0, end - first)]


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when n <= k)."""
    return list(range(n)) if n <= k else sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def segment_recording(predictor, blocks: Blocks, name: str, settings: SegmentSettings = SegmentSettings(),
                      enrol_self: bool = False, classes: Sequence[str] | None = None,
                      min_confidence: float | None = None) -> dict:
    """{file, duration_s, speech_s, pred, label, segments: [{start, end, label, pred, probs, ...}], summary, missing,
    settings} of one recording; ``blocks(rate)`` reads it from the start at ``rate``. ``pred`` is the emotion with the
    most speech time (None without speech, when ``label`` is "no speech" and ``no_speech`` says why); ``summary``
    maps each emotion to its share of the speech time."""
    missing = predictor.audio_only("a recording's segments", AUDIO_ONLY)
    keep = predictor.class_indices(classes)
    if enrol_self and not predictor.config.features.per_speaker:
        raise ConfigError(f"{predictor.run_dir}: enrolling the recording's speaker needs a run trained with "
                          "features.speaker_norm; this one standardises every file alike")
    rate = predictor.extractor.sample_rate
    probs, samples = speech_probabilities(blocks(RATE))
    duration = samples / RATE
    regions = [(round(a * rate / RATE), round(b * rate / RATE))
               for a, b in speech_regions(probs, samples, settings.vad, settings.max_s)]
    segments = plan(regions, round(duration * rate), rate, settings)
    result = {"file": name, "duration_s": round(duration, 3), "settings": asdict(settings), "missing": missing}
    if not segments:
        reason = (f"too short: {duration:.2f} s of audio, speech takes at least {settings.vad.min_speech_s:g} s"
                  if duration < settings.vad.min_speech_s else
                  f"no speech: the voice-activity detector found none in {duration:.2f} s of audio")
        entry = {"start": 0.0, "end": round(duration, 3), "label": NO_SPEECH, "pred": None, "probs": None}
        return {**result, "speech_s": 0.0, "pred": None, "label": NO_SPEECH, "no_speech": reason,
                "segments": [entry], "summary": {}}
    enrolment = _enrolment(predictor, blocks, segments, name) if enrol_self else []
    answered, batch, warnings = [], [], []

    def flush():  # the batch's segments, after the enrolment segments that make their speaker's statistics
        extracted = enrolment + [(raw, dict(missing), {}) for _, _, raw in batch]
        speakers = [SELF] * len(extracted) if enrol_self else None
        enrolled = [True] * len(enrolment) + [False] * len(batch) if enrol_self else None
        entries = predictor.predict_extracted([SELF] * len(enrolment) + [label for label, _, _ in batch], extracted,
                                              speakers, enrolled=enrolled, classes=classes,
                                              min_confidence=min_confidence)
        for (_, (a, b), _), entry in zip(batch, entries[len(enrolment):]):
            segment = {"start": round(a / rate, 3), "end": round(b / rate, 3), "label": entry["pred"],
                       "pred": entry["pred"], "probs": entry["probs"]}
            if "uncertain" in entry:
                segment["uncertain"] = entry["uncertain"]
            warnings.extend(w for w in entry.get("warnings", []) if w not in warnings)
            answered.append(segment)
        batch.clear()

    for (a, b), wave in zip(segments, cut(blocks(rate), segments)):
        label = f"{name} {a / rate:.3f}-{b / rate:.3f} s"
        batch.append((label, (a, b), {"audio": predictor.audio_features(wave, label, {})}))
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    names = [predictor.class_names[k] for k in keep]
    speech_s = sum(s["end"] - s["start"] for s in answered)
    time_of = {c: sum(s["end"] - s["start"] for s in answered if s["pred"] == c) for c in names}
    summary = {c: round(t / speech_s, 4) for c, t in sorted(time_of.items(), key=lambda kv: -kv[1]) if t > 0}
    top = next(iter(summary))
    out = {**result, "speech_s": round(speech_s, 3), "pred": top, "label": top, "segments": answered,
           "summary": summary}
    if enrol_self:
        out["speaker_stats"] = f"enrolled from {len(enrolment)} of its {len(segments)} segments"
    if warnings:
        out["warnings"] = warnings
    return out


def _enrolment(predictor, blocks: Blocks, segments: list[tuple[int, int]], name: str) -> list[tuple[dict, dict, dict]]:
    """The features of up to ENROL_SEGMENTS segments spread over the recording: its speaker's enrolment."""
    rate = predictor.extractor.sample_rate
    chosen = [segments[i] for i in _spread(len(segments), ENROL_SEGMENTS)]
    return [({"audio": predictor.audio_features(wave, f"{name} {a / rate:.3f}-{b / rate:.3f} s", {})}, {}, {})
            for (a, b), wave in zip(chosen, cut(blocks(rate), chosen))]
