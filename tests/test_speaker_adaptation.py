"""features.speaker_norm (none / transductive / inductive): the enrolment draw, what each split is
standardised with, and what an inductive `emofuse cv` run records and scores."""

import json

import numpy as np
import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.config import FeaturesConfig, dump_config, load_config
from emofuse.data.ravdess import EMOTIONS
from emofuse.evaluation.enrolment import HIGH_AROUSAL, SpeakerInputs, draw_enrolment
from emofuse.evaluation.folds import Fold
from emofuse.features.dataset import FeatureSet
from emofuse.features.normalize import fit_stats
from emofuse.registry import ConfigError
from emofuse.speaker_groups import group_warnings, one_sided

from conftest import REPO

FOLD = Fold(index=1, test_actors=(1, 2), val_actors=(3,), train_actors=(4, 5, 6))


def feature_set(clips_per_speaker: int = 16, speakers=range(1, 7), seed: int = 0, frames: bool = False) -> FeatureSet:
    """Random features with a per-speaker offset and scale, so that each speaker's statistics differ."""
    rng = np.random.default_rng(seed)
    rows, audio = [], []
    for s in speakers:
        offset, scale = rng.normal(0, 3, 4), rng.uniform(0.5, 2, 4)
        for j in range(clips_per_speaker):
            label = j % len(EMOTIONS)
            rows.append({"clip": f"s{s}-c{j:02d}", "take": f"s{s}-c{j:02d}", "actor": s, "label": label,
                         "emotion": EMOTIONS[label]})
            shape = (int(rng.integers(5, 9)), 4) if frames else (4,)
            audio.append(offset + scale * rng.normal(size=shape))
    values = audio if frames else np.stack(audio)
    return FeatureSet(meta=pd.DataFrame(rows), features={"audio": values, "visual": rng.normal(size=(len(rows), 3))})


def test_settings_aliases_and_canonical_config():
    assert FeaturesConfig(speaker_norm=True).speaker_norm == "transductive"
    assert FeaturesConfig(speaker_norm=False).speaker_norm == "none"
    assert not FeaturesConfig().per_speaker and FeaturesConfig(speaker_norm="inductive").per_speaker
    config = load_config(REPO / "configs" / "ravdess_ce_egemaps.yaml")  # says `speaker_norm: true`
    assert "speaker_norm: transductive" in dump_config(config) and "adapt_clips: 10" in dump_config(config)
    with pytest.raises(ConfigError, match="features.speaker_norm"):
        load_config(REPO / "configs" / "ravdess_ce_egemaps.yaml", ["features.speaker_norm=partly"])
    with pytest.raises(ConfigError, match="features.adapt_clips"):
        load_config(REPO / "configs" / "ravdess_ce_egemaps.yaml", ["features.adapt_clips=-1"])


def test_enrolment_is_seeded_per_speaker_and_nested():
    meta = feature_set().meta
    ten = draw_enrolment(meta, 10, seed=0)
    assert (meta.assign(e=ten).groupby("actor")["e"].sum() == 10).all()
    assert (draw_enrolment(meta, 10, seed=0) == ten).all()
    assert (draw_enrolment(meta, 10, seed=1) != ten).any()
    five = draw_enrolment(meta, 5, seed=0)
    assert (ten[five]).all()  # a smaller k's clips are part of a larger k's
    # a speaker's draw depends on its own clips only, not on the order of the rows or the other speakers
    shuffled = meta.sample(frac=1, random_state=3)
    again = pd.Series(draw_enrolment(shuffled, 10, seed=0), index=shuffled.index).sort_index().to_numpy()
    assert (again == ten).all()
    alone = meta[meta.actor == 2]
    assert (draw_enrolment(alone, 10, seed=0) == ten[alone.index]).all()


