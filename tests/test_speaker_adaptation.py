"""features.speaker_norm (none / transductive / inductive): the enrolment draw, what each split is
standardised with, and what an inductive `emofuse cv` run records and scores."""

import itertools
import json
import math

import numpy as np
import torch
import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.config.loading import dump_config, load_config
from emofuse.config.schema import DataConfig, FeaturesConfig, ModalityNoiseConfig
from emofuse.datasets.corruption import FoldCorruption
from emofuse.data.ravdess import EMOTIONS
from emofuse.protocol.cross_validation import fold_data, run_cross_validation
from emofuse.protocol.enrolment import SpeakerInputs, choose_enrolment, draw_enrolment
from emofuse.inference.speaker_groups import HIGH_AROUSAL
from emofuse.protocol.folds import Fold
from emofuse.datasets.feature_set import FeatureSet
from emofuse.datasets.normalize import STD_FLOOR, Enrolment, SpeakerSummary, Standardizer, fit_stats
from emofuse.core.registry import ConfigError
from emofuse.data.sample import sample_dir
from emofuse.inference.speaker_groups import group_warnings, one_sided

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


def split(fs, setting, k=4, seed=0, pool=None, enrolment="full", **options):
    config = FeaturesConfig(speaker_norm=setting, adapt_clips=k, enrolment=enrolment, **options)
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


@pytest.mark.slow
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
    from emofuse.tasks.emi.config import EmiConfig
    from emofuse.tasks.emi.ravdess import RavdessSource, check_compatible

    emi = load_config(REPO / "configs" / "emi_ravdess.yaml", schema=EmiConfig)
    features = REPO / "configs" / "emi_ravdess_features.yaml"
    check_compatible(emi, load_config(features, ["features.speaker_norm=transductive"], schema=RavdessSource))
    with pytest.raises(ConfigError, match="inductive is not supported by emi-ravdess"):
        check_compatible(emi, load_config(features, ["features.speaker_norm=inductive"], schema=RavdessSource))


# ---- enrolment estimators (features.enrolment) and train-as-you-test draws (features.train_draws) ------------------

def typical_of(mean, std) -> Standardizer:
    scaler = Standardizer()
    scaler.mean, scaler.std = np.asarray(mean, float), np.asarray(std, float)
    return scaler


def test_estimators_by_hand():
    clips = np.array([[1.0, 10.0], [3.0, 10.0]])  # 2 clips: mean (2, 10), variance (1, 0)
    own = SpeakerSummary.of(clips)
    typical = typical_of([0.0, 4.0], [2.0, 1.0])  # variance (4, 1)
    full = Enrolment(0, 0).standardizer(own, typical)
    np.testing.assert_allclose(full.mean, [2, 10])
    np.testing.assert_allclose(full.std, [1, STD_FLOOR * 1.0])  # the constant dimension is floored, not 1e-6
    mean_only = Enrolment(0, math.inf).standardizer(own, typical)
    np.testing.assert_allclose(mean_only.mean, [2, 10]) and np.testing.assert_allclose(mean_only.std, [2, 1])
    shrink = Enrolment(2, 6).standardizer(own, typical)  # mean (2*own + 2*typ)/4, variance (2*own + 6*typ)/8
    np.testing.assert_allclose(shrink.mean, [1, 7])
    np.testing.assert_allclose(shrink.std, np.sqrt([(2 * 1 + 6 * 4) / 8, (2 * 0 + 6 * 1) / 8]))
    none = Enrolment(math.inf, math.inf).standardizer(own, typical)
    np.testing.assert_allclose(none.mean, typical.mean) and np.testing.assert_allclose(none.std, typical.std)
    assert [e.name for e in (Enrolment(0, 0), Enrolment(0, math.inf), Enrolment(math.inf, math.inf))] == ["full", "mean", "typical"]
    assert Enrolment.from_dict(json.loads(json.dumps(Enrolment(5, math.inf).to_dict()))) == Enrolment(5, math.inf)


