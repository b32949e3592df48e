"""Which files of an `emofuse predict` call are one speaker, and when a group's statistics are not to be trusted.

A run trained with speaker normalisation expects each speaker standardised with statistics of that
speaker's own clips. predict never guesses a speaker: a file is on its own unless the caller names
its speaker (one name for every file, or a file -> speaker map). A group's statistics are shaky when
it has few files, or when its files are one-sided: standardising a speaker who was only ever angry
with those angry clips makes the anger look like that speaker's normal voice. One-sidedness is judged
without labels, from the predictions the files get on their own (typical-speaker statistics, which
the group's own statistics cannot bend): a group is one-sided when at least ONE_SIDED_SHARE of its
files fall in the same arousal half.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from emofuse.core.registry import ConfigError

HIGH_AROUSAL = ("angry", "happy", "fearful", "surprised")
LOW_AROUSAL = ("neutral", "calm", "sad")  # disgust belongs to neither half

MIN_GROUP_FILES = 2  # one clip-level vector has no spread: such a "group" is a file on its own
ONE_SIDED_SHARE = 0.8


def read_speaker_map(path: str | Path) -> dict[str, str]:
    """A CSV with columns ``file`` and ``speaker`` -> {file: speaker}."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: speaker map does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns, rows = reader.fieldnames, list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"{path}: cannot read the speaker map as a CSV of UTF-8 text ({err})") from None
    if not {"file", "speaker"} <= set(columns or []):
        raise ConfigError(f"{path}: a speaker map needs the columns file and speaker (it has {columns})")
    mapping: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        file, speaker = (row["file"] or "").strip(), (row["speaker"] or "").strip()
        if not file or not speaker:
            raise ConfigError(f"{path}, line {line}: empty file or speaker")
        if mapping.get(file, speaker) != speaker:
            raise ConfigError(f"{path}, line {line}: {file} is given two speakers ({mapping[file]}, {speaker})")
        mapping[file] = speaker
    return mapping


def assign_speakers(files: list[str], speakers: str | Mapping[str, str] | None) -> list[str | None]:
    """Each file's speaker: None (on its own), one name for all, or looked up in a map by the path as given or,
    for a map entry without a folder, by the file name."""
    if speakers is None or isinstance(speakers, str):
        return [speakers] * len(files)
    out = [speakers[f] if f in speakers else speakers.get(Path(f).name) for f in files]
    unmapped = [f for f, s in zip(files, out) if s is None]
    if unmapped:
        raise ConfigError(f"speaker map: no speaker for {', '.join(unmapped)} (a row's file is the path as given "
                          "on the command line, or just the file name)")
    return out


def arousal_half(emotion: str) -> str | None:
    return "high" if emotion in HIGH_AROUSAL else "low" if emotion in LOW_AROUSAL else None


def one_sided(predictions: list[str]) -> str | None:
    """The arousal half ("high" / "low") that at least ONE_SIDED_SHARE of the predictions fall in, if any."""
    halves = [arousal_half(p) for p in predictions]
    for half in ("high", "low"):
        if predictions and halves.count(half) >= ONE_SIDED_SHARE * len(predictions):
            return half
    return None


def group_warnings(speaker: str, n_files: int, min_files: int, alone_predictions: list[str]) -> list[str]:
    """Why the statistics of a speaker's ``n_files`` files may be unstable (none: an empty list)."""
    warnings = []
    if n_files < MIN_GROUP_FILES:
        warnings.append(f"speaker {speaker}: {n_files} file, no statistics of its own; normalised as a file on its own")
    elif n_files < min_files:
        warnings.append(f"speaker {speaker}: statistics from {n_files} files, fewer than the run's "
                        f"features.adapt_clips ({min_files}) enrolment clips")
    half = one_sided(alone_predictions)
    if n_files >= MIN_GROUP_FILES and half:
        share = sum(arousal_half(p) == half for p in alone_predictions) / len(alone_predictions)
        warnings.append(f"speaker {speaker}: one-sided, {share:.0%} of the files are {half}-arousal emotions when "
                        "predicted on their own; the speaker's statistics absorb part of that emotion")
    return warnings
