"""EmoDB (Berlin): ``03a01Fa.wav`` = speaker (2 digits), text (3 characters), emotion letter of the German word
(W Wut/Ärger anger, L Langeweile boredom, E Ekel disgust, A Angst fear, F Freude happiness, T Trauer sadness,
N neutral) and version (a, b, ...). Boredom has no common name and stays ``bored``. Speaker genders as the corpus
documents them."""

from __future__ import annotations

import re
from pathlib import Path

from emofuse.data.corpora.base import CORPORA, Listing, is_audio, media_files, speaker_from

NAME = re.compile(r"^(\d{2})([a-z]\d{2})([WLEAFTN])([a-z])$")
EMOTIONS = {"W": "angry", "L": "bored", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
FEMALE = {"08", "09", "13", "14", "16"}  # and 03, 10, 11, 12, 15 male


@CORPORA.register("emodb")
def emodb(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    listing = Listing()
    for path in media_files(root):
        match = NAME.match(path.stem)
        speaker = speaker_from(speaker_regex, path, match.group(1) if match else None)
        if match is None or speaker is None or not is_audio(path):
            listing.unrecognised.append(path)
            continue
        actor, text, emotion, version = match.groups()
        listing.rows.append({"id": path.stem, "speaker": speaker, "gender": "female" if actor in FEMALE else "male",
                             "label": EMOTIONS[emotion], "corpus_label": emotion, "audio": path, "text": text,
                             "version": version})
    return listing
