"""What every corpus layout shares: the common emotion vocabulary, the listing of files, the CSV written."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from emofuse.core.errors import DataError
from emofuse.data.manifest import read_table
from emofuse.data.media import AUDIO_SUFFIXES, VIDEO_SUFFIXES
from emofuse.data.ravdess import EMOTIONS
from emofuse.data.speakers import natural_key
from emofuse.core.registry import Registry

CORPORA: Registry = Registry("corpus layout")
COMMON_EMOTIONS = EMOTIONS  # neutral, calm, happy, sad, angry, fearful, disgust, surprised: RAVDESS's names
COLUMNS = ("id", "corpus", "speaker", "gender", "label", "corpus_label", "audio", "video")
SYNONYMS = {
    "neutral": "neutral", "neu": "neutral", "calm": "calm",
    "happy": "happy", "happiness": "happy", "joy": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad",
    "angry": "angry", "anger": "angry", "ang": "angry",
    "fearful": "fearful", "fear": "fearful", "afraid": "fearful", "anxiety": "fearful", "fea": "fearful",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "surprised": "surprised", "surprise": "surprised", "sur": "surprised",
}


def common_label(name: str) -> str:
    """A label in the common vocabulary where it is one of the common emotions (by any usual name), else as written
    in lower case."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return SYNONYMS.get(key, key)


@dataclass
class Listing:
    """The rows found under a corpus folder, the files that did not fit its naming scheme, and the entries of the
    corpus's own list of samples (a metadata table, a partition file) whose file is not there."""

    rows: list[dict] = field(default_factory=list)
    unrecognised: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "where: what", e.g. "data.tsv line 12: samples/x.wav"


