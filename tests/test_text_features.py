"""Text from speech (the `transcript` extractor): transcripts of the packaged clips, their embeddings, the cache key,
bad settings, and the check that RAVDESS's emotion labels do not leak through its words."""

import math
import sys

import numpy as np
import pytest

from conftest import REPO
from emofuse.features import EXTRACTORS
from emofuse.features.cache import FeatureCache, default_cache_dir
from emofuse.features.extract import extract_features
from emofuse.core.registry import ConfigError

SAMPLE = REPO / "src" / "emofuse" / "sample" / "ravdess" / "audio16k"
KIDS_ANGRY = SAMPLE / "Actor_01" / "03-01-05-02-01-01-01.flac"  # statement 01: "Kids are talking by the door"
KIDS_NEUTRAL = SAMPLE / "Actor_01" / "03-01-01-01-01-01-01.flac"
DOGS = SAMPLE / "Actor_02" / "03-01-03-01-02-01-02.flac"  # statement 02: "Dogs are sitting by the door"


@pytest.fixture(scope="module")
def transcript():
    return EXTRACTORS.create("transcript", {})


def words(text: str) -> str:
    return text.lower().strip(" .!?")


@pytest.mark.slow
def test_sample_clips_are_transcribed_and_embedded_by_sentence(transcript, tmp_path):
    clips = [KIDS_ANGRY, KIDS_NEUTRAL, DOGS]
    report = extract_features(clips, transcript, FeatureCache(tmp_path), workers=1, progress=False)
    assert not report.failures and report.computed == 3
    said = {clip: report.info[clip]["transcript"] for clip in clips}
    assert [words(said[c]) for c in clips] == ["kids are talking by the door"] * 2 + ["dogs are sitting by the door"]
    vectors = {clip: report.features[clip] for clip in clips}
    assert all(v.shape == (384,) and v.dtype == np.float32 for v in vectors.values())
    assert vectors[KIDS_ANGRY] @ vectors[KIDS_NEUTRAL] > 0.95  # two takes (angry, neutral) of one sentence
    assert vectors[KIDS_ANGRY] @ vectors[DOGS] < 0.7  # the two sentences
    # a transcript given as text (a manifest's column) gives the same vector as the words heard
    np.testing.assert_allclose(transcript.embed(said[DOGS]), vectors[DOGS], atol=1e-5)
    again = extract_features(clips, transcript, FeatureCache(tmp_path), workers=1, progress=False)
    assert again.cached == 3 and {c: again.info[c]["transcript"] for c in clips} == said


def test_whisper_and_text_settings_are_part_of_the_cache_key(transcript):
    assert EXTRACTORS.create("transcript", {"beam_size": 5, "language": "en"}).settings_key() == transcript.settings_key()
    for changed in ({"beam_size": 1}, {"language": None}, {"trim_top_db": 30}):
        assert EXTRACTORS.create("transcript", changed).settings_key() != transcript.settings_key(), changed


def test_bad_settings_are_config_errors(monkeypatch):
    with pytest.raises(ConfigError, match="needs CTranslate2 weights.*'openai/whisper-base' is a Hugging Face checkpoint"):
        EXTRACTORS.create("transcript", {"model": "openai/whisper-base"})
    with pytest.raises(ConfigError, match="language 'xx' is not one Whisper knows"):
        EXTRACTORS.create("transcript", {"language": "xx"})
    with pytest.raises(ConfigError, match="sample_rate must be 16000"):
        EXTRACTORS.validate_params("transcript", {"sample_rate": 22050})
    with pytest.raises(ConfigError, match="unknown key 'beam'"):
        EXTRACTORS.validate_params("transcript", {"beam": 2})
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"the transcript extractor needs the 'text' extra .*pip install 'emofuse\[text\]'"):
        EXTRACTORS.create("transcript", {})


@pytest.mark.slow
def test_ravdess_words_carry_no_emotion(transcript):
    """RAVDESS actors say one of two fixed sentences in every emotion, so text alone must classify emotions at chance:
    a check that labels do not leak through the text branch. The packaged sample (6 actors x 30 takes) is transcribed
    into the user's feature cache (minutes once, seconds after); folds by actor, as every RAVDESS protocol."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    clips = sorted(SAMPLE.glob("Actor_*/*.flac"))
    assert len(clips) == 180
    report = extract_features(clips, transcript, FeatureCache(default_cache_dir()), workers=1, progress=False)
    assert not report.failures
    x = np.stack([report.features[c] for c in clips])
    fields = np.array([[int(part) for part in c.stem.split("-")] for c in clips])
    emotion, sentence, actor = fields[:, 2], fields[:, 4], fields[:, 6]

    def accuracy(labels: np.ndarray) -> float:
        predicted = cross_val_predict(LogisticRegression(max_iter=2000), x, labels, groups=actor, cv=GroupKFold(6))
        return float((predicted == labels).mean())

    assert accuracy(sentence) > 0.9  # the embeddings do carry the words
    chance = 1 / 8
    margin = 2.58 * math.sqrt(chance * (1 - chance) / len(clips))  # 99% band of a classifier that guesses (0.064)
    emotion_accuracy = accuracy(emotion)
    assert abs(emotion_accuracy - chance) <= margin, emotion_accuracy