@pytest.mark.parametrize("enrolment", ["full", "mean", "shrink", "auto"])
def test_one_clip_and_constant_dimensions_give_finite_features(enrolment):
    fs = feature_set()
    fs.features["audio"][:, 2] = 7.0  # constant for every speaker (a sparse action unit never present)
    inputs, (_, (_, val_x), (_, test_x)) = split(fs, "inductive", k=1, enrolment=enrolment)
    for x in (val_x["audio"], test_x["audio"]):
        assert np.isfinite(x).all() and np.abs(x).max() < 100


def test_auto_uses_enrolment_only_as_far_as_it_beats_none():
    rng = np.random.default_rng(0)
    typical = typical_of(np.zeros(6), np.ones(6))
    speakers = np.repeat(np.arange(8), 30)
    same = rng.normal(size=(240, 6))  # no speaker effect: k clips only add noise, the typical speaker is best
    chosen, _ = choose_enrolment(same, speakers, typical, k=3, seed=0)
    assert chosen.mean_prior >= 20 and chosen.var_prior >= 20
    offsets = rng.normal(0, 5, (8, 6))  # a strong speaker offset: the clips' own mean, shrunk little
    chosen, _ = choose_enrolment(same + offsets[speakers], speakers, typical, k=10, seed=0)
    assert chosen.mean_prior <= 2 and chosen.var_prior >= 20  # the spread is the typical speaker's: keep its variance


def test_auto_is_chosen_on_validation_speakers_only():
    fs = feature_set()
    inputs, _ = split(fs, "inductive", enrolment="auto")
    _, chosen = inputs.fold_statistics(FOLD)
    actor = fs.meta["actor"].to_numpy()
    fs.features["audio"][np.isin(actor, FOLD.test_actors)] *= 50.0  # test speakers change: the choice does not
    again, _ = split(fs, "inductive", enrolment="auto")
    assert again.fold_statistics(FOLD)[1] == chosen
    fs.features["audio"][actor == FOLD.val_actors[0]] *= 50.0
    assert split(fs, "inductive", enrolment="auto")[0].fold_statistics(FOLD)[1] != chosen


def test_training_draws_use_training_speakers_only_and_are_seeded():
    fs = feature_set()
    inputs, ((train, train_x), _, _) = split(fs, "inductive", k=4, train_draws=True, enrolment="mean")
    first, again = inputs.training_draw(FOLD, epoch=0), inputs.training_draw(FOLD, epoch=0)
    np.testing.assert_array_equal(first["audio"], again["audio"])  # the seed, fold and epoch fix the draw
    assert not np.allclose(first["audio"], inputs.training_draw(FOLD, epoch=1)["audio"])  # redrawn every epoch
    assert not np.allclose(first["audio"], split(fs, "inductive", k=4, seed=1, train_draws=True,
                                                 enrolment="mean")[0].training_draw(FOLD, 0)["audio"])
    assert first["audio"].shape == train_x["audio"].shape and set(first) == {"audio", "visual"}
    actor = fs.meta["actor"].to_numpy()
    held_out = np.isin(actor, FOLD.test_actors + FOLD.val_actors)
    fs.features["audio"][held_out] += 1000.0  # held-out speakers play no part in the training draws
    changed = split(fs, "inductive", k=4, train_draws=True, enrolment="mean")[0].training_draw(FOLD, 0)
    np.testing.assert_allclose(changed["audio"], first["audio"], rtol=1e-6)
    # each training speaker's draw: the mean of 4 of its own clips (train rows are speaker 4, 5, 6 in order)
    typical = inputs.fold_statistics(FOLD)[0]["audio"]
    speaker4 = fs.features["audio"][actor == 4]
    centred = first["audio"][:16] * typical.std  # undo the typical std (mean-only estimator)
    offset = speaker4 - centred  # every row: the drawn mean
    np.testing.assert_allclose(offset, offset[0][None].repeat(16, 0), atol=1e-4)
    assert any(np.allclose(offset[0], speaker4[list(c)].mean(0), atol=1e-4) for c in itertools.combinations(range(16), 4))


