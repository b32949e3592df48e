"""TESS: two actresses (OAF, aged 64; YAF, aged 26) saying "Say the word ___" for 200 words in seven emotions,
``OAF_back_angry.wav`` in folders such as ``OAF_angry`` / ``YAF_pleasant_surprised``. The emotion is the name's last
field (angry, disgust, fear, happy, neutral, ps = pleasant surprise, sad), else the folder's; a few files of the
release are named ``OA_...`` for ``OAF_...``."""

from __future__ import annotations

import re
from pathlib import Path

from emofuse.data.corpora.base import CORPORA, Listing, is_audio, media_files, speaker_from

SPEAKERS = {"OAF": "OAF", "OA": "OAF", "YAF": "YAF"}
EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy", "neutral": "neutral",
            "ps": "surprised", "pleasant_surprise": "surprised", "pleasant_surprised": "surprised", "sad": "sad"}


def _emotion(path: Path) -> str | None:
    field = path.stem.split("_")[-1].lower()
    if field in EMOTIONS:
        return field
    folder = path.parent.name.lower().split("_", 1)
    return folder[1] if len(folder) == 2 and folder[1] in EMOTIONS else None


@CORPORA.register("tess")
def tess(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    listing = Listing()
    for path in media_files(root):
        fields = path.stem.split("_")
        emotion = _emotion(path)
        actor = SPEAKERS.get(fields[0].upper())
        speaker = speaker_from(speaker_regex, path, actor)
        if not is_audio(path) or len(fields) < 2 or emotion is None or actor is None or speaker is None:
            listing.unrecognised.append(path)
            continue
        word = fields[1:-1] if fields[-1].lower() in EMOTIONS else fields[1:]
        listing.rows.append({"id": path.stem, "speaker": speaker, "gender": "female", "label": EMOTIONS[emotion],
                             "corpus_label": emotion, "audio": path, "word": "_".join(word)})
    return listing
