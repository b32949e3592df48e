"""Where a modality's features come from, for each sample of a dataset: one interface, three kinds of source.

- ``MediaFiles``: a media file per sample, put through an extractor (cached, parallel; features/extract.py).
- ``FeatureFiles``: a precomputed ``.npy`` per sample, (D,) or (T, D).
- ``FeatureTable``: a row per sample in a table of clip features (OpenFace action units, or any columns of a CSV:
  datasets/feature_table.py), or a per-frame CSV.

Every source returns the features it could get and adds what went wrong to the sample's problems, naming the
file, so that the dataset builder can stop or skip and report.
"""

from __future__ import annotations

import hashlib
import logging
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emofuse.core import console
from emofuse.core.errors import DataError
from emofuse.datasets.feature_table import ColumnTable
from emofuse.data.openface import FLOAT32_MAX, VisualSource
from emofuse.features.base import Extractor
from emofuse.features.cache import FeatureCache, file_digest
from emofuse.features.extract import extract_features

log = logging.getLogger(__name__)

Problems = dict[str, list[str]]  # sample -> what is wrong with it


@dataclass
class Loaded:
    values: dict[str, np.ndarray] = field(default_factory=dict)  # sample -> features
    digests: dict[str, str] = field(default_factory=dict)  # sample -> SHA-256 of the file its features came from
    records: dict[str, dict] = field(default_factory=dict)  # sample -> the extractor's record
    source_digest: str = ""  # a table or folder shared by all samples: its digest, once


def _name(what: str | dict[str, str], sample: str) -> str:
    return what if isinstance(what, str) else what[sample]


@dataclass
class MediaFiles:
    files: dict[str, Path]
    extractor: Extractor
    what: str | dict[str, str]  # how problems name the source ("audio"), or per sample ("column 'video'")

    def load(self, cache: FeatureCache, workers: int, progress: bool, problems: Problems) -> Loaded:
        report = extract_features(list(dict.fromkeys(self.files.values())), self.extractor, cache, workers, progress)
        log.info("%s features: %d computed, %d from cache, %d failed", self.extractor.registry_name, report.computed,
                 report.cached, len(report.failures))
        loaded = Loaded()
        for sample, path in self.files.items():
            if path in report.failures:
                problems[sample].append(f"{_name(self.what, sample)} {path}: {report.failures[path]}")
                continue
            loaded.values[sample], loaded.digests[sample] = report.features[path], report.digests[path]
            if path in report.info:
                loaded.records[sample] = report.info[path]
        return loaded


@dataclass
class FeatureFiles:
    """``.npy`` files of one shape family: every file (D,) or every file (T, D), with one D; a file that differs from
    the most common shape (or from ``expected_dim``, the dimension a trained model takes) is a problem."""

    files: dict[str, Path]
    what: str | dict[str, str]
    expected_dim: int | None = None

    def load(self, cache: FeatureCache, workers: int, progress: bool, problems: Problems) -> Loaded:
        loaded = Loaded()
        for sample, path in self.files.items():
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError, tokenize.TokenError) as err:  # TokenError: numpy parsing a bad header
                problems[sample].append(f"{_name(self.what, sample)} {path}: cannot read the .npy file ({err})")
                continue
            if array.ndim not in (1, 2) or 0 in array.shape:
                problems[sample].append(f"{_name(self.what, sample)} {path}: shape {array.shape}, expected (D,) or (T, D)")
                continue
            real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            if not real or not (np.abs(array.astype(np.float64)) <= FLOAT32_MAX).all():  # larger: infinite as float32
                problems[sample].append(f"{_name(self.what, sample)} {path}: holds NaN, infinity, non-numbers (complex "
                                        "ones too) or numbers beyond float32")
                continue
            loaded.values[sample], loaded.digests[sample] = array.astype(np.float32), file_digest(path)
        shapes = Counter((v.ndim, v.shape[-1]) for v in loaded.values.values())
        if shapes:
            ndim, dim = shapes.most_common(1)[0][0]
            dim = self.expected_dim or dim
            for sample in [s for s, v in loaded.values.items() if (v.ndim, v.shape[-1]) != (ndim, dim)]:
                shape = loaded.values.pop(sample).shape
                loaded.digests.pop(sample)
                expected = f"({'T, ' if ndim == 2 else ''}{dim})"
                problems[sample].append(f"{_name(self.what, sample)} {self.files[sample]}: shape {shape}, expected {expected} "
                                        f"{'as the model was trained on' if self.expected_dim else 'like the other files'}")
        return loaded


@dataclass
class FeatureTable:
    """Clip vectors looked up by key: a row of a clip table, or the per-frame CSV named after the key. Each sample
    lists the keys it may be stored under (RAVDESS: its audio-video stem, else its video-only stem)."""

    source: VisualSource | ColumnTable
    keys: dict[str, list[str]]
    what: str

    def load(self, cache: FeatureCache, workers: int, progress: bool, problems: Problems) -> Loaded:
        loaded = Loaded(source_digest=digest_path(self.source.path))
        for sample, candidates in self.keys.items():
            key = next((k for k in candidates if self.source.has(k)), None)
            if key is None:
                problems[sample].append(f"{self.what} {self.source.describe_missing(candidates[0])}")
                continue
            try:
                loaded.values[sample] = self.source.vector(key)
            except DataError as err:
                problems[sample].append(f"{self.what} {err}")
        return loaded


@dataclass
class TextColumn:
    """What was said, given as text (a manifest's transcript column), embedded by a text-embedding extractor's
    ``embed_texts`` (the ``transcript`` extractor's sentence encoder): the same vector as transcribing audio that says
    it. Embeddings are cached by the text's digest under the extractor's settings, so a corpus is encoded once."""

    texts: dict[str, str]
    encoder: Extractor
    what: str
    batch: int = 256  # texts encoded per call: the cache fills as it goes

    def load(self, cache: FeatureCache, workers: int, progress: bool, problems: Problems) -> Loaded:
        loaded, key, todo = Loaded(), self.encoder.settings_key(), {}
        for sample, text in self.texts.items():
            text = text.strip() if isinstance(text, str) else ""
            if not text:
                problems[sample].append(f"{self.what}: no text")
                continue
            digest = loaded.digests[sample] = hashlib.sha256(text.encode()).hexdigest()
            cached = cache.load(key, digest)
            if cached is None:
                todo.setdefault(digest, (text, []))[1].append(sample)
            else:
                loaded.values[sample] = cached
        pending = list(todo.items())
        with console.progress(f"embedding {self.what}", len(pending), progress and bool(pending), "texts") as advance:
            for start in range(0, len(pending), self.batch):
                chunk = pending[start:start + self.batch]
                for (digest, (_, samples)), vector in zip(chunk, self.encoder.embed_texts([t for _, (t, _) in chunk])):
                    cache.save(key, digest, vector)
                    loaded.values.update({sample: vector for sample in samples})
                    advance()
        log.info("%s (%s): %d texts embedded, %d from cache", self.encoder.registry_name, self.what, len(pending),
                 len(loaded.values) - sum(len(s) for _, (_, s) in pending))
        return loaded


def digest_path(path: Path) -> str:
    """A file's SHA-256, or for a folder one over its CSV files' names and digests."""
    if path.is_file():
        return file_digest(path)
    h = hashlib.sha256()
    for p in sorted(path.rglob("*.csv")):
        h.update(f"{p.relative_to(path)}:{file_digest(p)}\n".encode())
    return h.hexdigest()
