"""Many recordings (issue 32 items 2, 3): folders, patterns, path lists and wav.scp files; a resumable output that
survives an interruption and a torn last line; bad files in the middle; every output format parsed back; top-k lists.
Real RAVDESS clips and the bundled default model, a handful of clips each."""

import csv
import io
import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import RAVDESS, requires_shared_data
from emofuse import zoo
from emofuse.cli import main
from emofuse.core.errors import DataError
from emofuse.data.inputs import Item, expand_inputs, read_wav_scp
from emofuse.inference import batch
from emofuse.inference.batch import run_batch
from emofuse.inference.formats import csv_columns, result, result_id, top_k
from emofuse.inference.predict import Predictor
from emofuse.inference.results_file import ResultsFile

CLIPS = sorted((RAVDESS / "audio16k" / "Actor_01").glob("*.flac"))[::12][:5]  # five emotions of one actor


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_folder_is_searched_recursively_for_media_only(tmp_path):
    for name in ("b/2.wav", "a/deep/er/1.FLAC", "a/3.mp4", "c.mp3", "notes.txt", ".hidden/4.wav", "a/._5.wav"):
        touch(tmp_path / name)
    ids = [i.id for i in expand_inputs([tmp_path])]
    assert ids == [str(tmp_path / n) for n in ("a/3.mp4", "a/deep/er/1.FLAC", "b/2.wav", "c.mp3")]
    empty = tmp_path / "empty"
    touch(empty / "readme.md")
    with pytest.raises(DataError, match=r"empty: no audio or video files in it or below"):
        expand_inputs([empty])


def test_patterns_named_files_and_duplicates(tmp_path):
    for name in ("x/1.wav", "x/y/2.wav", "x/y/3.flac"):
        touch(tmp_path / name)
    wavs = expand_inputs([f"{tmp_path}/x/**/*.wav"])
    assert [i.id for i in wavs] == [str(tmp_path / "x/1.wav"), str(tmp_path / "x/y/2.wav")]
    # a file named twice (alone and through its folder) is predicted once; a missing file is kept for the batch to report
    items = expand_inputs([tmp_path / "x/y/3.flac", tmp_path / "x", tmp_path / "gone.wav"])
    assert [i.id for i in items] == [str(tmp_path / n) for n in ("x/y/3.flac", "x/1.wav", "x/y/2.wav", "gone.wav")]
    with pytest.raises(DataError, match=r"\*\.ogg: the pattern matches no files"):
        expand_inputs([f"{tmp_path}/*.ogg"])


def test_path_lists_and_kaldi_wav_scp(tmp_path):
    listed = tmp_path / "files.txt"
    listed.write_text(f"# my clips\n{tmp_path}/a.wav\n\n  {tmp_path}/b b.wav  \n")
    assert expand_inputs([], [listed]) == [Item(f"{tmp_path}/a.wav", tmp_path / "a.wav"),
                                           Item(f"{tmp_path}/b b.wav", tmp_path / "b b.wav")]
    scp = tmp_path / "wav.scp"
    scp.write_text(f"utt1 {tmp_path}/a.wav\nutt2   {tmp_path}/dir with space/b.flac\n")
    # a wav.scp given as an input or with --list: the utterance ids name the results
    assert expand_inputs([scp]) == expand_inputs([], [scp]) == [
        Item("utt1", tmp_path / "a.wav"), Item("utt2", tmp_path / "dir with space/b.flac")]
    bad = {"utt1 sox a.wav -t wav - |\n": r"line 1: 'utt1' is read from a command .*wav-copy",
           "utt1 a.wav\nutt1 b.wav\n": r"line 2: utterance id 'utt1' already on line 1",
           "utt1 feats.ark:1234\n": r"line 1: 'utt1' points into an archive",
           "utt1\n": r"line 1: expected '<utterance-id> <path>'",
           "\n": "names no utterances"}
    for text, message in bad.items():
        scp.write_text(text)
        with pytest.raises(DataError, match=message):
            read_wav_scp(scp)
    with pytest.raises(DataError, match="list file does not exist"):
        expand_inputs([], [tmp_path / "nope.txt"])


def test_top_k_is_sorted_highest_first_and_clamped():
    probs = {"angry": 0.1, "calm": 0.5, "happy": 0.1, "sad": 0.3}
    assert top_k(probs, 2) == [{"label": "calm", "score": 0.5}, {"label": "sad", "score": 0.3}]
    assert [r["label"] for r in top_k(probs, 9)] == ["calm", "sad", "angry", "happy"]  # ties in the model's order


