"""The page's timeline: the recording's speech segments, each predicted on its own.

The recording is cut by speech as ``emofuse predict --segments`` cuts it (``inference.segments``: voice-activity
detection, segments of 1-10 s, pauses and silence left out), from recordings of at least MIN_DURATION_S; each
segment's samples are predicted as ``emofuse predict`` would predict a WAV of them. The timeline follows the sound
only (a video's frames are not segmented), so a model whose fusion cannot leave a modality out gets no timeline.
"""

from __future__ import annotations

import numpy as np

from emofuse.core.registry import ConfigError
from emofuse.data.audio_stream import array_blocks
from emofuse.data.media import resample
from emofuse.inference.segments import SegmentSettings, segment_recording

MIN_DURATION_S = 6.0
SETTINGS = SegmentSettings()


def settings() -> dict:
    return {"min_segment_s": SETTINGS.min_s, "max_segment_s": SETTINGS.max_s, "min_duration_s": MIN_DURATION_S}


def timeline(predictor, wave: np.ndarray | None, sample_rate: int | None) -> dict:
    """{duration_s, speech_s, segments: [{start, end, label, pred, probs}], summary} (no segment has a class, and
    ``no_speech`` says why, when the recording holds no speech) or {skipped: reason}."""
    if wave is None or sample_rate is None:
        return {"skipped": "the timeline follows the audio, and this recording or model has none"}
    duration = len(wave) / sample_rate
    if duration < MIN_DURATION_S:
        return {"skipped": f"recording shorter than {MIN_DURATION_S:g} s", "duration_s": round(duration, 3)}

    def blocks(rate: int):
        return array_blocks(wave if rate == sample_rate else resample(wave, sample_rate, rate), rate)

    try:
        r = segment_recording(predictor, blocks, "recording", SETTINGS)
    except ConfigError as err:
        return {"skipped": f"no prediction from the sound alone: {err}", "duration_s": round(duration, 3)}
    keep = ("duration_s", "speech_s", "segments", "summary", "no_speech")
    return {k: r[k] for k in keep if k in r}
