"""A manifest: one CSV row per sample, the way to bring your own data.

Columns: ``label`` (any class names) and ``speaker`` (or ``group``) are required. Per modality a row names a media
file (``audio``, ``video``: anything FFmpeg decodes; a video's audio track stands in where ``audio`` is absent or
empty) or a precomputed feature file (``audio_features``, ``visual_features``, ``<modality>_features`` of any
other modality the config declares: ``.npy`` of shape (D,) or (T, D)).
Optional: ``id`` (or ``clip``; default: the file's stem), ``gender`` (or ``sex``; validation speakers are balanced
over it), ``split`` (train / val / test) or ``fold`` (1, 2, ...) to fix the protocol, ``corpus`` (several values:
the rows of several corpora, each trained and scored on its own labels; a speaker id is then one of its corpus, read
as ``corpus/speaker``), and any other columns.
Relative paths resolve against the manifest's folder.

Reading checks everything that can be checked without decoding: a missing column stops at once; a row's problem
(an empty cell, a file that does not exist, a label seen once, a speaker in two splits or folds) is kept with the
row's line number, the column and the file, for the dataset builder to stop on or skip and report. Of several
corpora (training), one with no value of a file column on any of its rows (nEMO has no video) lacks that modality:
its rows are not incomplete, they train the branches of the modalities they have (``Manifest.absent``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from emofuse.core.errors import DataError

SPEAKER_COLUMNS = ("speaker", "group")
GENDER_COLUMNS = ("gender", "sex")
ID_COLUMNS = ("id", "clip")
SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}


@dataclass
class Manifest:
    path: Path
    rows: pd.DataFrame  # id, speaker, label, line; gender, split, fold and key columns where given: strings, trimmed
    files: dict[str, dict[str, Path]]  # column -> id -> resolved file ("audio" includes the video fallbacks)
    columns: dict[str, dict[str, str]]  # column -> id -> the column the file was read from (for messages)
    problems: dict[str, list[str]] = field(default_factory=dict)  # id -> what is wrong with the row
    absent: dict[str, list[str]] = field(default_factory=dict)  # file column -> the corpora without it on any row

    def describe(self, sample: str) -> str:
        return f"line {self.line(sample)} ({sample})"

    def line(self, sample: str) -> int:
        return int(self.rows.loc[self.rows["id"] == sample, "line"].iloc[0])


def read_table(path: Path) -> pd.DataFrame:
    """The manifest as trimmed strings (empty cells empty), stopping on what is not a readable CSV or TSV."""
    if path.is_dir():
        raise DataError(path, "is a folder, not a manifest CSV (a RAVDESS folder is read by configs with "
                              "data.dataset: ravdess; `emofuse manifest CORPUS DIR` writes a manifest of a corpus folder)")
    if not path.is_file():
        raise DataError(path, "manifest does not exist")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if path.suffix == ".tsv" else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot parse the manifest as CSV ({' '.join(str(err).split())})") from None
    table.columns = [str(c).strip() for c in table.columns]
    dup = [c for c, n in Counter(table.columns).items() if n > 1]
    if dup:
        raise DataError(path, f"column {dup[0]!r} appears twice in the header")
    return table.apply(lambda col: col.str.strip())


def _pick(table: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in table.columns), None)


def _resolve(cell: str, base: Path) -> Path:
    path = Path(cell).expanduser()
    return path if path.is_absolute() else base / path


def read_manifest(path: str | Path, file_columns: list[str], key_columns: list[str] = (), training: bool = True,
                  keyed: bool = False) -> Manifest:
    """Read and check a manifest for the given file columns (``audio`` may be served by ``video``) and key columns
    (e.g. the column naming a row's clip in a feature table). ``training`` adds the checks folds need: every label
    at least twice, a speaker in one split or fold only, two speakers at least. ``keyed``: some modality is looked up
    by a key (a key column or the row's id), which every row has."""
    path = Path(path)
    table = read_table(path)
    where = f"{path} (columns: {', '.join(table.columns)})"
    speaker = _pick(table, SPEAKER_COLUMNS)
    missing = [c for c in ("label",) if c not in table.columns] + ([] if speaker else ["speaker (or group)"])
    for column in file_columns:
        if column not in table.columns and not (column == "audio" and "video" in table.columns):
            missing.append(column + (" (or video, whose audio track serves)" if column == "audio" else
                                      f" (.npy files of the {column[:-9]} modality)" if column.endswith("_features") else ""))
    missing += [c for c in key_columns if c not in table.columns]
    if missing:
        raise DataError(where, f"no column {', '.join(repr(m) for m in missing)}")
    if not len(table):
        raise DataError(path, "the manifest has no rows")
    if "split" in table.columns and "fold" in table.columns:
        raise DataError(path, "has both a split and a fold column: keep the one that states the protocol")

    rows = pd.DataFrame({"line": range(2, len(table) + 2), "label": table["label"], "speaker": table[speaker]})
    id_column = _pick(table, ID_COLUMNS)
    rows["id"] = table[id_column] if id_column else _default_ids(table, file_columns, path.parent)
    gender = _pick(table, GENDER_COLUMNS)
    if gender:
        rows["gender"] = table[gender]
    for column in ("split", "fold", *key_columns):
        if column in table.columns and column not in rows:
            rows[column] = table[column]
    if "corpus" in table.columns and table["corpus"].nunique() > 1:  # several corpora: a speaker is one of a corpus
        rows["corpus"] = table["corpus"]
        rows["speaker"] = table["corpus"] + "/" + table[speaker]  # empty cells are reported from the table
    problems: dict[str, list[str]] = {}

    def problem(i: int, column: str, text: str) -> None:
        problems.setdefault(rows["id"].iat[i], []).append(f"column '{column}': {text}")

    seen: dict[str, int] = {}
    for i, sample in enumerate(rows["id"]):
        if not sample:
            problem(i, id_column or "id", "empty")
        elif sample in seen:
            problem(i, id_column or "id", f"id {sample!r} is also on line {seen[sample]}")
        else:
            seen[sample] = int(rows["line"].iat[i])
    for column in ("label", speaker, *(["corpus"] if "corpus" in rows else []), *key_columns):
        for i in range(len(rows)):
            if not table[column].iat[i]:
                problem(i, column, "empty")
    if "split" in rows:
        normal = rows["split"].str.lower().map(SPLITS)
        for i in range(len(rows)):
            if pd.isna(normal.iat[i]):
                problem(i, "split", f"{rows['split'].iat[i]!r} is not train, val or test")
        rows["split"] = normal.fillna("")
    if "fold" in rows:
        for i in range(len(rows)):
            if not (rows["fold"].iat[i].isdecimal() and int(rows["fold"].iat[i]) >= 1):
                problem(i, "fold", f"{rows['fold'].iat[i]!r} is not a fold number (1, 2, ...)")

    absent = absent_corpora(path, table, rows, file_columns, keyed) if training else {}
    files: dict[str, dict[str, Path]] = {c: {} for c in file_columns}
    columns: dict[str, dict[str, str]] = {c: {} for c in file_columns}
    for column in file_columns:
        for i, sample in enumerate(rows["id"]):
            if column in absent and rows["corpus"].iat[i] in absent[column]:
                continue  # a corpus without the modality: the row trains the branches of the others
            source = column
            cell = table[column].iat[i] if column in table.columns else ""
            if not cell and column == "audio" and "video" in table.columns:
                source, cell = "video", table["video"].iat[i]
            if not cell:
                problem(i, column, "empty" + (" (and so is video)" if column == "audio" and "video" in table.columns else ""))
                continue
            try:
                file = _resolve(cell, path.parent)
                exists = file.is_file()
            except (RuntimeError, OSError) as err:  # ~user of no such user, a name too long for the file system
                problem(i, source, f"{cell}: not a usable path ({getattr(err, 'strerror', None) or err})")
                continue
            if not exists:
                problem(i, source, f"{file}: file does not exist")
                continue
            files[column][sample], columns[column][sample] = file, source
    manifest = Manifest(path, rows, files, columns, problems, absent)
    if training:
        check_training_rows(manifest)
    return manifest


def absent_corpora(path: Path, table: pd.DataFrame, rows: pd.DataFrame, file_columns: list[str],
                   keyed: bool = False) -> dict[str, list[str]]:
    """Of several corpora, per file column those without its value on any of their rows (nEMO has no video): their
    rows lack that modality, which is no problem of theirs (an empty cell in a corpus that has the column elsewhere
    is). A corpus with none of the file columns stops, unless a modality is looked up by a key (``keyed``: a
    transcript, a feature table's row; every row has one): its rows would train no branch."""
    if "corpus" not in rows:
        return {}
    absent: dict[str, list[str]] = {}
    for column in file_columns:
        cells = table[column] if column in table else pd.Series("", index=table.index)
        if column == "audio" and "video" in table:
            cells = cells.where(cells != "", table["video"])
        for corpus, group in cells.groupby(rows["corpus"].to_numpy()):
            if corpus and not group.any():
                absent.setdefault(column, []).append(corpus)
    refused = absent and len(absent) == len(file_columns) and not keyed
    for corpus in set.intersection(*(set(c) for c in absent.values())) if refused else ():
        raise DataError(path, f"corpus {corpus!r} has none of the columns the config reads ({', '.join(file_columns)}) "
                              f"on any of its rows: leave it out of the manifest or add its files")
    return absent


def _default_ids(table: pd.DataFrame, file_columns: list[str], base: Path) -> pd.Series:
    """Each row's first file's stem; where stems repeat, its path (relative to the manifest, without suffix)."""
    present = [c for c in (*file_columns, "audio", "video") if c in table.columns]
    first = table[present].apply(lambda row: next((v for v in row if v), ""), axis=1) if present else pd.Series("", table.index)
    stems = first.map(lambda cell: Path(cell).stem if cell else "")
    if stems[stems != ""].duplicated().any():
        return first.map(lambda cell: Path(cell).with_suffix("").as_posix() if cell else "")
    return stems


def check_training_rows(manifest: Manifest) -> None:
    """Rows folds cannot use: a label seen once, a speaker in two splits or folds; fewer than two speakers stops."""
    rows = manifest.rows
    ok = rows[~rows["id"].isin(manifest.problems)]
    for sample, found in labels_seen_once(ok).items():
        manifest.problems.setdefault(sample, []).extend(found)
    for column in ("split", "fold"):
        if column not in rows:
            continue
        for speaker, group in ok.groupby("speaker"):
            if group[column].nunique() > 1:
                where = "; ".join(f"{column} {value} on line(s) {', '.join(map(str, g['line']))}"
                                  for value, g in group.groupby(column))
                for sample in group["id"]:
                    manifest.problems.setdefault(sample, []).append(
                        f"column '{column}': speaker {speaker!r} is in more than one {column} ({where})")
    usable = rows[~rows["id"].isin(manifest.problems)]
    check_speakers(manifest.path, usable["speaker"])
    check_classes(manifest, usable)


def check_classes(manifest: Manifest, usable: pd.DataFrame) -> None:
    """A classifier needs two classes: one class stops here, before any extraction, with what the label looks like
    (a folder layout read one level too high labels every file with the folder holding them all). Of several
    corpora, each needs two: a sample of a corpus of one class would be trained and predicted among that one only."""
    labels = sorted(set(usable["label"]))
    if "corpus" in usable:
        single = {c: sorted(set(g["label"])) for c, g in usable.groupby("corpus") if g["label"].nunique() < 2}
        if single and len(labels) >= 2:
            raise DataError(manifest.path, "; ".join(f"corpus {c!r} has one class ({', '.join(map(repr, found))})"
                                                     for c, found in single.items())
                            + " among the usable rows: each corpus is trained and scored among its own classes, which "
                              "takes at least 2")
    if len(labels) >= 2:
        return
    found = repr(labels[0]) if labels else "none"
    hint = ""
    folders = {Path(f).parent.name for by_id in manifest.files.values() for f in by_id.values()}
    if labels and folders == {labels[0]}:
        hint = (f": every file lies in a folder named {labels[0]!r}, so the label looks like that folder's name, not an "
                f"emotion; the folder layout is DIR/<label>/<file> (one folder per emotion)")
    raise DataError(manifest.path, f"{len(labels)} class ({found}) among the usable rows; training a classifier needs "
                                   f"at least 2{hint}")


def labels_seen_once(rows: pd.DataFrame) -> dict[str, list[str]]:
    counts = Counter(rows["label"])
    return {sample: [f"column 'label': label {label!r} is on this row only (a class needs a sample to train on and "
                     f"one to test)"] for sample, label in zip(rows["id"], rows["label"]) if counts[label] == 1}


def check_speakers(path: Path, speakers: pd.Series) -> None:
    found = sorted(set(speakers))
    if len(found) < 2:
        raise DataError(path, f"{len(found)} speaker ({', '.join(map(repr, found)) or 'none'}) among the usable rows: "
                              "speaker-independent training and testing need at least 2")
