"""`emofuse manifest nemo DIR` (nEMO's data.tsv, .wav or converted .flac) and `emofuse manifest emobox JSONL
--audio-root DIR` (EmoBox partition files), on written fixtures and on the shared nEMO copy and EmoBox RAVDESS folds."""

import io
import json

import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.core.errors import DataError
from emofuse.data.corpora import CORPORA
from emofuse.data.corpora.emobox import emobox
from emofuse.data.manifest import read_manifest
from emofuse.protocol.folds import dataset_folds

from conftest import SHARED_DATA
from test_corpora import touch

NEMO = SHARED_DATA / "nemo"
EMOBOX = SHARED_DATA / "ravdess" / "emobox_folds"
RAVDESS_AUDIO = SHARED_DATA / "ravdess" / "audio16k"
requires_nemo = pytest.mark.skipif(not NEMO.is_dir(), reason="../shared/data/nemo is not beside the repository")
requires_emobox = pytest.mark.skipif(not (EMOBOX.is_dir() and RAVDESS_AUDIO.is_dir()),
                                     reason="../shared/data/ravdess (audio16k, emobox_folds) is not beside the repository")
HEADER = "file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n"


def nemo_table(root, *rows):
    (root / "data.tsv").write_text(HEADER + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return root


def manifest(capsys, *args) -> tuple[pd.DataFrame, str]:
    assert main(["manifest", *map(str, args)]) == 0
    out = capsys.readouterr()
    return pd.read_csv(io.StringIO(out.out), dtype=str, keep_default_na=False), out.err


def test_nemo_official_layout_reads_the_table_and_reports_what_does_not_match(tmp_path, capsys):
    root = touch(tmp_path, "samples/EB0_anger_1.wav", "samples/EB0_fear_1.wav", "samples/SM0_happiness_2.wav",
                 "samples/SM0_sadness_2.wav", "samples/extra_take.wav")
    nemo_table(root, ("EB0_anger_1.wav", "anger", "Lubię czytać.", "lubię czytać", "        EB0", "female", "27"),
               ("EB0_fear_1.wav", "fear", "Nie.", "nie", "        EB0", "female", "27"),
               ("SM0_happiness_2.wav", "happiness", "Tak.", "tak", "        SM0", "male", "24"),
               ("SM0_sadness_2.wav", "sadness", "Może.", "może", "        SM0", "male", "24"),
               ("SM0_surprised_3.wav", "surprised", "Co?", "co", "        SM0", "male", "24"))  # no such file
    rows, err = manifest(capsys, "nemo", root)
    assert rows["id"].tolist() == ["EB0_anger_1", "EB0_fear_1", "SM0_happiness_2", "SM0_sadness_2"]
    assert rows["speaker"].tolist() == ["EB0", "EB0", "SM0", "SM0"]  # the leading spaces trimmed
    assert rows["label"].tolist() == ["angry", "fearful", "happy", "sad"]
    assert rows["corpus_label"].tolist() == ["anger", "fear", "happiness", "sadness"]
    assert set(rows["corpus"]) == {"nemo"} and rows["gender"].tolist() == ["female", "female", "male", "male"]
    assert rows["transcript"].iloc[0] == "Lubię czytać." and rows["normalized_text"].iloc[0] == "lubię czytać"
    assert rows["age"].tolist() == ["27", "27", "24", "24"]
    assert rows["audio"].iloc[0] == str(root / "samples" / "EB0_anger_1.wav")
    assert "4 samples of 2 speakers" in err
    assert "left out 1 files that do not fit the nemo naming scheme: " + str(root / "samples" / "extra_take.wav") in err
    assert f"left out 1 listed samples whose file is missing: {root / 'data.tsv'} line 6: SM0_surprised_3.wav" in err


def test_nemo_converted_copy_is_found_by_stem(tmp_path):
    """The shared copy: .flac files, the table naming .flac (or still .wav); a .wav beside a .flac of one take wins."""
    root = touch(tmp_path, "samples/KS0_neutral_1.flac", "samples/KS0_anger_1.flac", "samples/KS0_anger_1.wav",
                 "samples/MK0_neutral_1.flac", "samples/MK0_anger_1.flac")
    nemo_table(root, ("KS0_neutral_1.flac", "neutral", "A.", "a", " KS0", "male", "23"),
               ("KS0_anger_1.flac", "anger", "B.", "b", " KS0", "male", "23"),
               ("MK0_neutral_1.wav", "neutral", "C.", "c", " MK0", "female", "23"),
               ("MK0_anger_1.flac", "anger", "D.", "d", " MK0", "female", "23"))
    listing = CORPORA.get("nemo")(root)
    audio = {r["id"]: r["audio"].name for r in listing.rows}
    assert audio == {"KS0_neutral_1": "KS0_neutral_1.flac", "KS0_anger_1": "KS0_anger_1.flac",
                     "MK0_neutral_1": "MK0_neutral_1.flac", "MK0_anger_1": "MK0_anger_1.flac"}
    assert listing.unrecognised == [] and listing.missing == []  # the .wav of a listed take is not an unlisted file


def test_nemo_bad_table(tmp_path):
    root = nemo_table(touch(tmp_path, "samples/EB0_joy_1.wav"), ("EB0_joy_1.wav", "joy", "A.", "a", " EB0", "female", "27"))
    with pytest.raises(DataError, match=r"data.tsv line 2: emotion 'joy' is not one of nEMO's"):
        CORPORA.get("nemo")(root)
    (root / "data.tsv").unlink()
    with pytest.raises(DataError, match="no data.tsv"):
        CORPORA.get("nemo")(root)


@requires_nemo
def test_real_nemo(capsys):
    rows, err = manifest(capsys, "nemo", NEMO)
    assert len(rows) == 2253 and rows["speaker"].nunique() == 9 and "left out" not in err
    assert rows["label"].value_counts().to_dict() == {"neutral": 405, "sad": 386, "angry": 378, "happy": 375,
                                                      "fearful": 373, "surprised": 336}
    assert rows.groupby("speaker")["gender"].first().value_counts().to_dict() == {"male": 5, "female": 4}
    assert (rows["transcript"] != "").all() and rows["audio"].str.endswith(".flac").all()


def emobox_lines(path, *entries):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_emobox_matches_stems_maps_labels_and_reports_missing_files(tmp_path, capsys):
    audio = touch(tmp_path / "audio", "Actor_01/03-01-05-02-01-01-01.flac", "Actor_02/03-01-03-01-02-02-02.flac")
    lines = emobox_lines(tmp_path / "ravdess_test_fold_1.jsonl",
                         {"key": "ravdess-03-01-05-02-01-01-01", "dataset": "ravdess", "emo": "Angry",
                          "wav": "downloads/ravdess/Actor_01/03-01-05-02-01-01-01.wav"},
                         {"key": "ravdess-03-01-03-01-02-02-02", "dataset": "ravdess", "emo": "Happy",
                          "wav": "downloads/ravdess/Actor_02/03-01-03-01-02-02-02.wav"},
                         {"key": "ravdess-03-01-04-01-01-01-03", "dataset": "ravdess", "emo": "Sad",
                          "wav": "downloads/ravdess/Actor_03/03-01-04-01-01-01-03.wav"})  # not under the audio folder
    rows, err = manifest(capsys, "emobox", lines, "--audio-root", audio)
    assert rows["id"].tolist() == ["03-01-05-02-01-01-01", "03-01-03-01-02-02-02"]
    assert rows["speaker"].tolist() == ["01", "02"] and rows["gender"].tolist() == ["male", "female"]  # RAVDESS's reader
    assert rows["label"].tolist() == ["angry", "happy"] and rows["corpus_label"].tolist() == ["Angry", "Happy"]
    assert set(rows["corpus"]) == {"ravdess"} and "fold" not in rows  # one test file: no folds to give
    assert f"left out 1 listed samples whose file is missing: {lines} line 3: " in err

    bad = emobox_lines(tmp_path / "bad.jsonl", {"key": "x-1", "emo": "Angry", "wav": "a/03-01-05-02-01-01-01.wav"},
                       {"key": "x-2", "emo": "Bliss", "wav": "a/03-01-03-01-02-02-02.wav"})
    with pytest.raises(DataError, match=r"bad.jsonl line 2: label 'Bliss' is not a common emotion \(neutral, .*\) and no label_"):
        emobox([bad], audio)
    assert main(["manifest", "emobox", str(lines)]) == 2
    assert "emobox needs --audio-root" in capsys.readouterr().err


def test_emobox_label_map_key_speakers_and_folders_that_tell_stems_apart(tmp_path):
    """Codes through EmoBox's label_map.json; a corpus emofuse has no reader of takes its speaker from the key; where a
    stem is in two folders, the one whose folders end like the line's wav path (SAVEE's a01.wav of each speaker)."""
    audio = touch(tmp_path / "audio", "CaFE/Peur/08-P-2-1.wav", "CaFE/Joie/09-J-1-1.wav",
                  "AudioData/DC/a01.wav", "AudioData/JE/a01.wav")
    (tmp_path / "cafe").mkdir()
    (tmp_path / "cafe" / "label_map.json").write_text(json.dumps({"p": "Fear", "j": "Happy", "c": "Angry"}))
    cafe = emobox_lines(tmp_path / "cafe" / "fold_1" / "cafe_test_fold_1.jsonl",
                        {"key": "cafe-08-P-2-1", "dataset": "cafe", "emo": "p", "wav": "downloads/cafe/Peur/08-P-2-1.wav"},
                        {"key": "cafe-09-J-1-1", "dataset": "cafe", "emo": "j", "wav": "downloads/cafe/Joie/09-J-1-1.wav"})
    rows = emobox([cafe], audio).rows
    assert [(r["id"], r["speaker"], r["label"], r["corpus_label"]) for r in rows] == [
        ("cafe-08-P-2-1", "08", "fearful", "p"), ("cafe-09-J-1-1", "09", "happy", "j")]
    savee = emobox_lines(tmp_path / "savee_test_fold_1.jsonl",
                         {"key": "savee-JE_a01", "dataset": "savee", "emo": "a", "wav": "downloads/savee/AudioData/JE/a01.wav"})
    with pytest.raises(DataError, match="label 'a' is not a common emotion"):  # SAVEE's code without its label map
        emobox([savee], audio)
    (tmp_path / "label_map.json").write_text(json.dumps({"a": "Angry"}))
    [row] = emobox([savee], audio).rows
    assert (row["id"], row["speaker"], row["audio"]) == ("JE_a01", "JE", audio / "AudioData" / "JE" / "a01.wav")


@requires_emobox
def test_real_emobox_fold_file(capsys):
    rows, err = manifest(capsys, "emobox", EMOBOX / "ravdess_test_fold_1.jsonl", "--audio-root", RAVDESS_AUDIO)
    assert len(rows) == 240 and "left out" not in err  # every line found
    assert sorted(rows["speaker"].unique()) == ["01", "11", "20", "21"]
    assert rows["label"].value_counts().to_dict() == {**{e: 32 for e in ("calm", "happy", "sad", "angry", "fearful",
                                                                          "disgust", "surprised")}, "neutral": 16}


@requires_emobox
def test_real_emobox_test_folds_fix_the_protocols_folds(tmp_path, capsys):
    """The six test-fold files give a fold column; the protocol's folds test exactly EmoBox's speakers."""
    files = sorted(EMOBOX.glob("ravdess_test_fold_*.jsonl"))
    assert main(["manifest", "emobox", *map(str, files), "--audio-root", str(RAVDESS_AUDIO)]) == 0
    path = tmp_path / "folds.csv"
    path.write_text(capsys.readouterr().out)
    read = read_manifest(path, ["audio"])
    assert read.problems == {} and len(read.rows) == 1440
    folds = dataset_folds(read.rows.rename(columns={"speaker": "actor"}), 6, 0.2, 0)
    emobox_test = {k: sorted({json.loads(line)["key"][-2:] for line in f.read_text().splitlines()})
                   for k, f in enumerate(files, start=1)}
    assert {f.index: sorted(f.test_actors) for f in folds} == emobox_test
