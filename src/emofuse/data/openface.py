"""Visual features from OpenFace 2 action units.

Two layouts are read: (a) a clip-level table with one row per audio-video recording, keyed by its
file stem (``video_stem``), and (b) OpenFace's own per-frame CSV output, one file per clip named by
the clip's stem, reduced to the same clip-level vector (mean AU intensity ``AU*_r`` and presence
rate ``AU*_c`` over the frames where tracking succeeded).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.core.errors import DataError

AU_COLUMN = re.compile(r"^AU\d{2}_[rc]$")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # vectors are float32: a larger value would become infinite


def au_columns(columns) -> list[str]:
    return [c for c in columns if AU_COLUMN.match(c)]


def _check_numbers(path: Path, table: pd.DataFrame, columns: list[str]) -> None:
    """Refuse a table where one of ``columns`` holds text (empty cells read as NaN and are checked where used)."""
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise DataError(path, f"column '{bad[0]}' holds values that are not numbers")


def read_clip_table(path: str | Path, key_column: str = "video_stem") -> tuple[pd.DataFrame, list[str]]:
    """The clip-level AU table indexed by clip stem, and its feature columns."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "visual feature table does not exist")
    try:
        table = pd.read_csv(path, dtype={key_column: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot parse CSV ({err})") from None
    table.columns = [c.strip() for c in table.columns]
    if key_column not in table.columns:
        raise DataError(path, f"no '{key_column}' column (has: {', '.join(table.columns[:8])}, ...)")
    features = au_columns(table.columns)
    if not features:
        raise DataError(path, "no OpenFace action-unit columns (AU01_r, AU01_c, ...)")
    _check_numbers(path, table, features)
    if table[key_column].duplicated().any():
        dup = table.loc[table[key_column].duplicated(), key_column].iloc[0]
        raise DataError(path, f"clip '{dup}' has more than one row")
    return table.set_index(key_column), features


def clip_vector_from_frames(path: str | Path, min_confidence: float = 0.8) -> tuple[np.ndarray, list[str], dict]:
    """Clip-level AU vector from one OpenFace per-frame CSV, plus counts of usable frames."""
    path = Path(path)
    try:
        frames = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot parse OpenFace CSV ({err})") from None
    frames.columns = [c.strip() for c in frames.columns]
    features = au_columns(frames.columns)
    if not features:
        raise DataError(path, "no OpenFace action-unit columns (AU01_r, AU01_c, ...)")
    _check_numbers(path, frames, [c for c in ("success", "confidence", *features) if c in frames.columns])
    usable = pd.Series(True, index=frames.index)
    if "success" in frames.columns:
        usable &= frames["success"] == 1
    if "confidence" in frames.columns:
        usable &= frames["confidence"] >= min_confidence
    if not usable.any():
        raise DataError(path, f"no frame with a tracked face (of {len(frames)} frames)")
    values = frames.loc[usable, features].to_numpy(dtype=np.float64)
    if not (np.abs(values) <= FLOAT32_MAX).all():
        raise DataError(path, "action-unit values hold NaN, infinity or numbers beyond float32")
    stats = {"frames": int(len(frames)), "frames_without_face": int((~usable).sum())}
    return values.mean(axis=0).astype(np.float32), features, stats


class VisualSource:
    """Clip-level visual vectors keyed by take, from a table or a folder of per-frame CSVs."""

    def __init__(self, kind: str, path: Path):
        self.kind = kind
        self.path = Path(path)
        if kind == "table":
            self._table, self.feature_names = read_clip_table(self.path)
            self._files: dict[str, Path] = {}
        elif kind == "openface_frames":
            if not self.path.is_dir():
                raise DataError(self.path, "OpenFace per-frame CSV directory does not exist")
            self._files = {p.stem: p for p in sorted(self.path.rglob("*.csv"))}
            if not self._files:
                raise DataError(self.path, "no OpenFace per-frame CSV files found")
            self.feature_names = []
        else:
            raise ValueError(f"unknown visual source kind '{kind}'")

    def has(self, stem: str) -> bool:
        return stem in (self._table.index if self.kind == "table" else self._files)

    def describe_missing(self, stem: str) -> str:
        if self.kind == "table":
            return f"{self.path}: no row for clip '{stem}'"
        return f"{self.path}: no per-frame CSV '{stem}.csv'"

    def vector(self, stem: str) -> np.ndarray:
        if self.kind == "table":
            row = self._table.loc[stem, self.feature_names].to_numpy(dtype=np.float64)
            usable = np.abs(row) <= FLOAT32_MAX
            if not usable.all():
                bad = [n for n, ok in zip(self.feature_names, usable) if not ok]
                raise DataError(self.path, f"clip '{stem}' has NaN/infinite values in {', '.join(bad)}")
            return row.astype(np.float32)
        vector, names, _ = clip_vector_from_frames(self._files[stem])
        if not self.feature_names:
            self.feature_names = names
        elif names != self.feature_names:
            raise DataError(self._files[stem], "action-unit columns differ from the other clips")
        return vector
