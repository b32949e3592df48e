"""EmoBox partition files (Ma et al., Interspeech 2024): JSON lines with ``key`` (``<dataset>-<name>``), ``dataset``,
``wav`` (a path under EmoBox's own download folder) and ``emo`` (its cross-corpus track writes ``wav_filename``,
``label`` and ``speaker`` instead).

Each clip is found under an audio folder by its file stem, with any audio suffix (a converted copy serves); where a
stem is in several folders, the one whose folders end like the ``wav`` path's. ``emo`` is the corpus's code in
EmoBox (``Angry``, ``ang``, ``c`` ...): the ``label_map.json`` EmoBox keeps beside a corpus's folds turns codes into
names where it is there, and the names go to the common vocabulary (base.common_label); without a label map a label
must be a common emotion. The id, speaker and gender come from emofuse's reader of the corpus where there is one
(RAVDESS: the actor), else from the line's ``speaker`` or the first field of the key. Several
``*_test_fold_<k>.jsonl`` files give a ``fold`` column: each clip's test fold, which fixes the protocol's folds."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePath

from emofuse.core.errors import DataError
from emofuse.data.corpora.base import COMMON_EMOTIONS, CORPORA, Listing, audio_by_stem, common_label, speaker_from

DATASETS = {"cremad": "crema-d", "crema_d": "crema-d"}  # EmoBox's dataset names that differ from emofuse's
TEST_FOLD = re.compile(r"_test_fold_(\d+)\.jsonl?$")
LABEL_MAP = "label_map.json"


def label_names(partition: Path) -> tuple[Path | None, dict[str, str]]:
    """EmoBox's ``label_map.json`` (code -> name) beside the partition file or one folder up, and its path."""
    for path in (partition.parent / LABEL_MAP, partition.parent.parent / LABEL_MAP):
        if path.is_file():
            try:
                return path, {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
            except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as err:
                raise DataError(path, f"not a JSON object of code -> name ({err})") from None
    return None, {}


def read_lines(partition: Path) -> list[tuple[int, dict]]:
    """(line number, object) of each non-empty line, the fields checked."""
    if not partition.is_file():
        raise DataError(partition, "partition file does not exist")
    out = []
    for line, text in enumerate(partition.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{partition} line {line}", f"not a JSON object ({err.msg})") from None
        missing = [" or ".join(names) for names in (("wav", "wav_filename"), ("emo", "label"))
                   if not isinstance(entry, dict) or not any(entry.get(n) for n in names)]
        if missing:
            raise DataError(f"{partition} line {line}", f"no field {', '.join(missing)}")
        out.append((line, entry))
    return out


def _match(wav: PurePath, found: list[Path]) -> list[Path]:
    """The files among ``found`` (one stem) whose folders end most like ``wav``'s, in the order of preference."""
    def shared(path: Path) -> int:
        n = 0
        for a, b in zip(reversed(path.parent.parts), reversed(wav.parent.parts)):
            if a != b:
                break
            n += 1
        return n
    best = max(map(shared, found), default=0)
    return [p for p in found if shared(p) == best]


def own_rows(dataset: str | None, audio_root: Path, speaker_regex: re.Pattern | None) -> dict[Path, dict] | None:
    """Rows of emofuse's reader of the dataset by audio file, or None where emofuse has no reader of it."""
    name = DATASETS.get(dataset, dataset)
    if name not in CORPORA.names() or name == "folder":
        return None
    return {row["audio"]: row for row in CORPORA.get(name)(audio_root, speaker_regex).rows if row.get("audio")}


def emobox(partitions: list[Path], audio_root: Path, speaker_regex: re.Pattern | None = None) -> Listing:
    files = audio_by_stem(audio_root)
    folds = [TEST_FOLD.search(p.name) for p in partitions]
    with_folds = len(partitions) > 1 and all(folds)
    listing, seen, readers = Listing(), {}, {}
    for partition, fold in zip(partitions, folds):
        map_path, names = label_names(partition)
        for line, entry in read_lines(partition):
            where = f"{partition} line {line}"
            wav = PurePath(entry.get("wav") or entry["wav_filename"])
            emo = str(entry.get("emo") or entry["label"])
            label = common_label(names.get(emo, emo))
            if label not in COMMON_EMOTIONS and emo not in names:
                codes = f"not a code of {map_path} ({', '.join(names)})" if map_path else f"no {LABEL_MAP} is beside the file"
                raise DataError(where, f"label {emo!r} is not a common emotion ({', '.join(COMMON_EMOTIONS)}) and {codes}")
            key = str(entry.get("key") or wav.stem)
            if key in seen:
                earlier = seen[key]
                if earlier["corpus_label"] != emo:
                    raise DataError(where, f"{key} is labelled {emo!r} here and {earlier['corpus_label']!r} in "
                                           f"{earlier['where']}")
                if with_folds:
                    raise DataError(where, f"{key} is also in {earlier['where']}: a clip in two test folds")
                continue
            match = _match(wav, files.get(wav.stem, []))
            if len({p.parent for p in match}) > 1:
                raise DataError(where, f"{wav.name} matches {len(match)} files under {audio_root} "
                                       f"({', '.join(map(str, match[:3]))}); give --audio-root the corpus's own folder")
            if not match:
                listing.missing.append(f"{where}: {wav}")
                continue
            dataset = entry.get("dataset")
            if dataset not in readers:
                readers[dataset] = own_rows(dataset, audio_root, speaker_regex)
            row = _row(readers[dataset], match[0], key, dataset, entry, speaker_regex)
            if row is None:
                listing.unrecognised.append(match[0])
                continue
            row.update({"label": label, "corpus_label": emo, **({"fold": int(fold.group(1))} if with_folds else {})})
            seen[key] = {"corpus_label": emo, "where": where}
            listing.rows.append(row)
    return listing


def _row(own: dict[Path, dict] | None, audio: Path, key: str, dataset: str | None, entry: dict,
         speaker_regex: re.Pattern | None) -> dict | None:
    """The clip's row from the corpus's reader (None where it does not read the file), else from the line."""
    if own is not None:
        return {**own[audio], "corpus": dataset} if audio in own else None
    name = key[len(dataset) + 1:] if dataset and key.startswith(f"{dataset}-") else key
    speaker = speaker_from(speaker_regex, audio, str(entry.get("speaker") or re.split(r"[-_]", name)[0]))
    return None if speaker is None else {"id": key, "corpus": dataset, "speaker": speaker, "audio": audio}
