"""`emofuse manifest CORPUS DIR`: each corpus layout on file names of the real corpus (empty files), and on the real
CREMA-D clips and the packaged RAVDESS sample."""

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.data.corpora import CORPORA, common_label, write_manifest
from emofuse.data.manifest import read_manifest
from emofuse.core.registry import ConfigError
from emofuse.data.sample import sample_dir

from conftest import REPO
from test_media import CREMA, requires_crema


def touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


def table(corpus, root, regex=None, relative_to=None) -> tuple[pd.DataFrame, list]:
    listing = CORPORA.get(corpus)(root, re.compile(regex) if regex else None)
    return pd.read_csv(io.StringIO(write_manifest(listing, relative_to)), dtype=str, keep_default_na=False), listing.unrecognised


def test_ravdess_audio_only_speech_takes(tmp_path):
    root = touch(tmp_path, "Actor_01/03-01-05-02-01-01-01.wav", "Actor_02/03-01-01-01-02-02-02.wav",
                 "Actor_10/03-01-08-01-01-01-10.flac", "Actor_01/03-02-05-02-01-01-01.wav",  # a song take: left out
                 "Actor_01/notes.wav")
    rows, unrecognised = table("ravdess", root)
    assert rows["speaker"].tolist() == ["01", "02", "10"]  # natural order
    assert rows["gender"].tolist() == ["male", "female", "female"]
    assert rows["label"].tolist() == ["angry", "neutral", "surprised"]
    assert rows["corpus_label"].tolist() == ["05", "01", "08"]
    assert rows["id"].iloc[0] == "03-01-05-02-01-01-01" and rows["intensity"].iloc[0] == "strong"
    assert rows["video_stem"].tolist() == ["01-01-05-02-01-01-01", "01-01-01-01-02-02-02", "01-01-08-01-01-01-10"]
    assert "video" not in rows and [p.name for p in unrecognised] == ["notes.wav"]


def test_ravdess_audio_video_pairs_by_take(tmp_path):
    root = touch(tmp_path, "audio16k/Actor_03/03-01-03-01-01-01-03.flac",
                 "video/Video_Speech_Actor_03/Actor_03/01-01-03-01-01-01-03.mp4",
                 "video/Video_Speech_Actor_03/Actor_03/02-01-03-01-01-01-03.mp4",
                 "video/Video_Speech_Actor_03/Actor_03/02-01-04-01-01-01-03.mp4")  # video-only take
    rows, _ = table("ravdess", root)
    assert rows["id"].tolist() == ["02-01-04-01-01-01-03", "03-01-03-01-01-01-03"]  # the audio's stem where there is one
    video_only, both = rows.iloc[0], rows.iloc[1]
    assert both["audio"].endswith("03-01-03-01-01-01-03.flac") and both["video"].endswith("01-01-03-01-01-01-03.mp4")
    assert video_only["audio"] == "" and video_only["video"].endswith("02-01-04-01-01-01-03.mp4")
    assert video_only["label"] == "sad" and video_only["video_stem"] == "02-01-04-01-01-01-03"


def test_crema_d_pairs_audio_and_video_and_reads_demographics(tmp_path):
    root = touch(tmp_path, "AudioWAV/1001_DFA_ANG_XX.wav", "VideoFlash/1001_DFA_ANG_XX.flv", "AudioMP3/1001_DFA_ANG_XX.mp3",
                 "AudioWAV/1091_IEO_FEA_HI.wav", "AudioWAV/1012_TIE_HAP_LO.wav", "AudioWAV/1001_DFA_XXX_XX.wav")
    (root / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
                                                "1012,23,Female,Caucasian,Not Hispanic\n1091,29,Female,Asian,Not Hispanic\n")
    rows, unrecognised = table("crema-d", root)
    assert rows["id"].tolist() == ["1001_DFA_ANG_XX", "1012_TIE_HAP_LO", "1091_IEO_FEA_HI"]
    assert rows["label"].tolist() == ["angry", "happy", "fearful"] and rows["corpus_label"].tolist() == ["ANG", "HAP", "FEA"]
    assert rows["gender"].tolist() == ["male", "female", "female"]
    assert rows["audio"].iloc[0].endswith("AudioWAV/1001_DFA_ANG_XX.wav")  # the wav, not the mp3
    assert rows["video"].iloc[0].endswith("VideoFlash/1001_DFA_ANG_XX.flv") and rows["video"].iloc[1] == ""
    assert rows[["sentence", "level"]].values.tolist() == [["DFA", "XX"], ["TIE", "LO"], ["IEO", "HI"]]
    assert [p.name for p in unrecognised] == ["1001_DFA_XXX_XX.wav"]


