"""A modality stored as columns of a CSV table (``data.sources.<modality>: {kind: table}``): one row per sample,
found by its key, the feature columns chosen by name or by prefix. Whatever would make every row unusable (no key
column, a feature column missing or holding text, a key on two rows) stops at once, naming the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.core.errors import DataError
from emofuse.data.openface import FLOAT32_MAX


class ColumnTable:
    """Feature vectors keyed by the table's ``key`` column (the ``VisualSource`` interface: ``has``,
    ``describe_missing``, ``vector``)."""

    def __init__(self, path: Path, key: str, columns: list[str] | None = None, prefix: str | None = None):
        self.path, self.key = Path(path), key
        if not self.path.is_file():
            raise DataError(self.path, "feature table does not exist")
        try:
            table = pd.read_csv(self.path, dtype={key: str}, keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise DataError(self.path, f"cannot parse the feature table as CSV ({' '.join(str(err).split())})") from None
        table.columns = [str(c).strip() for c in table.columns]
        if key not in table.columns:
            raise DataError(self.path, f"no column '{key}' to find the manifest's rows by (has: {', '.join(table.columns[:8])})")
        if columns is not None:
            absent = [c for c in columns if c not in table.columns]
            if absent:
                raise DataError(self.path, f"no column {', '.join(map(repr, absent))}")
        else:
            columns = [c for c in table.columns if c.startswith(prefix) and c != key]
            if not columns:
                raise DataError(self.path, f"no column whose name starts with '{prefix}'")
        text = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
        if text:
            raise DataError(self.path, f"column '{text[0]}' holds values that are not numbers")
        repeated = table[key][table[key].duplicated()]
        if len(repeated):
            raise DataError(self.path, f"{key} {repeated.iloc[0]!r} is on more than one row")
        self.feature_names = list(columns)
        self._table = table.set_index(key)[self.feature_names]

    def has(self, value: str) -> bool:
        return value in self._table.index

    def describe_missing(self, value: str) -> str:
        return f"{self.path}: no row with {self.key} {value!r}"

    def vector(self, value: str) -> np.ndarray:
        row = self._table.loc[value].to_numpy(dtype=np.float64)
        usable = np.abs(row) <= FLOAT32_MAX
        if not usable.all():
            bad = [n for n, ok in zip(self.feature_names, usable) if not ok]
            raise DataError(self.path, f"the row of {self.key} {value!r} has empty, NaN or infinite values in {', '.join(bad)}")
        return row.astype(np.float32)
