"""A recording's segment timeline as files other tools read: CSV and JSON, and WebVTT / SRT emotion captions.

The formats follow the segments of ``inference.segments.segment_recording``: one row (or cue) per segment with its
start and end, its label (an emotion, or "no speech") and, for CSV, the probability of each class. Captions say the
label and its probability ("angry 0.83", "uncertain (sad 0.41)", "no speech") over the segment's time, so a video
player shows them under the picture.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from emofuse.core.atomic import atomic_write_text
from emofuse.core.registry import ConfigError

FORMATS = ("csv", "json", "vtt", "srt")
SUFFIXES = {".csv": "csv", ".json": "json", ".vtt": "vtt", ".srt": "srt"}


def format_of(path: str | Path, fmt: str | None = None) -> str:
    """The timeline format ``fmt``, else the one ``path``'s suffix names; a ConfigError when neither does."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"timeline format '{fmt}': one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{path}: the timeline format comes from the suffix ({', '.join(SUFFIXES)}); "
                          f"'{suffix or 'none'}' names none")
    return SUFFIXES[suffix]


def caption(segment: dict) -> str:
    """A segment's label as a caption reads it."""
    if segment["pred"] is None:
        return segment["label"]
    text = f"{segment['pred']} {segment['probs'][segment['pred']]:.2f}"
    return f"uncertain ({text})" if segment.get("uncertain") else text


def to_csv(recordings: Sequence[dict]) -> str:
    """file, start, end, label, score, then one column per class (empty for "no speech")."""
    classes = list(dict.fromkeys(c for r in recordings for s in r["segments"] for c in (s["probs"] or {})))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "start", "end", "label", "score", *classes])
    for r in recordings:
        for s in r["segments"]:
            probs = s["probs"] or {}
            score = probs[s["pred"]] if s["pred"] is not None else ""
            writer.writerow([r["file"], f"{s['start']:.3f}", f"{s['end']:.3f}", s["label"], score,
                             *[probs.get(c, "") for c in classes]])
    return out.getvalue()


def _clock(seconds: float, decimal: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{decimal}{ms % 1000:03d}"


def to_webvtt(recording: dict) -> str:
    cues = [f"{i}\n{_clock(s['start'], '.')} --> {_clock(s['end'], '.')}\n{caption(s)}\n"
            for i, s in enumerate(recording["segments"], 1)]
    return "\n".join(["WEBVTT\n", *cues])


def to_srt(recording: dict) -> str:
    return "\n".join(f"{i}\n{_clock(s['start'], ',')} --> {_clock(s['end'], ',')}\n{caption(s)}\n"
                     for i, s in enumerate(recording["segments"], 1))


def to_table(recording: dict) -> str:
    """The console's view of one recording: a line per segment, then its summary."""
    r = recording
    lines = [f"{r['file']}: {r['duration_s']:.1f} s, {r['speech_s']:.1f} s of speech in "
             f"{sum(s['pred'] is not None for s in r['segments'])} segments"]
    lines += [f"  {_clock(s['start'], '.')} - {_clock(s['end'], '.')}  {caption(s)}" for s in r["segments"]]
    if r["pred"] is None:
        lines.append(f"  {r['no_speech']}")
    else:
        shares = ", ".join(f"{c} {100 * share:.0f} %" for c, share in r["summary"].items())
        lines.append(f"  share of speech time: {shares}")
    return "\n".join(lines) + "\n"


def render(recordings: Sequence[dict], fmt: str) -> str:
    """The text of ``recordings`` (segment_recording results) in ``fmt``; captions are for one recording."""
    if fmt == "csv":
        return to_csv(recordings)
    if fmt == "json":
        return json.dumps(list(recordings), indent=2) + "\n"
    if len(recordings) != 1:
        raise ConfigError(f"{fmt} captions are for one recording; {len(recordings)} were given (use csv or json)")
    return (to_webvtt if fmt == "vtt" else to_srt)(recordings[0])


def write_timeline(path: str | Path, recordings: Sequence[dict], fmt: str | None = None) -> str:
    """Write ``recordings`` to ``path`` whole or not at all, in ``fmt`` or the format its suffix names; returns it."""
    fmt = format_of(path, fmt)
    atomic_write_text(path, render(recordings, fmt))
    return fmt
