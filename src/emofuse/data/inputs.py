"""What a batch predicts: the recordings named by files, folders, glob patterns, path lists and Kaldi ``wav.scp`` files.

Each recording is an :class:`Item` with an id, the key a resumed batch uses to know what its output already holds: the
path as given (a folder's files: the folder joined with their path inside it), or a ``wav.scp`` line's utterance id.
Folders are searched recursively for the suffixes the toolkit decodes (hidden files and folders left out, sorted, so
that a rerun sees the same order); a file named on its own is taken whatever its suffix, and one that does not exist is
kept, for the batch to report with the others. A pattern matching nothing, a list naming nothing or a ``wav.scp`` line
that cannot be read is refused at once, before any model is loaded.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from emofuse.core.errors import DataError
from emofuse.data.media import AUDIO_SUFFIXES, VIDEO_SUFFIXES

MEDIA_SUFFIXES = frozenset((*AUDIO_SUFFIXES, *VIDEO_SUFFIXES))
GLOB_CHARACTERS = frozenset("*?[")
SCP_SUFFIX = ".scp"


@dataclass(frozen=True)
class Item:
    id: str  # unique within a batch: the key of its line in a resumable output
    path: Path


def media_in(folder: Path) -> list[Path]:
    """Every file under ``folder`` with a media suffix, sorted; hidden files and folders (``.git``, ``._clip.wav``) skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in MEDIA_SUFFIXES]
    return sorted(found)


def is_pattern(text: str) -> bool:
    return not Path(text).exists() and bool(GLOB_CHARACTERS & set(text))


def read_path_list(path: Path) -> list[Item]:
    """One path a line (blank lines and lines starting with ``#`` skipped); the id is the path as written."""
    items = [Item(line, Path(line)) for line in _lines(path) if not line.startswith("#")]
    if not items:
        raise DataError(path, "the list names no files (one path a line)")
    return items


def read_wav_scp(path: Path) -> list[Item]:
    """Kaldi's ``wav.scp``: ``<utterance-id> <path>`` a line. A command ending in ``|`` (Kaldi pipes the audio from it)
    or an archive offset (``file.ark:123``) is refused naming the line: predict reads files, and runs no commands."""
    items, seen = [], {}
    for number, line in enumerate(_lines(path), 1):
        where = f"{path}, line {number}"
        parts = line.split(maxsplit=1)
        if len(parts) < 2:
            raise DataError(where, f"expected '<utterance-id> <path>', got {line!r}")
        utt, location = parts[0], parts[1].strip()
        if location.endswith("|"):
            raise DataError(where, f"'{utt}' is read from a command ({location!r}); predict reads audio files only: "
                                   "write the audio to files first (e.g. with Kaldi's wav-copy) and list those")
        if not Path(location).exists() and location.rpartition(":")[2].isdigit():
            raise DataError(where, f"'{utt}' points into an archive ({location!r}); list whole audio files instead")
        if utt in seen:
            raise DataError(where, f"utterance id '{utt}' already on line {seen[utt]}; ids must be unique")
        seen[utt] = number
        items.append(Item(utt, Path(location)))
    if not items:
        raise DataError(path, "the wav.scp names no utterances ('<utterance-id> <path>' a line)")
    return items


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(path, "list file does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(path, f"not a text file of paths ({err.reason} at byte {err.start})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_list(path: Path) -> list[Item]:
    """A ``*.scp`` file is a Kaldi ``wav.scp``; any other a plain list of paths."""
    return read_wav_scp(path) if path.suffix == SCP_SUFFIX else read_path_list(path)


def expand_inputs(paths: Iterable[str | Path], lists: Iterable[str | Path] = ()) -> list[Item]:
    """The recordings that ``paths`` (files, folders, glob patterns, ``*.scp`` files) and ``lists`` (path lists or
    ``wav.scp`` files) name, in the order given, each id once (a file named twice is predicted once)."""
    items: list[Item] = []
    for given in paths:
        text = str(given)
        path = Path(text)
        if path.is_dir():
            found = media_in(path)
            if not found:
                raise DataError(path, f"no audio or video files in it or below (looked for {', '.join(sorted(MEDIA_SUFFIXES))})")
            items += [Item(str(p), p) for p in found]
        elif path.suffix == SCP_SUFFIX and path.is_file():
            items += read_wav_scp(path)
        elif is_pattern(text):
            matches = sorted(m for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise DataError(text, "the pattern matches no files")
            items += [Item(m, Path(m)) for m in matches]
        else:
            items.append(Item(text, path))
    for listed in lists:
        items += read_list(Path(listed))
    unique: dict[str, Item] = {}
    for item in items:
        unique.setdefault(item.id, item)
    return list(unique.values())