def test_a_recording_without_speech_is_an_answer_in_every_format_and_done_on_resume(tmp_path):
    names = ["angry", "calm"]
    silent = {"file": "hum.wav", "pred": None, "probs": None, "modality_probs": {}, "modalities": [],
              "missing": {"audio": "no speech: ..."}, "no_speech": "no speech: the detector found none in 2.00 s"}
    said = {"file": "said.wav", "pred": "calm", "probs": {"angry": 0.25, "calm": 0.75}, "modality_probs": {},
            "modalities": ["audio"], "missing": {}}
    results = [result(silent, "hum.wav", 2), result(said, "utt7", 2)]
    assert results[0]["top_k"] == [] and "id" not in results[0] and results[1]["id"] == "utt7"
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"r.{fmt}"
        ResultsFile(out, fmt, csv_columns(names, 2), names).append(results)
        assert ResultsFile(out, fmt, csv_columns(names, 2), names).done == {"hum.wav", "utt7"}
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert rows[0]["pred"] == "no speech" and rows[0]["prob_calm"] == "" and rows[0]["missing"] == "audio: no speech: ..."
    assert (rows[1]["id"], rows[1]["file"], rows[1]["label_1"], rows[1]["score"]) == ("utt7", "said.wav", "calm", "0.75")


@pytest.fixture(scope="module")
def predictor():
    return Predictor(zoo.model_dir())


def ids_in(path: Path, fmt: str) -> list[str]:
    text = path.read_text()
    if fmt == "csv":
        return [row["id"] for row in csv.DictReader(io.StringIO(text))]
    return [result_id(json.loads(line)) for line in text.splitlines()]