def test_tess_emotion_from_the_name_speaker_from_the_prefix(tmp_path):
    root = touch(tmp_path, "OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_back_ps.wav",
                 "OAF_neutral/OA_bite_neutral.wav", "OAF_Fear/OAF_youth_fear.wav", "YAF_sad/YAF_read_sad.wav",
                 "YAF_disgust/YAF_chair.wav")  # no emotion field; the folder gives it
    rows, unrecognised = table("tess", root)
    by_id = rows.set_index("id")
    assert by_id.loc["OAF_back_angry", ["speaker", "label", "corpus_label", "word"]].tolist() == ["OAF", "angry", "angry", "back"]
    assert by_id.loc["YAF_back_ps", ["speaker", "label", "corpus_label"]].tolist() == ["YAF", "surprised", "ps"]
    assert by_id.loc["OA_bite_neutral", "speaker"] == "OAF"
    assert by_id.loc["OAF_youth_fear", "label"] == "fearful" and by_id.loc["YAF_read_sad", "label"] == "sad"
    assert set(rows["gender"]) == {"female"} and unrecognised == [] and by_id.loc["YAF_chair", "label"] == "disgust"


def test_savee_speaker_folders_and_flat_names(tmp_path):
    root = touch(tmp_path, "AudioData/DC/a01.wav", "AudioVisualClip/DC/a01.avi", "AudioData/JE/sa03.wav",
                 "AudioData/JK/su15.wav", "AudioData/KL/n30.wav", "flat/DC_h02.wav", "AudioData/XX/a01.wav",
                 "AudioData/DC/info.txt.wav")
    rows, unrecognised = table("savee", root)
    by_id = rows.set_index("id")
    assert by_id.loc["DC_a01", ["speaker", "label", "corpus_label"]].tolist() == ["DC", "angry", "a"]
    assert by_id.loc["DC_a01", "video"].endswith("AudioVisualClip/DC/a01.avi")
    assert by_id.loc["JE_sa03", "label"] == "sad" and by_id.loc["JK_su15", "label"] == "surprised"
    assert by_id.loc["KL_n30", "label"] == "neutral" and by_id.loc["DC_h02", "label"] == "happy"
    assert set(rows["gender"]) == {"male"}
    assert sorted(p.name for p in unrecognised) == ["a01.wav", "info.txt.wav"]


def test_emodb_letters_and_speakers(tmp_path):
    root = touch(tmp_path, "wav/03a01Fa.wav", "wav/08a02Lb.wav", "wav/16b10Wc.wav", "wav/11a05Ta.wav",
                 "wav/09b03Aa.wav", "wav/13a07Ed.wav", "wav/15b01Nb.wav", "wav/03a01Xa.wav")
    rows, unrecognised = table("emodb", root)
    by_id = rows.set_index("id")
    assert by_id["label"].to_dict() == {"03a01Fa": "happy", "08a02Lb": "bored", "16b10Wc": "angry", "11a05Ta": "sad",
                                        "09b03Aa": "fearful", "13a07Ed": "disgust", "15b01Nb": "neutral"}
    assert by_id.loc["08a02Lb", ["speaker", "gender", "corpus_label", "text", "version"]].tolist() == \
        ["08", "female", "L", "a02", "b"]
    assert by_id.loc["03a01Fa", "gender"] == "male" and [p.name for p in unrecognised] == ["03a01Xa.wav"]


def test_folder_layout_needs_and_uses_a_speaker_pattern(tmp_path):
    root = touch(tmp_path / "corpus", "Anger/spk1_take1.wav", "Anger/spk1_take1.mp4", "happiness/spk2_x.wav",
                 "calm/spk10_y.flac", "calm/nospeaker.wav", "loose.wav")
    with pytest.raises(ConfigError, match="--speaker-regex"):
        table("folder", root)
    rows, unrecognised = table("folder", root, r"^(spk\d+)_", relative_to=tmp_path)
    assert rows["speaker"].tolist() == ["spk1", "spk2", "spk10"]
    assert rows["label"].tolist() == ["angry", "happy", "calm"] and rows["corpus_label"].tolist() == ["Anger", "happiness", "calm"]
    assert rows["audio"].iloc[0] == "corpus/Anger/spk1_take1.wav" and rows["video"].iloc[0] == "corpus/Anger/spk1_take1.mp4"
    assert sorted(p.name for p in unrecognised) == ["loose.wav", "nospeaker.wav"]