def test_too_few_clips_or_a_too_small_pool_is_a_clear_error():
    meta = feature_set(clips_per_speaker=10).meta
    with pytest.raises(ConfigError, match=r"features.adapt_clips: 10: speaker 1 has 10 clips"):
        draw_enrolment(meta, 10, seed=0)
    assert draw_enrolment(meta, 9, seed=0).sum() == 9 * 6
    meta = feature_set().meta  # 16 clips per speaker, 2 of each emotion
    high = lambda clips: clips["emotion"].isin(HIGH_AROUSAL).to_numpy()  # noqa: E731
    drawn = draw_enrolment(meta, 8, seed=0, pool=high)
    assert set(meta.emotion[drawn]) == set(HIGH_AROUSAL)  # all 8 high-arousal clips of each speaker
    with pytest.raises(ConfigError, match="enrolment pool: speaker 1 has 8 eligible clips, fewer than"):
        draw_enrolment(meta, 9, seed=0, pool=high)


def split(fs, setting, k=4, seed=0, pool=None):
    config = FeaturesConfig(speaker_norm=setting, adapt_clips=k)
    inputs = SpeakerInputs(fs, config, seed, pool)
    return inputs, inputs.split(FOLD)


@pytest.mark.parametrize("frames", [False, True])
def test_inductive_held_out_speakers_use_only_their_enrolment_clips(frames):
    fs = feature_set(frames=frames)
    inputs, ((train, train_x), (val, val_x), (test, test_x)) = split(fs, "inductive")
    actor = fs.meta["actor"].to_numpy()
    enrolled = inputs.enrolment["test"]
    assert set(actor[train]) == {4, 5, 6} and len(train) == 48  # training speakers: every clip
    assert len(test) == 2 * (16 - 4) and not enrolled[test].any() and set(actor[test]) == {1, 2}
    assert len(val) == 16 - 4 and not inputs.enrolment["val"][val].any()
    stack = lambda rows: np.concatenate([fs.features["audio"][i].reshape(-1, 4) for i in rows])  # noqa: E731
    for s in (1, 2):  # by hand: the mean and std of the speaker's enrolment clips
        mean, std = fit_stats(stack(np.flatnonzero((actor == s) & enrolled)))
        mine = np.flatnonzero(actor[test] == s)
        expected = (stack(test[mine]) - mean) / std
        np.testing.assert_allclose(np.concatenate([test_x["audio"][i].reshape(-1, 4) for i in mine]), expected, rtol=1e-5)
    mean, std = fit_stats(stack(np.flatnonzero(actor == 4)))  # a training speaker: all of its clips
    np.testing.assert_allclose(np.asarray(train_x["audio"][0]), (np.asarray(fs.features["audio"][train[0]]) - mean) / std, rtol=1e-5)
    # a scored clip plays no part in any statistics: changing it changes no other clip's features
    if not frames:
        fs.features["audio"][test[0]] += 100.0
        _, (_, _, (_, changed)) = split(fs, "inductive")
        np.testing.assert_allclose(changed["audio"][1:], test_x["audio"][1:])
        assert not np.allclose(changed["audio"][0], test_x["audio"][0])


def test_transductive_uses_every_clip_and_none_the_raw_features():
    fs = feature_set()
    actor = fs.meta["actor"].to_numpy()
    _, (_, _, (test, test_x)) = split(fs, "transductive")
    assert len(test) == 32
    mean, std = fit_stats(fs.features["audio"][actor == 1])
    np.testing.assert_allclose(test_x["audio"][:16], (fs.features["audio"][actor == 1] - mean) / std, rtol=1e-5)
    _, (_, _, (test, test_x)) = split(fs, "none")
    np.testing.assert_array_equal(test_x["audio"], fs.features["audio"][test])


def test_zero_enrolment_clips_use_the_typical_training_speaker():
    fs = feature_set()
    actor = fs.meta["actor"].to_numpy()
    inputs, (_, _, (test, test_x)) = split(fs, "inductive", k=0)
    assert len(test) == 32 and not inputs.enrolment["test"].any()
    stats = [fit_stats(fs.features["audio"][actor == s]) for s in FOLD.train_actors]
    mean = np.mean([m for m, _ in stats], 0)
    std = np.sqrt(np.mean([s**2 for _, s in stats], 0))
    np.testing.assert_allclose(test_x["audio"], (fs.features["audio"][test] - mean) / std, rtol=1e-5)