@requires_shared_data()
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_interrupted_then_torn_output_resumes_without_duplicates(predictor, tmp_path, fmt):
    items = [Item(str(p), p) for p in CLIPS]
    names = list(predictor.class_names)
    out = tmp_path / f"out.{fmt}"

    def open_out():
        return ResultsFile(out, fmt, csv_columns(names, 3), names)

    class Stop(Exception):
        pass

    first = open_out()

    def write_then_stop(results):  # the job is killed after its first chunk reached the disk
        first.append(results)
        raise Stop

    with pytest.raises(Stop):
        run_batch(predictor, items, write_then_stop, chunk=2, workers=1, progress=False, top_k=3)
    assert ids_in(out, fmt) == [str(p) for p in CLIPS[:2]]
    again = open_out()
    assert again.done == {str(p) for p in CLIPS[:2]}
    report = run_batch(predictor, items, again.append, done=again.done, chunk=2, workers=1, progress=False, top_k=3)
    assert (report.named, report.skipped, report.predicted, report.failed) == (5, 2, 3, {})
    whole = out.read_text()
    assert ids_in(out, fmt) == [str(p) for p in CLIPS]
    # a write torn in the middle of the last line: that line is dropped and its clip predicted again, identically
    last = whole.splitlines()[-1]
    out.write_text(whole[: len(whole) - len(last) // 2 - 1])
    torn = open_out()
    assert torn.done == {str(p) for p in CLIPS[:4]} and torn.dropped == 1
    report = run_batch(predictor, items, torn.append, done=torn.done, workers=1, progress=False, top_k=3)
    assert (report.skipped, report.predicted) == (4, 1)
    assert out.read_text() == whole
    # another model's classes (or --top-k) in the file are refused, not mixed in
    with pytest.raises(DataError, match="another"):
        ResultsFile(out, fmt, csv_columns(names[:4], 3 if fmt == "jsonl" else 2), names[:4])
    if fmt == "jsonl":
        entry = json.loads(whole.splitlines()[0])
        assert "id" not in entry  # a file named by its path: the entry --json has always printed
        assert [r["label"] for r in entry["top_k"]] == sorted(entry["probs"], key=lambda c: -entry["probs"][c])[:3]
        assert entry["top_k"][0]["label"] == entry["pred"]


def bad_files(folder: Path) -> dict[str, str]:
    """Three broken files among real clips: what each one's failure says."""
    whole = CLIPS[0].read_bytes()
    touch(folder / "b_empty.wav", b"")
    touch(folder / "b_notes.mp3", b"these are my notes, not a recording\n" * 20)
    touch(folder / "b_cut.flac", whole[: len(whole) // 3])
    return {"b_empty.wav": "empty file (0 bytes)", "b_notes.mp3": "not an audio or video file",
            "b_cut.flac": "b_cut.flac: "}


@requires_shared_data()
@pytest.mark.slow
def test_bad_files_in_the_middle_are_reported_skipped_and_counted(tmp_path, capsys):
    folder = tmp_path / "clips"
    for i, clip in enumerate(CLIPS[:4]):
        touch(folder / f"{'a' if i < 2 else 'c'}_{clip.name}", clip.read_bytes())
    bad = bad_files(folder)
    out = tmp_path / "results.csv"
    assert main(["predict", str(folder), "--out", str(out), "--top-k", "2"]) == 1
    err = capsys.readouterr().err
    for name, words in bad.items():
        assert f"failed: {folder / name}: " in err and words in err
    assert "7 recordings: 4 predicted, 3 failed" in err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [Path(r["id"]).name[0] for r in rows] == list("aabbbcc")  # the order given, failures in their place
    for r in rows:
        if r["id"].split("/")[-1].startswith("b_"):
            assert r["pred"] == "" and r["error"].startswith(r["id"]) and r["prob_neutral"] == ""
        else:
            assert r["pred"] == r["label_1"] and float(r["score_1"]) >= float(r["score_2"]) and not r["error"]
    # a rerun predicts only the failed files again (still failing) and writes each recording once
    assert main(["predict", str(folder), "--out", str(out), "--top-k", "2"]) == 1
    assert "7 recordings: 0 predicted, 4 already in" in capsys.readouterr().err
    again = list(csv.DictReader(io.StringIO(out.read_text())))
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in rows)
    assert [r for r in again if not r["error"]] == [r for r in rows if not r["error"]]


@requires_shared_data()
@pytest.mark.slow
def test_every_output_format_parses_back_to_the_same_answers(tmp_path, capsys):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"utt{i} {p}\n" for i, p in enumerate(CLIPS[:3])))
    parsed = {}
    for fmt in ("json", "jsonl", "csv"):
        assert main(["predict", str(scp), "--format", fmt, "--top-k", "3"]) == 0
        text = capsys.readouterr().out
        if fmt == "json":
            parsed[fmt] = json.loads(text)
        elif fmt == "jsonl":
            parsed[fmt] = [json.loads(line) for line in text.splitlines()]
        else:
            parsed[fmt] = list(csv.DictReader(io.StringIO(text)))
    entries, lines, rows = parsed["json"], parsed["jsonl"], parsed["csv"]
    assert entries == lines and [e["id"] for e in entries] == ["utt0", "utt1", "utt2"]
    for e, r in zip(entries, rows):
        assert r["id"] == e["id"] and r["file"] == e["file"] == str(CLIPS[int(e["id"][3:])]) and r["pred"] == e["pred"]
        assert {c: float(r[f"prob_{c}"]) for c in e["probs"]} == e["probs"]
        assert len(e["top_k"]) == 3 and [t["score"] for t in e["top_k"]] == sorted(e["probs"].values(), reverse=True)[:3]
        assert [(r[f"label_{i}"], float(r[f"score_{i}"])) for i in (1, 2, 3)] == [(t["label"], t["score"]) for t in e["top_k"]]
    # --json is --format json; a .json --out file holds the same list
    assert main(["predict", str(scp), "--json"]) == 0
    assert [{k: v for k, v in e.items() if k != "top_k"} for e in entries] == json.loads(capsys.readouterr().out)
    assert main(["predict", str(scp), "--top-k", "3", "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text()) == entries
    # the table stays the default, and refuses what it cannot show
    assert main(["predict", str(CLIPS[0])]) == 0
    assert CLIPS[0].name in capsys.readouterr().out
    assert main(["predict", str(CLIPS[0]), "--top-k", "2"]) == 2
    assert main(["predict", str(CLIPS[0]), "--out", str(tmp_path / "r.txt")]) == 2
    assert "cannot tell the format from the suffix '.txt'" in capsys.readouterr().err


@requires_shared_data()
@pytest.mark.slow
def test_worker_processes_give_the_answers_of_this_process(predictor, tmp_path, monkeypatch):
    """The features read by worker processes, and by this one while they are behind, give the entries this process
    gives alone, in the order given; a missing file is reported from a worker as here."""
    items = [Item(str(p), p) for p in CLIPS[:4] * 2] + [Item("gone", tmp_path / "gone.wav")]
    alone = predictor.predict_extracted([i.id for i in items], [predictor.features(i.path) for i in items])
    read_here, original = [], batch._features_here

    def here(predictor, path, openface_dir):
        read_here.append(path)
        return original(predictor, path, openface_dir)

    monkeypatch.setattr(batch, "_features_here", here)
    with batch.worker_pool(predictor, 2) as pool:
        list(pool.map(time.sleep, [1, 1]))  # both workers started
        shared = list(batch._features_in_order(predictor, items, None, pool, ahead=len(items)))
    assert 0 < len(items) - len(read_here)  # the workers read some
    again = predictor.predict_extracted([i.id for i in items], shared)
    for got, want in zip(again, alone):  # workers run the encoder on another thread count: float sums may differ
        assert {k: v for k, v in got.items() if k not in ("probs", "modality_probs")} == \
            {k: v for k, v in want.items() if k not in ("probs", "modality_probs")}
        assert got.get("probs") == (pytest.approx(want["probs"], abs=1e-4) if want.get("probs") else None)
    assert len(again) == len(alone)
    assert alone[-1]["error"] == f"{tmp_path / 'gone.wav'}: file does not exist"


@requires_shared_data()
@pytest.mark.slow
def test_predict_many_writes_resumes_and_yields(tmp_path):
    import emofuse

    model = emofuse.load_model()
    folder = tmp_path / "clips"
    folder.mkdir()
    for clip in CLIPS[:3]:
        shutil.copy(clip, folder / clip.name)
    out = tmp_path / "r.csv"
    first = list(model.predict_many(folder, out=out, top_k=2))
    assert [p.source for p in first] == [str(folder / c.name) for c in CLIPS[:3]]
    assert all(len(p.details["top_k"]) == 2 and p.details["top_k"][0]["label"] == p.pred for p in first)
    shutil.copy(CLIPS[3], folder / CLIPS[3].name)
    assert [p.source for p in model.predict_many(folder, out=out, top_k=2)] == [str(folder / CLIPS[3].name)]
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == 4