def test_a_folder_read_one_level_too_high_is_refused(tmp_path, capsys):
    """Before: every row got the folder's name as its label and the command exited 0."""
    root = touch(tmp_path / "corpus", "wav/spk1_a.wav", "wav/spk2_b.wav")
    assert main(["manifest", "folder", str(root), "--speaker-regex", r"^(spk\d+)_"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "every sample got the label 'wav'" in out.err and "DIR/<label>/<file>" in out.err


def test_common_vocabulary():
    assert [common_label(x) for x in ("Anger", "happiness", "fear", "Surprise", "disgusted", "boredom")] == \
        ["angry", "happy", "fearful", "surprised", "disgust", "boredom"]


def test_cli_writes_relative_paths_that_the_reader_resolves(tmp_path, capsys):
    root = touch(tmp_path / "emodb", "wav/03a01Fa.wav", "wav/03a02Fa.wav", "wav/08a01Wa.wav", "wav/08a02Wa.wav")
    assert main(["manifest", "emodb", str(root), "--relative-to", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "4 samples of 2 speakers" in out.err
    path = tmp_path / "m.csv"
    path.write_text(out.out)
    manifest = read_manifest(path, ["audio"])
    assert manifest.problems == {}
    assert manifest.files["audio"]["03a01Fa"] == root / "wav" / "03a01Fa.wav"
    assert main(["manifest", "unknown", str(root)]) == 2
    assert "unknown corpus layout 'unknown'" in capsys.readouterr().err
    assert main(["manifest", "tess", str(root)]) == 2
    assert f"{root}: no file fits the tess naming scheme (4 media files found that do not)" in capsys.readouterr().err


def test_the_manifest_names_links_not_their_targets(tmp_path, capsys, monkeypatch):
    store = touch(tmp_path / "store", "wavs/03a01Fa.wav", "wavs/03a02Fa.wav", "take.wav")
    corpus = touch(tmp_path / "corpus", "08a02Wa.wav")
    (corpus / "wav").symlink_to(store / "wavs")  # a linked media folder
    (corpus / "08a01Wa.wav").symlink_to(store / "take.wav")  # a linked file
    (corpus / "loop").symlink_to(corpus)
    (tmp_path / "link").symlink_to(corpus)  # DIR itself a link
    assert main(["manifest", "emodb", str(tmp_path / "link")]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str, keep_default_na=False)
    link = tmp_path / "link"
    assert rows.set_index("id")["audio"].to_dict() == {
        "03a01Fa": str(link / "wav" / "03a01Fa.wav"), "03a02Fa": str(link / "wav" / "03a02Fa.wav"),
        "08a01Wa": str(link / "08a01Wa.wav"), "08a02Wa": str(link / "08a02Wa.wav")}
    monkeypatch.chdir(tmp_path)
    assert main(["manifest", "emodb", "link", "--relative-to", "link"]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str, keep_default_na=False)
    assert rows["audio"].tolist() == ["wav/03a01Fa.wav", "wav/03a02Fa.wav", "08a01Wa.wav", "08a02Wa.wav"]


def test_the_own_data_walk_through_writes_only_into_ignored_folders():
    """docs/own-data.md's commands, run from the repository root, leave no untracked file in it."""
    walk = (REPO / "docs" / "own-data.md").read_text().split("## Five minutes")[1].split("\n## ")[0]
    code = "\n".join(re.findall(r"```bash\n(.*?)```", walk, re.S))
    written = re.findall(r"> (\S+)", code) + re.findall(r'to_csv\("([^"]+)"', code) + re.findall(r"--out (\S+)", code)
    ignored = {line.strip("/") for line in (REPO / ".gitignore").read_text().split() if line.endswith("/")}
    assert len(written) == 5 and all(Path(p).parts[0] in ignored for p in written), written


@requires_crema
def test_real_crema_d_clips(capsys):
    assert main(["manifest", "crema-d", str(CREMA)]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str, keep_default_na=False)
    assert len(rows) == 12 and rows["speaker"].value_counts().to_dict() == {"1001": 6, "1002": 6}
    assert set(rows["label"]) == {"angry", "disgust", "fearful", "happy", "neutral", "sad"}
    flv = rows[rows["speaker"] == "1001"]
    assert (flv["audio"] == "").all() and flv["video"].str.endswith(".flv").all()  # the video's audio track serves
    assert rows[rows["speaker"] == "1002"]["audio"].str.endswith(".mp3").all()


def test_packaged_ravdess_sample():
    rows, unrecognised = table("ravdess", sample_dir())
    assert len(rows) == 180 and unrecognised == []
    assert rows.groupby("speaker")["gender"].first().to_dict() == {"01": "male", "02": "female", "03": "male",
                                                                     "04": "female", "05": "male", "06": "female"}
