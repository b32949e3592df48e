"""MELD (Poria et al., ACL 2019): utterances of the TV series Friends in dialogues, seven emotions, shipped as
``{train,dev,test}_sent_emo.csv`` (Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season,
Episode, StartTime, EndTime) in the official split. Written text, no media: a row's input is its ``transcript``.

The official split is by dialogue and a character speaks in all three parts, so the manifest's ``speaker`` (the
group folds keep apart) is the dialogue (``train_dia12``) and the character goes in ``character``; ``split`` fixes the
protocol (dev is the validation part). ``context`` is what was said just before in the same dialogue (``Name: words``
of the previous utterance; the dialogue's first utterance has ``START``): context a deployment has when it
recognises an utterance, as a second text modality."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from emofuse.core.errors import DataError
from emofuse.data.corpora.base import CORPORA, Listing, common_label

PARTS = {"train": "train", "dev": "val", "test": "test"}  # file prefix -> manifest split
FIELDS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
START = "START"  # the context of a dialogue's first utterance


def read_part(root: Path, part: str) -> tuple[Path, pd.DataFrame]:
    """One part's table (``<part>_sent_emo.csv``, in the folder or below it), cells trimmed."""
    name = f"{part}_sent_emo.csv"
    path = root / name if (root / name).is_file() else next(iter(sorted(root.rglob(name))), None)
    if path is None:
        raise DataError(root, f"no {name} (MELD's {part} part) in the folder")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot parse as CSV ({' '.join(str(err).split())})") from None
    missing = [c for c in FIELDS if c not in table.columns]
    if missing:
        raise DataError(path, f"no column {', '.join(map(repr, missing))} (columns: {', '.join(table.columns)})")
    return path, table.apply(lambda col: col.str.strip())


@CORPORA.register("meld")
def meld(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "corpus directory does not exist")
    if speaker_regex is not None:
        raise DataError(root, "MELD's groups are its dialogues (the official split keeps them apart): --speaker-regex "
                              "does not apply")
    listing = Listing()
    for part, split in PARTS.items():
        path, table = read_part(root, part)
        previous: dict[str, str] = {}  # dialogue -> its last utterance so far, as context
        for line, row in enumerate(table.to_dict("records"), start=2):
            if row["Emotion"] not in EMOTIONS:
                raise DataError(f"{path} line {line}", f"emotion {row['Emotion']!r} is not one of MELD's ({', '.join(EMOTIONS)})")
            if not (row["Dialogue_ID"].isdecimal() and row["Utterance_ID"].isdecimal()):
                raise DataError(f"{path} line {line}", f"Dialogue_ID {row['Dialogue_ID']!r} and Utterance_ID "
                                                       f"{row['Utterance_ID']!r} must be whole numbers")
            if not row["Utterance"]:
                listing.missing.append(f"{path} line {line}: empty Utterance")
                continue
            dialogue = f"{part}_dia{int(row['Dialogue_ID'])}"
            listing.rows.append({
                "id": f"{dialogue}_utt{int(row['Utterance_ID'])}", "corpus": "meld", "speaker": dialogue,
                "label": common_label(row["Emotion"]), "corpus_label": row["Emotion"], "split": split,
                "transcript": row["Utterance"], "context": previous.get(dialogue, START),
                "character": row["Speaker"], "sentiment": row["Sentiment"],
                "season": row.get("Season") or None, "episode": row.get("Episode") or None,
            })
            previous[dialogue] = f"{row['Speaker']}: {row['Utterance']}"
    return listing
