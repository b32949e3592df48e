"""nEMO (Polish; Christop, LREC-COLING 2024): nine actors, six emotions, ``samples/<speaker>_<emotion>_<n>.wav``
listed in ``data.tsv`` (file_id, emotion, raw_text, normalized_text, speaker_id, gender, age). The table, not the file
name, gives every field, and a file it lists is found by its stem, so a copy converted to another format (``.flac``)
reads the same. What was said goes in ``transcript`` (as written) and ``normalized_text`` (lower case, no
punctuation)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from emofuse.core.errors import DataError
from emofuse.data.corpora.base import CORPORA, Listing, audio_by_stem, speaker_from

TABLE = "data.tsv"
FIELDS = ("file_id", "emotion", "raw_text", "normalized_text", "speaker_id", "gender", "age")
EMOTIONS = {"anger": "angry", "fear": "fearful", "happiness": "happy", "neutral": "neutral", "sadness": "sad",
            "surprised": "surprised"}


def read_table(root: Path) -> tuple[Path, pd.DataFrame]:
    """nEMO's data.tsv: in the folder, else the first found below it; cells trimmed (speaker ids carry spaces)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "corpus directory does not exist")
    path = root / TABLE if (root / TABLE).is_file() else next(iter(sorted(root.rglob(TABLE))), None)
    if path is None:
        raise DataError(root, f"no {TABLE} (nEMO's table of samples: {', '.join(FIELDS)}) in the folder")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot parse the table as tab-separated text ({' '.join(str(err).split())})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in FIELDS[:2] + FIELDS[4:5] if c not in table.columns]
    if missing:
        raise DataError(path, f"no column {', '.join(map(repr, missing))} (columns: {', '.join(table.columns)})")
    return path, table.fillna("").apply(lambda col: col.str.strip())  # a short row's missing cells are empty


@CORPORA.register("nemo")
def nemo(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    path, table = read_table(root)
    files = audio_by_stem(root)
    listing, listed = Listing(), set()
    for line, row in enumerate(table.to_dict("records"), start=2):
        if row["emotion"] not in EMOTIONS:
            raise DataError(f"{path} line {line}", f"emotion {row['emotion']!r} is not one of nEMO's ({', '.join(EMOTIONS)})")
        name = Path(row["file_id"])
        found = files.get(name.stem, [])
        audio = next((p for p in found if p.name == name.name), found[0] if found else None)
        listed.add(name.stem)
        if audio is None:
            listing.missing.append(f"{path} line {line}: {name}")
            continue
        speaker = speaker_from(speaker_regex, audio, row["speaker_id"])
        if speaker is None:
            listing.unrecognised.append(audio)
            continue
        listing.rows.append({"id": name.stem, "corpus": "nemo", "speaker": speaker,
                             "gender": row.get("gender", "").lower() or None, "label": EMOTIONS[row["emotion"]],
                             "corpus_label": row["emotion"], "audio": audio, "transcript": row.get("raw_text"),
                             "normalized_text": row.get("normalized_text"), "age": row.get("age") or None})
    listing.unrecognised += [p for stem, paths in files.items() if stem not in listed for p in paths]
    return listing
