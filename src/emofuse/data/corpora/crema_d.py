"""CREMA-D: ``ActorID_Sentence_Emotion_Level`` names (``1001_DFA_ANG_XX.wav``): 91 actors (1001-1091), 12 sentences,
six emotions (ANG, DIS, FEA, HAP, NEU, SAD) and the level (LO, MD, HI, XX unspecified). Audio (AudioWAV, AudioMP3)
and video (VideoFlash .flv) files of a clip are paired by name. Genders come from ``VideoDemographics.csv``
(ActorID, Sex) where it is in the folder."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from emofuse.data.corpora.base import CORPORA, Listing, media_files, pair_media, speaker_from
from emofuse.core.errors import DataError

NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = ("LO", "MD", "HI", "XX")


def demographics(root: Path) -> dict[str, str]:
    """ActorID -> female / male, from the corpus's VideoDemographics.csv where it is present."""
    found = sorted(Path(root).rglob("VideoDemographics.csv"))
    if not found:
        return {}
    try:
        table = pd.read_csv(found[0], dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(found[0], f"cannot parse the demographics as CSV ({' '.join(str(err).split())})") from None
    missing = [c for c in ("ActorID", "Sex") if c not in table.columns]
    if missing:
        raise DataError(found[0], f"no column {', '.join(map(repr, missing))} (columns: {', '.join(table.columns)})")
    return {a.strip(): s.strip().lower() for a, s in zip(table["ActorID"], table["Sex"])}


@CORPORA.register("crema-d")
def crema_d(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    listing = Listing()
    clips: dict[str, list[Path]] = {}
    for path in media_files(root):
        match = NAME.match(path.stem)
        if not match or match.group(3) not in EMOTIONS or match.group(4) not in LEVELS:
            listing.unrecognised.append(path)
            continue
        clips.setdefault(path.stem, []).append(path)
    sex = demographics(root)
    for stem, media in pair_media(clips).items():
        actor, sentence, emotion, level = NAME.match(stem).groups()
        speaker = speaker_from(speaker_regex, media["audio"] or media["video"], actor)
        if speaker is None:
            listing.unrecognised.extend(clips[stem])
            continue
        listing.rows.append({"id": stem, "speaker": speaker, "gender": sex.get(actor), "label": EMOTIONS[emotion],
                             "corpus_label": emotion, **media, "sentence": sentence, "level": level})
    return listing
