"""Any corpus laid out as ``DIR/<label>/<file>``: the label is the folder's name (common emotions by any usual name,
e.g. anger or Angry, are written in the common vocabulary), the speaker what ``--speaker-regex`` finds in the file
name. Audio and video files of one name in one folder are one sample."""

from __future__ import annotations

import re
from pathlib import Path

from emofuse.data.corpora.base import CORPORA, Listing, common_label, media_files, pair_media, speaker_from
from emofuse.core.registry import ConfigError


@CORPORA.register("folder")
def folder(root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    if speaker_regex is None:
        raise ConfigError("the folder layout needs --speaker-regex: a pattern that finds the speaker in each file name, "
                          r"e.g. '^(\w+?)_' for spk01_take3.wav (the group named speaker, else the first group)")
    listing = Listing()
    samples: dict[tuple[str, str], list[Path]] = {}
    for path in media_files(root):
        speaker = speaker_from(speaker_regex, path, None)
        if path.parent == Path(root) or speaker is None:
            listing.unrecognised.append(path)
            continue
        samples.setdefault((path.parent.relative_to(root).as_posix(), path.stem), []).append(path)
    for (label, stem), media in pair_media(samples).items():
        first = samples[(label, stem)][0]
        listing.rows.append({"id": f"{label}/{stem}", "speaker": speaker_from(speaker_regex, first, None),
                             "label": common_label(Path(label).name), "corpus_label": label, **media})
    return listing