def media_files(root: Path) -> list[Path]:
    """Audio and video files under ``root`` at any depth, sorted (hidden files and folders left out), linked folders
    followed (a corpus gathered from links; each real folder once, so a link cycle ends) and named by their links."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "corpus directory does not exist")
    found, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        subfolders[:] = [] if real in seen else [d for d in subfolders if not d.startswith(".")]
        if real not in seen:
            seen.add(real)
            found += [Path(folder, n) for n in names if not n.startswith(".")
                      and Path(n).suffix.lower() in (*AUDIO_SUFFIXES, *VIDEO_SUFFIXES) and Path(folder, n).is_file()]
    return sorted(found)


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def audio_by_stem(root: Path, prefer: tuple[str, ...] = (".wav", ".flac")) -> dict[str, list[Path]]:
    """The audio files under ``root`` by stem, the ``prefer`` suffixes first: how a corpus's own list of samples
    (a metadata table, a partition file) finds its files, whatever format a copy was converted to."""
    found: dict[str, list[Path]] = {}
    for path in media_files(root):
        if is_audio(path):
            found.setdefault(path.stem, []).append(path)
    rank = {suffix: i for i, suffix in enumerate(prefer)}
    return {stem: sorted(paths, key=lambda p: (rank.get(p.suffix.lower(), len(rank)), str(p))) for stem, paths in found.items()}


def pair_media(files: dict[str, list[Path]], prefer_audio: tuple[str, ...] = (".wav", ".flac")) -> dict[str, dict]:
    """Per sample key, its audio file (the first of ``prefer_audio`` there is, else any) and its video file."""
    out = {}
    for key, paths in files.items():
        audio = sorted((p for p in paths if is_audio(p)), key=lambda p: (p.suffix.lower() not in prefer_audio, str(p)))
        video = sorted(p for p in paths if not is_audio(p))
        out[key] = {"audio": audio[0] if audio else None, "video": video[0] if video else None}
    return out


def speaker_from(regex: re.Pattern | None, path: Path, default: str | None) -> str | None:
    """The speaker a ``--speaker-regex`` finds in the file name (its ``speaker`` group, else its first group, else the
    whole match), or ``default``."""
    if regex is None:
        return default
    match = regex.search(path.name)
    if match is None:
        return None
    if "speaker" in regex.groupindex:
        return match.group("speaker")
    return match.group(1) if regex.groups else match.group(0)


def write_manifest(listing: Listing, relative_to: Path | None = None, corpus: str | None = None) -> str:
    """The manifest CSV: rows sorted by speaker and id, paths absolute or relative to ``relative_to``; ``corpus``
    names the corpus of every row that does not name its own, so that manifests written one by one and concatenated
    form one manifest of several corpora."""
    table = pd.DataFrame(listing.rows)
    if corpus is not None:
        table["corpus"] = table["corpus"].fillna(corpus) if "corpus" in table else corpus
    for column in ("audio", "video"):
        if column in table:
            table[column] = [_path(p, relative_to) for p in table[column]]
    table = table.dropna(axis=1, how="all")
    order = [c for c in COLUMNS if c in table] + [c for c in table if c not in COLUMNS]
    table = table[order].iloc[sorted(range(len(table)), key=lambda i: (natural_key(table["speaker"].iat[i]),
                                                                        natural_key(table["id"].iat[i])))]
    return table.to_csv(index=False, lineterminator="\n")


def merge_manifests(paths: list[Path], relative_to: Path | None = None) -> str:
    """One manifest of several (``emofuse manifest merge``): their columns united, file paths (``audio``, ``video``,
    ``*_features``) resolved against each manifest's folder and written absolute or relative to ``relative_to``, and
    a ``corpus`` column (a manifest without one: its file's stem). Rows of one id in two manifests, or a ``fold`` /
    ``split`` column in some only, stop with the files named."""
    tables = []
    for path in map(Path, paths):
        table = read_table(path)
        for column in [c for c in table if c in ("audio", "video") or c.endswith("_features")]:
            table[column] = [_path(path.parent / cell, relative_to) if cell else "" for cell in table[column]]
        if "corpus" not in table:
            table.insert(0, "corpus", path.stem)
        tables.append((path, table))
    for column in ("fold", "split"):
        having = [str(p) for p, t in tables if column in t]
        if having and len(having) < len(tables):
            raise DataError(having[0], f"has a {column} column that {', '.join(str(p) for p, t in tables if column not in t)} "
                                       f"lack(s): the protocol of every corpus is fixed, or of none")
    seen: dict[str, Path] = {}
    for path, table in tables:
        for sample in table.get("id", []):
            if seen.setdefault(sample, path) != path:
                raise DataError(path, f"id {sample!r} is also in {seen[sample]}: ids must be unique across the manifests")
    merged = pd.concat([t for _, t in tables], ignore_index=True).fillna("")
    order = [c for c in COLUMNS if c in merged] + [c for c in merged if c not in COLUMNS]
    return merged[order].to_csv(index=False, lineterminator="\n")


def corpora_manifest(corpora: dict[str, Path], folder: Path) -> Path:
    """Each corpus read from its folder as it ships (``{name: folder}``, names of :data:`CORPORA`), its manifest
    written to ``folder/NAME.csv`` and all of them merged into ``folder/manifest.csv``, which is returned: one command
    rebuilds a multi-corpus model's data from the corpora wherever they lie (the fingerprint hashes the audio, not
    its paths)."""
    from emofuse.core.atomic import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, root in corpora.items():
        listing = CORPORA.get(name)(Path(root), None)
        if not listing.rows:
            raise DataError(root, f"no file fits the {name} naming scheme")
        paths.append(folder / f"{name}.csv")
        atomic_write_text(paths[-1], write_manifest(listing, None, name))
    atomic_write_text(folder / "manifest.csv", merge_manifests(paths))
    return folder / "manifest.csv"


def _path(path: Path | None, relative_to: Path | None) -> str | None:
    """The path as found, made absolute without following links: a manifest names a linked file or folder, not where
    the link points today."""
    if path is None:
        return None
    path = os.path.abspath(path)
    return os.path.relpath(path, os.path.abspath(relative_to)) if relative_to is not None else path