@pytest.mark.parametrize("frames", [False, True])
def test_training_draws_of_no_clip_give_the_typical_speaker_and_mix_per_speaker(frames):
    """train_draw_clips: [0] standardises every training speaker as a file on its own is (the typical speaker's
    statistics); [0, 4] draws per speaker and epoch, each speaker either typical or from 4 clips of their own."""
    fs = feature_set(frames=frames)
    alone = split(fs, "inductive", k=4, train_draws=True, enrolment="mean", train_draw_clips=[0])[0]
    typical = alone.fold_statistics(FOLD)[0]["audio"]
    train = np.flatnonzero(np.isin(fs.meta["actor"].to_numpy(), FOLD.train_actors))
    raw = fs.features["audio"]
    expected = typical.transform([raw[i] for i in train] if frames else raw[train])
    drawn = alone.training_draw(FOLD, epoch=0)["audio"]
    for got, want in zip(drawn, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    mixed = split(fs, "inductive", k=4, train_draws=True, enrolment="mean", train_draw_clips=[0, 4])[0]
    kinds = set()
    for epoch in range(6):
        draw = mixed.training_draw(FOLD, epoch)["audio"]
        for s in range(3):  # 16 rows a training speaker: typical, or a 4-clip draw (not the typical speaker's)
            rows = slice(16 * s, 16 * (s + 1))
            is_typical = all(np.allclose(a, b, atol=1e-5) for a, b in zip(draw[rows], expected[rows]))
            kinds.add(is_typical)
    assert kinds == {True, False}


def test_train_draws_act_under_inductive_only():
    fs = feature_set()
    for setting in ("none", "transductive"):
        inputs, _ = split(fs, setting, train_draws=True)
        assert not inputs.train_draws
    assert split(fs, "inductive", train_draws=True)[0].train_draws


@pytest.mark.slow
def test_inductive_cv_with_draws_records_the_estimator(tmp_path):
    config = load_config(REPO / "configs" / "ravdess_mars_egemaps.yaml", [
        "protocol.n_folds=2", "train.epochs=3", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=1",
        "features.workers=1", "features.speaker_norm=inductive", "features.adapt_clips=5", "features.train_draws=true"])
    result = run_cross_validation(config, sample_dir(), tmp_path / "run", tmp_path / "cache", progress=False)
    assert result["enrolment"] == "auto" and result["train_draws"] is True
    for fold in result["folds"]:
        assert set(fold["enrolment_estimator"]) == {"audio", "visual"}
        state = json.loads((tmp_path / "run" / "folds" / f"fold_{fold['fold']}" / "standardizer.json").read_text())
        assert {m: Enrolment.from_dict(e) for m, e in state["enrolment"].items()} == {
            m: Enrolment.from_dict(e) for m, e in fold["enrolment_estimator"].items()}


def test_training_draws_keep_a_planted_missing_modality():
    """data.modality_noise under train_draws: every epoch's redrawn inputs lose the modality on the same clips."""
    fs = feature_set()
    fs.meta["take"] = fs.meta["clip"]
    data = DataConfig(modality_noise=ModalityNoiseConfig(modality="audio", kind="missing", level=0.5, where="train"))
    inputs, _ = split(fs, "inductive", k=4, train_draws=True, enrolment="mean")
    corruption = FoldCorruption(data, fs.meta, EMOTIONS, 0, FOLD.index, FOLD.test_actors)
    train = fold_data(fs, inputs, FOLD, corruption).train
    missing = (train.inputs["audio"] == 0).all(1)
    assert 0 < missing.sum() < len(missing)
    before = train.inputs["audio"].clone()
    train.start_epoch(1)
    assert torch.equal((train.inputs["audio"] == 0).all(1), missing)
    assert not torch.allclose(train.inputs["audio"][~missing], before[~missing])
