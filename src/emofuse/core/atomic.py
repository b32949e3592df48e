"""Files written whole or not at all, with the permissions the user's umask gives any new file.

A file is written under a temporary name unique to this write and renamed into place, so a reader (or a
rerun after a crash) sees the old file or the new one, never half of one, and processes writing the same
file at once never write the same temporary file. ``tempfile.mkstemp`` would create it with mode 0600
whatever the umask; here it is created exclusively with mode 0666 and the kernel applies the umask, as for
any file a program opens for writing (0644 under the usual umask 022).
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator


@contextmanager
def temporary_file(directory: Path, prefix: str, suffix: str = ".tmp") -> Iterator[tuple[Path, BinaryIO]]:
    """A new file ``directory/<prefix><random><suffix>`` open for binary writing, removed again on an error."""
    while True:
        path = Path(directory) / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            yield path, f
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Create or replace ``path`` with what ``write`` writes to the open file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with temporary_file(path.parent, f".{path.name}.") as (tmp, f):
        write(f)
        f.close()
        os.replace(tmp, path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(path: str | Path, obj: object) -> None:
    """``torch.save`` of ``obj`` to ``path``, written whole or not at all (a checkpoint, a run's ``best.pt``)."""
    import torch  # core stays importable without torch loaded

    atomic_write(path, lambda f: torch.save(obj, f))
