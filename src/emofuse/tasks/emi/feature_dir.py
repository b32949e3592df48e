"""A directory of pre-extracted features with continuous targets (the ABAW / Hume-Vidmimic2 shape).

Layout::

    ROOT/labels.csv              id, split (train / val / test), one column per target
    ROOT/<modality>/<id>.npy     float array (T, D) per sample; a (D,) vector is a one-step sequence
    ROOT/<modality>.npz          alternative: one archive per modality, keyed by id

T may differ between samples, D may not (within a modality). Feature dimensions, lengths and the
number of samples are read from the data; the config only names the modalities and target columns.
Test rows may leave every target cell empty (a challenge test split): they are predicted, not scored.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.core.errors import DataError

SPLITS = ("train", "val", "test")
LABELS = "labels.csv"


@dataclass
class FeatureDirData:
    ids: list[str]
    split: np.ndarray  # (N,) of "train" / "val" / "test"
    features: dict[str, list[np.ndarray]]  # modality -> N arrays (T_i, D_m) float32
    targets: np.ndarray  # (N, K) float64; NaN where a test row has no targets
    target_names: list[str]
    extra: np.ndarray  # (N, E) further labelled columns (VAD pseudo-labels); may be NaN on test rows
    fingerprint: str  # sha256 over labels.csv and every loaded array

    @property
    def dims(self) -> dict[str, int]:
        return {m: v[0].shape[1] for m, v in self.features.items()}

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def has_targets(self, split: str) -> bool:
        rows = self.rows(split)
        return len(rows) > 0 and bool(np.isfinite(self.targets[rows]).all())


def read_labels(root: Path, targets: list[str], extra: list[str], required: tuple[str, ...]) -> pd.DataFrame:
    path = root / LABELS
    if not path.is_file():
        raise DataError(path, "labels file does not exist (expected columns id, split and one per target)")
    try:
        table = pd.read_csv(path, dtype={"id": str, "split": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot parse CSV ({err})") from None
    missing = [c for c in ("id", "split", *targets, *extra) if c not in table.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; has {list(table.columns)}")
    if table["id"].isna().any():
        raise DataError(path, f"row {int(table['id'].isna().to_numpy().argmax()) + 2} has no id")
    dup = table["id"][table["id"].duplicated()]
    if len(dup):
        raise DataError(path, f"id '{dup.iloc[0]}' appears more than once")
    unknown = sorted(set(table["split"].fillna("<empty>")) - set(SPLITS))
    if unknown:
        first = table["id"][~table["split"].isin(SPLITS)].iloc[0]
        raise DataError(path, f"unknown split value(s) {unknown} (first at id '{first}'); allowed: {', '.join(SPLITS)}")
    for split in required:
        if not (table["split"] == split).any():
            raise DataError(path, f"no rows with split '{split}'")
    try:
        values = table[[*targets, *extra]].astype(np.float64)
    except ValueError as err:
        raise DataError(path, f"target columns must be numbers ({err})") from None
    labelled = (table["split"] != "test").to_numpy()
    bad_extra = labelled & ~np.isfinite(values[extra].to_numpy()).all(1)
    if bad_extra.any():
        raise DataError(path, f"id '{table['id'][bad_extra].iloc[0]}' has empty or non-finite value(s) in {extra}")
    finite = np.isfinite(values[targets].to_numpy())
    for i in np.flatnonzero(~finite.all(1)):
        row = table.iloc[i]
        empty = [t for t, ok in zip(targets, finite[i]) if not ok]
        if row["split"] != "test":
            raise DataError(path, f"id '{row['id']}' ({row['split']}) has empty or non-finite target(s) {empty}")
        if finite[i].any():
            raise DataError(path, f"test id '{row['id']}' has some targets but not {empty}: give all or none")
    test = (table["split"] == "test").to_numpy()
    if finite[test].all(1).any() and not finite[test].all():
        raise DataError(path, "some test rows have targets and others none: give targets for all test rows or for none")
    table[[*targets, *extra]] = values
    return table


class _ModalitySource:
    """Where one modality's arrays live: a folder of <id>.npy files or one <modality>.npz archive."""

    def __init__(self, root: Path, modality: str):
        self.folder, self.archive = root / modality, root / f"{modality}.npz"
        if self.folder.is_dir() and self.archive.is_file():
            raise DataError(root, f"modality '{modality}' is stored twice ({self.folder}/ and {self.archive}): keep one")
        if self.folder.is_dir():
            self._npz = None
        elif self.archive.is_file():
            try:
                self._npz = np.load(self.archive, allow_pickle=False)
            except (OSError, ValueError, zipfile.BadZipFile) as err:
                raise DataError(self.archive, f"cannot read .npz archive ({err})") from None
        else:
            raise DataError(root, f"no features for modality '{modality}': expected folder {self.folder}/ "
                                  f"of <id>.npy files or archive {self.archive}")

    def load(self, sample_id: str) -> tuple[np.ndarray, str]:
        if self._npz is None:
            path = self.folder / f"{sample_id}.npy"
            if not path.is_file():
                raise DataError(path, f"feature file missing for id '{sample_id}'")
            try:
                return np.load(path, allow_pickle=False), str(path)
            except (OSError, ValueError, EOFError) as err:
                raise DataError(path, f"cannot read .npy file ({err})") from None
        where = f"{self.archive}[{sample_id}]"
        if sample_id not in self._npz.files:
            raise DataError(self.archive, f"no array for id '{sample_id}'")
        try:
            return self._npz[sample_id], where
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise DataError(where, f"cannot read array ({err})") from None


def load_feature_dir(root: str | Path, modalities: list[str], targets: list[str], extra_columns: list[str] | None = None,
                     splits: tuple[str, ...] = SPLITS, required: tuple[str, ...] = ("train", "val")) -> FeatureDirData:
    """Check labels.csv and read the features of the rows in ``splits``; each ``required`` split must have rows.

    ``extra_columns`` (e.g. VAD pseudo-labels) must be filled on train and val rows.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "feature directory does not exist")
    extra = list(extra_columns or [])
    table = read_labels(root, targets, extra, required)
    table = table[table["split"].isin(splits)].reset_index(drop=True)
    digest = hashlib.sha256((root / LABELS).read_bytes())
    ids = table["id"].tolist()
    features: dict[str, list[np.ndarray]] = {}
    for m in modalities:
        source, arrays, first = _ModalitySource(root, m), [], None
        for sample_id in ids:
            array, where = source.load(sample_id)
            array = _check_array(array, where, first)
            first = first or (array.shape[1], where)
            digest.update(f"{m}/{sample_id}:{array.shape}\n".encode())
            digest.update(array.tobytes())
            arrays.append(array)
        features[m] = arrays
    return FeatureDirData(ids=ids, split=table["split"].to_numpy(dtype=str), features=features,
                          targets=table[targets].to_numpy(dtype=np.float64), target_names=list(targets),
                          extra=table[extra].to_numpy(dtype=np.float64).reshape(len(table), len(extra)),
                          fingerprint=digest.hexdigest())


def _check_array(array: np.ndarray, where: str, first: tuple[int, str] | None) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(where, f"expected numbers, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(where, f"expected a non-empty (T, D) array, got shape {array.shape}")
    if first is not None and array.shape[1] != first[0]:
        raise DataError(where, f"feature dimension {array.shape[1]}, expected {first[0]} (as in {first[1]})")
    if not np.isfinite(array).all():
        t, d = np.argwhere(~np.isfinite(array))[0]
        raise DataError(where, f"holds NaN or infinite values (first at frame {t}, dimension {d})")
    return array.astype(np.float32, copy=False)
