"""Predictions over sliding windows of a long recording, for the page's timeline.

Windows of WINDOW_S seconds (about the length of a RAVDESS take, what the models were trained on)
every HOP_S seconds, from recordings of at least MIN_DURATION_S; a last window is aligned with the
end when the regular ones leave more than half a hop uncovered. Very long recordings get a longer
hop so that there are at most MAX_WINDOWS windows. Each window is cut from the decoded audio,
written as a WAV and predicted on its own, exactly as ``emofuse predict`` would predict that WAV:
the timeline follows the sound only (a video's frames are not windowed), so a model whose fusion
cannot leave a modality out gets no timeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

WINDOW_S = 3.0
HOP_S = 1.0
MIN_DURATION_S = 6.0
MAX_WINDOWS = 120


def window_starts(duration: float, window: float = WINDOW_S, hop: float = HOP_S, max_windows: int = MAX_WINDOWS) -> list[float]:
    """Start times (s) of the windows covering ``duration`` seconds."""
    if duration < window:
        return []
    span = duration - window
    hop = max(hop, span / (max_windows - 1)) if max_windows > 1 else span + 1
    starts = list(np.arange(0.0, span + 1e-9, hop))
    if span - starts[-1] > hop / 2 and len(starts) < max_windows:
        starts.append(span)
    return [round(float(s), 3) for s in starts]


def settings() -> dict:
    return {"window_s": WINDOW_S, "hop_s": HOP_S, "min_duration_s": MIN_DURATION_S, "max_windows": MAX_WINDOWS}


def timeline(predictor, wave: np.ndarray | None, sample_rate: int | None, workdir: Path) -> dict:
    """{window_s, hop_s, duration_s, windows: [{start, end, pred, probs}]} or {skipped: reason}."""
    if wave is None or sample_rate is None:
        return {"skipped": "the timeline follows the audio, and this recording or model has none"}
    duration = len(wave) / sample_rate
    if duration < MIN_DURATION_S:
        return {"skipped": f"recording shorter than {MIN_DURATION_S:g} s", "duration_s": round(duration, 3)}
    starts = window_starts(duration)
    windows = []
    for i, start in enumerate(starts):
        first = int(round(start * sample_rate))
        path = workdir / f"window_{i:03d}.wav"
        sf.write(path, wave[first:first + int(round(WINDOW_S * sample_rate))], sample_rate, subtype="FLOAT")
        (entry,) = predictor.predict([path])
        path.unlink()
        if entry.get("error"):
            return {"skipped": f"no prediction from a window of sound alone: {entry['error']}", "duration_s": round(duration, 3)}
        windows.append({"start": start, "end": round(start + WINDOW_S, 3), "pred": entry["pred"], "probs": entry["probs"]})
    hop = round(starts[1] - starts[0], 3) if len(starts) > 1 else HOP_S
    return {"window_s": WINDOW_S, "hop_s": hop, "duration_s": round(duration, 3), "windows": windows}
