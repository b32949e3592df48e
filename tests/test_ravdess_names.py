import pytest

from emofuse.core.errors import DataError
from emofuse.data.ravdess import find_audio_files, parse_name


def test_parse_official_name_fields():
    n = parse_name("Actor_12/03-01-05-02-01-02-12.wav")
    assert (n.modality, n.channel, n.emotion, n.intensity, n.statement, n.repetition, n.actor) == (3, 1, 5, 2, 1, 2, 12)
    assert n.emotion_name == "angry" and n.label == 4
    assert n.female and not parse_name("03-01-05-02-01-02-11.flac").female
    assert n.take == "01-05-02-01-02-12"
    assert n.stem == "03-01-05-02-01-02-12"


def test_audio_and_video_of_one_take_share_the_take_key():
    assert parse_name("03-01-08-01-02-02-24.flac").take == parse_name("01-01-08-01-02-02-24.mp4").take


@pytest.mark.parametrize(
    "name, problem",
    [
        ("03-01-05-02-01-02.wav", "7 two-digit fields"),
        ("03-01-09-01-01-01-01.wav", "emotion 09"),
        ("03-01-01-02-01-01-01.wav", "neutral has no strong"),
        ("03-01-05-03-01-01-01.wav", "intensity 03"),
        ("03-01-05-01-01-01-25.wav", "actor 25"),
        ("04-01-05-01-01-01-01.wav", "modality 04"),
        ("recording.wav", "not a RAVDESS name"),
    ],
)
def test_bad_names_are_rejected_naming_the_file(name, problem):
    with pytest.raises(DataError, match=problem) as info:
        parse_name(name)
    assert name in str(info.value)


def test_find_audio_files_pairs_by_take(ravdess_fixture):
    files = find_audio_files(ravdess_fixture / "audio16k")
    assert len(files) == 6 * 8 * 2
    assert all(parse_name(p).take == take for take, p in files.items())


def test_actor_folder_must_match_the_name(ravdess_fixture):
    src = next((ravdess_fixture / "audio16k" / "Actor_01").glob("*.wav"))
    src.rename(ravdess_fixture / "audio16k" / "Actor_02" / src.name)
    with pytest.raises(DataError, match="folder Actor_02"):
        find_audio_files(ravdess_fixture / "audio16k")


def test_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no RAVDESS audio"):
        find_audio_files(tmp_path)
