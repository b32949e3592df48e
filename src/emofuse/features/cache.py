"""On-disk feature cache keyed by file content and extractor settings.

An entry is ``ROOT/<settings_key>/<sha256 of the file's bytes>.npy``: renaming or moving a file
keeps its entry, editing it or changing any extractor setting does not. Entries are written to a
temporary file and renamed into place, so an interrupted extraction leaves only whole entries and a
rerun resumes with the files that are missing. The temporary name is unique per write (created
exclusively, also on a shared file system; emofuse/core/atomic.py), so processes or machines extracting into one
cache at the same time never write the same file; if two compute the same entry, the identical
result of the last rename stays.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from emofuse.core.atomic import atomic_write, atomic_write_bytes


def default_cache_dir() -> Path:
    env = os.environ.get("EMOFUSE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emofuse"


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array))


class FeatureCache:
    """Entries are arrays; an extractor may keep a small JSON record beside one (e.g. how many video frames had a
    face), written before the array so that an entry's array never exists without its record."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry(self, settings_key: str, digest: str) -> Path:
        return self.root / settings_key / f"{digest}.npy"

    def load(self, settings_key: str, digest: str, mmap: bool = False) -> np.ndarray | None:
        """The cached array (memory-mapped read-only with ``mmap``: large face-crop clips stay on disk until used)."""
        path = self.entry(settings_key, digest)
        if not path.is_file():
            return None
        try:
            return np.load(path, mmap_mode="r" if mmap else None)
        except (ValueError, OSError, EOFError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
            return None

    def load_info(self, settings_key: str, digest: str) -> dict | None:
        try:
            return json.loads(self.entry(settings_key, digest).with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None

    def save(self, settings_key: str, digest: str, array: np.ndarray, info: dict | None = None) -> None:
        path = self.entry(settings_key, digest)
        if info is not None:
            atomic_write_bytes(path.with_suffix(".json"), json.dumps(info).encode())
        atomic_save_npy(path, array)
