"""SAVEE: four male speakers (DC, JE, JK, KL), 120 sentences each in seven emotions. Files are ``a01.wav`` in speaker
folders (AudioData/DC/, with the videos in AudioVisualClip/DC/a01.avi) or flat as ``DC_a01.wav``; the emotion code is
a, d, f, h, n, sa, su (anger, disgust, fear, happiness, neutral, sadness, surprise). Audio and video of a sentence are
paired by speaker and name."""

from __future__ import annotations

import re
from pathlib import Path

from emofuse.data.corpora.base import CORPORA, Listing, media_files, pair_media, speaker_from

NAME = re.compile(r"^(?:(DC|JE|JK|KL)_)?(a|d|f|h|n|sa|su)(\d{2})$")
EMOTIONS = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprised"}
SPEAKERS = ("DC", "JE", "JK", "KL")


@CORPORA.register("savee")
def savee(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    listing = Listing()
    sentences: dict[tuple[str, str], list[Path]] = {}
    for path in media_files(root):
        match = NAME.match(path.stem)
        actor = (match.group(1) or path.parent.name.upper()) if match else None
        speaker = speaker_from(speaker_regex, path, actor)
        if match is None or speaker is None or (speaker_regex is None and actor not in SPEAKERS):
            listing.unrecognised.append(path)
            continue
        sentences.setdefault((speaker, f"{match.group(2)}{match.group(3)}"), []).append(path)
    for (speaker, sentence), media in pair_media(sentences).items():
        code = NAME.match(sentence).group(2)
        listing.rows.append({"id": f"{speaker}_{sentence}", "speaker": speaker, "gender": "male", "label": EMOTIONS[code],
                             "corpus_label": code, **media, "sentence": sentence})
    return listing
