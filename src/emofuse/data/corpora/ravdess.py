"""RAVDESS: ``MM-CC-EE-II-SS-RR-AA`` names (data/ravdess.py), audio-only (03) and audio-video (01) or video-only (02)
files of the speech takes, paired by take. Odd actors are male, even ones female; ``video_stem`` names the take's
audio-video clip, the key of OpenFace tables such as ``openface_au_clip_means.csv``."""

from __future__ import annotations

import re
from pathlib import Path

from emofuse.data.corpora.base import CORPORA, Listing, media_files, speaker_from
from emofuse.core.errors import DataError
from emofuse.data.ravdess import parse_name

SPEECH = 1


@CORPORA.register("ravdess")
def ravdess(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    listing = Listing()
    takes: dict[str, dict] = {}
    for path in media_files(root):
        try:
            name = parse_name(path)
        except DataError:
            listing.unrecognised.append(path)
            continue
        if name.channel != SPEECH:
            continue
        entry = takes.setdefault(name.take, {"name": name, "audio": None, "video": {}})
        if name.modality == 3:
            entry["audio"] = path
        else:
            entry["video"][name.modality] = path
    for take, entry in takes.items():
        name, audio = entry["name"], entry["audio"]
        video = entry["video"].get(1) or entry["video"].get(2)
        speaker = speaker_from(speaker_regex, audio or video, f"{name.actor:02d}")
        if speaker is None:
            listing.unrecognised.append(audio or video)
            continue
        listing.rows.append({
            "id": (audio or video).stem, "speaker": speaker, "gender": "female" if name.female else "male",
            "label": name.emotion_name, "corpus_label": f"{name.emotion:02d}", "audio": audio, "video": video,
            "intensity": "strong" if name.intensity == 2 else "normal", "statement": name.statement,
            "repetition": name.repetition, "video_stem": video.stem if video else f"01-{take}",
        })
    return listing