def test_the_pool_applies_to_test_speakers_only():
    fs = feature_set()
    high = lambda clips: clips["emotion"].isin(HIGH_AROUSAL).to_numpy()  # noqa: E731
    inputs, (_, (val, _), (test, _)) = split(fs, "inductive", k=6, pool=high)
    table = inputs.enrolment_table(FOLD)
    assert set(table[table.role == "test"].emotion) <= set(HIGH_AROUSAL)
    assert not set(table[table.role == "val"].emotion) <= set(HIGH_AROUSAL)  # a random draw
    assert list(table.columns) == ["speaker", "role", "clip", "emotion"] and len(table) == 3 * 6


def test_inductive_cv_records_its_enrolment_and_never_scores_it(tmp_path):
    """The issue's acceptance command, on the packaged sample (real RAVDESS clips, 30 per actor), reduced."""
    out = tmp_path / "run"
    argv = ["cv", str(REPO / "configs" / "ravdess_mars_egemaps.yaml"), "--out", str(out), "--cache", str(tmp_path / "c"),
            "--set", "features.speaker_norm=inductive", "--set", "train.epochs=2", "--set",
            "train.early_stopping.min_epochs=0", "--set", "protocol.n_folds=3", "--no-progress"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["speaker_norm"] == "inductive" and results["adapt_clips"] == 10
    assert "speaker_norm: inductive" in (out / "config.yaml").read_text()
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == results["n_clips"] == 180 - 6 * 10
    enrolled = {c for clips in results["enrolment_clips"].values() for c in clips}
    assert sorted(results["enrolment_clips"]) == [str(a) for a in range(1, 7)] and len(enrolled) == 60
    assert not enrolled & set(predictions["clip"])
    for fold in results["folds"]:
        table = pd.read_csv(out / "folds" / f"fold_{fold['fold']}" / "enrolment.csv")
        assert (table.groupby("speaker").size() == 10).all()
        assert set(table[table.role == "val"].speaker) == set(fold["val_actors"])
        assert set(table[table.role == "test"].speaker) == set(fold["test_actors"])
        record = {s: sorted(g["clip"]) for s, g in table[table.role == "test"].groupby("speaker")}
        assert fold["enrolment_clips"]["test"] == {str(s): c for s, c in record.items()}
        assert fold["n_test"] == 20 * len(fold["test_actors"])
    assert main(argv) == 0  # resumes: same enrolment, same numbers
    assert json.loads((out / "results.json").read_text())["enrolment_clips"] == results["enrolment_clips"]


def test_one_sided_groups_are_told_without_labels():
    assert one_sided(["angry"] * 8 + ["sad"] * 2) == "high"
    assert one_sided(["calm", "sad", "neutral", "sad", "disgust"]) == "low"
    assert one_sided(["angry"] * 7 + ["sad"] * 3) is None
    assert one_sided(["disgust"] * 10) is None  # disgust belongs to neither half
    warnings = group_warnings("ann", 12, 10, ["happy"] * 12)
    assert len(warnings) == 1 and "one-sided, 100% of the files are high-arousal" in warnings[0]
    assert group_warnings("ann", 12, 10, ["happy", "sad"] * 6) == []
    assert "fewer than the run's features.adapt_clips (10)" in group_warnings("ann", 4, 10, ["happy", "sad"] * 2)[0]


def test_emi_ravdess_refuses_inductive_with_a_message():
    """Its features are written once for all folds: a held-out speaker's enrolment cannot be per fold."""
    from emofuse.emi_config import EmiConfig
    from emofuse.evaluation.emi_ravdess import RavdessSource, check_compatible

    emi = load_config(REPO / "configs" / "emi_ravdess.yaml", schema=EmiConfig)
    features = REPO / "configs" / "emi_ravdess_features.yaml"
    check_compatible(emi, load_config(features, ["features.speaker_norm=transductive"], schema=RavdessSource))
    with pytest.raises(ConfigError, match="inductive is not supported by emi-ravdess"):
        check_compatible(emi, load_config(features, ["features.speaker_norm=inductive"], schema=RavdessSource))
