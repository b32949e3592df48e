"""Planted label noise and modality noise (data.label_noise, data.modality_noise): validation, the clips they touch,
reproducibility, and that test clips are never relabelled."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from emofuse.config.loading import config_from_dict, load_config
from emofuse.datasets.corruption import FoldCorruption, most_confusable
from emofuse.core.errors import DataError
from emofuse.data.ravdess import EMOTIONS, find_audio_files, parse_name
from emofuse.protocol.cross_validation import fold_data, prepare_inputs
from emofuse.protocol.folds import actor_folds
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import build_ravdess_features
from emofuse.core.registry import ConfigError
from tests.conftest import RAVDESS, REPO, requires_shared_data

MARS = REPO / "configs" / "ravdess_mars.yaml"


def ravdess_meta(root) -> pd.DataFrame:
    """The take table `emofuse cv` builds (clip, take, actor, label), from file names alone: no features needed."""
    names = [parse_name(p) for p in find_audio_files(root / "audio16k").values()]
    return pd.DataFrame({"clip": [n.stem for n in names], "take": [n.take for n in names],
                         "actor": [n.actor for n in names], "label": [n.label for n in names]})


def corrupt_fold(meta, fold, data, seed=0):
    """Labels of every split of one fold as FoldCorruption leaves them (features: a column of row numbers)."""
    c = FoldCorruption(data, meta, EMOTIONS, seed, fold.index, fold.test_actors)
    out = {}
    for split, actors in (("train", fold.train_actors), ("val", fold.val_actors), ("test", fold.test_actors)):
        rows = np.flatnonzero(meta["actor"].isin(actors).to_numpy())
        _, labels = c.apply(split, rows, {"audio": np.zeros((len(rows), 2), np.float32)}, meta["label"].to_numpy()[rows])
        out[split] = (rows, labels)
    return c, out


@pytest.mark.parametrize("key, value, message", [
    ("data.label_noise", {"rate": 1.0}, "'data.label_noise.rate'"),
    ("data.label_noise", {"rate": -0.1}, "'data.label_noise.rate'"),
    ("data.label_noise", {"rate": 0.1, "splits": ["train", "test"]}, "data.label_noise.splits: test labels are never"),
    ("data.label_noise", {"rate": 0.1, "kind": "confusable"}, "data.label_noise.confusion_from"),
    ("data.label_noise", {"rate": 0.1, "kind": "adversarial"}, "'data.label_noise.kind'"),
    ("data.label_noise", {"rate": 0.1, "seeed": 1}, "unknown key 'data.label_noise.seeed'"),
    ("data.modality_noise", {"modality": "face", "kind": "gaussian", "level": 10},
     "data.modality_noise.modality: 'face' is not one of data.modalities ['audio', 'visual']"),
    ("data.modality_noise", {"modality": "audio", "kind": "dropout", "level": 1.5}, "data.modality_noise.level"),
    ("data.modality_noise", {"modality": "audio", "kind": "missing", "level": 0.2, "where": "val"}, "'data.modality_noise.where'"),
    ("data.modality_noise", {"modality": "audio", "kind": "gaussian"}, "'data.modality_noise.level'"),
])
def test_bad_corruption_keys_are_errors_naming_the_key(key, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(MARS, [f"{key}={json.dumps(value)}"])


def test_noise_on_a_modality_the_config_does_not_use_is_an_error(tmp_path):
    tree = load_config(MARS).model_dump(mode="json")
    tree["data"]["modalities"] = ["audio"]
    tree["model"]["encoders"].pop("visual")
    tree["loss"]["params"]["gamma"] = 1.0
    tree["data"]["modality_noise"] = {"modality": "visual", "kind": "gaussian", "level": 0}
    with pytest.raises(ConfigError, match="data.modality_noise.modality: 'visual' is not one of data.modalities"):
        config_from_dict(tree)
    ok = load_config(MARS, ["data.modality_noise={modality: audio, kind: gaussian, level: .inf}"])
    assert ok.data.modality_noise.level == float("inf")


@requires_shared_data()
@pytest.mark.parametrize("rate", [0.1, 0.25])
def test_label_noise_on_real_ravdess_flips_the_right_clips(rate):
    meta = ravdess_meta(RAVDESS)
    folds = actor_folds(meta["actor"].unique(), 6, 0.2, seed=0)
    data = load_config(MARS, [f"data.label_noise.rate={rate}"]).data
    flipped_takes = {}
    for fold in folds:
        c, out = corrupt_fold(meta, fold, data)
        truth = meta["label"].to_numpy()
        # the test clips keep their labels
        rows, labels = out["test"]
        assert np.array_equal(labels, truth[rows])
        # exactly round(rate x 60) clips of every training and validation actor are flipped, to another class
        flipped = np.concatenate([rows[labels != truth[rows]] for rows, labels in (out["train"], out["val"])])
        per_actor = meta.loc[flipped, "actor"].value_counts()
        assert set(per_actor.index) == set(fold.train_actors) | set(fold.val_actors)
        assert (per_actor == int(np.floor(rate * 60 + 0.5))).all()
        assert len(flipped) == 20 * int(np.floor(rate * 60 + 0.5))
        # the listed clips are those flipped
        table = c.flipped_table()
        assert sorted(table["clip"]) == sorted(meta.loc[flipped, "clip"])
        assert (table["label"] != table["noisy_label"]).all() and set(table["split"]) == {"train", "val"}
        flipped_takes[fold.index] = dict(zip(table["take"], table["noisy_label"]))
    # a clip flipped in one fold is flipped, to the same class, in every fold where it is not a test clip
    for fold in folds:
        for other in folds:
            shared = set(meta.loc[~meta["actor"].isin(fold.test_actors + other.test_actors), "take"])
            a = {t: v for t, v in flipped_takes[fold.index].items() if t in shared}
            b = {t: v for t, v in flipped_takes[other.index].items() if t in shared}
            assert a == b


def test_the_same_seed_flips_the_same_clips_and_another_seed_others(ravdess_fixture):
    meta = ravdess_meta(ravdess_fixture)
    fold = actor_folds(meta["actor"].unique(), 3, 0.25, seed=0)[0]
    data = load_config(MARS, ["data.label_noise.rate=0.25"]).data
    first = corrupt_fold(meta, fold, data, seed=0)[0].flipped_table()
    again = corrupt_fold(meta, fold, data, seed=0)[0].flipped_table()
    other = corrupt_fold(meta, fold, data, seed=1)[0].flipped_table()
    pinned = corrupt_fold(meta, fold, load_config(MARS, ["data.label_noise={rate: 0.25, seed: 0}"]).data, seed=1)[0]
    assert first.equals(again) and first.equals(pinned.flipped_table())
    assert set(first["take"]) != set(other["take"])
    zero = corrupt_fold(meta, fold, load_config(MARS, ["data.label_noise.rate=0"]).data)[1]
    assert all(np.array_equal(labels, meta["label"].to_numpy()[rows]) for rows, labels in zero.values())


def test_validation_only_or_training_only_noise(ravdess_fixture):
    meta = ravdess_meta(ravdess_fixture)
    fold = actor_folds(meta["actor"].unique(), 3, 0.25, seed=0)[0]
    c, out = corrupt_fold(meta, fold, load_config(MARS, ["data.label_noise={rate: 0.5, splits: [train]}"]).data)
    truth = meta["label"].to_numpy()
    assert (out["train"][1] != truth[out["train"][0]]).sum() == len(fold.train_actors) * 8
    assert np.array_equal(out["val"][1], truth[out["val"][0]])
    assert set(c.flipped_table()["split"]) == {"train"}


@requires_shared_data()
def test_symmetric_noise_reaches_every_other_class():
    meta = ravdess_meta(RAVDESS)
    data = load_config(MARS, ["data.label_noise.rate=0.5"]).data
    c = FoldCorruption(data, meta, EMOTIONS, 0, 1, (1, 2, 3, 4))
    truth = meta["label"].to_numpy()
    moved = c.noisy_labels != truth
    assert moved.sum() == 24 * 30
    pairs = pd.crosstab(truth[moved], c.noisy_labels[moved])
    assert (np.diag(pairs.reindex(index=range(8), columns=range(8), fill_value=0).to_numpy()) == 0).all()
    assert (pairs.to_numpy()[~np.eye(8, dtype=bool)] > 0).mean() > 0.9  # 720 flips spread over the 56 other pairs


def write_clean_run(root, fold_val_actors, confusion):
    """A clean run directory as `emofuse cv` writes it, with validation predictions following ``confusion``."""
    (root / "folds").mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump({"name": "clean", "data": {"label_noise": None}}))
    for fold, val_actors in fold_val_actors.items():
        d = root / "folds" / f"fold_{fold}"
        d.mkdir()
        (d / "result.json").write_text(json.dumps({"val_actors": list(val_actors)}))
        rows = [{"label": EMOTIONS[k], **{f"prob_{c}": confusion[k][j] for j, c in enumerate(EMOTIONS)}} for k in range(8)]
        pd.DataFrame(rows * 2).to_csv(d / "val_predictions.csv", index=False)
    return root


def test_confusable_noise_follows_a_clean_runs_validation_confusions(ravdess_fixture, tmp_path):
    meta = ravdess_meta(ravdess_fixture)
    fold = actor_folds(meta["actor"].unique(), 3, 0.25, seed=0)[0]  # test actors 1, 2
    confusion = np.full((8, 8), 0.02) + np.eye(8) * 0.5
    partner = {0: 1, 1: 0, 2: 7, 3: 1, 4: 6, 5: 7, 6: 4, 7: 5}  # neutral<->calm, fearful->surprised, ...
    for k, j in partner.items():
        confusion[k, j] = 0.3
    run = write_clean_run(tmp_path / "clean", {1: (3, 5)}, confusion)
    data = load_config(MARS, [f"data.label_noise={{rate: 0.25, kind: confusable, confusion_from: {run}}}"]).data
    c, out = corrupt_fold(meta, fold, data)
    table = c.flipped_table()
    assert len(table) and all(EMOTIONS.index(n) == partner[EMOTIONS.index(t)] for t, n in zip(table["label"], table["noisy_label"]))
    # symmetric and confusable noise flip the same clips for the same seed; only the new class differs
    same = corrupt_fold(meta, fold, load_config(MARS, ["data.label_noise.rate=0.25"]).data)[0].flipped_table()
    assert set(same["take"]) == set(table["take"])
    # a map from validation speakers that are this fold's test speakers would leak: refused
    leaky = write_clean_run(tmp_path / "leaky", {1: (2, 5)}, confusion)
    data = load_config(MARS, [f"data.label_noise={{rate: 0.25, kind: confusable, confusion_from: {leaky}}}"]).data
    with pytest.raises(DataError, match=r"validation actors \['2'\] are test actors of fold 1"):
        corrupt_fold(meta, fold, data)
    # a CSV confusion matrix (e.g. a published one) serves every fold
    csv = tmp_path / "confusion.csv"
    pd.DataFrame(confusion, index=EMOTIONS, columns=EMOTIONS).to_csv(csv)
    data = load_config(MARS, [f"data.label_noise={{rate: 0.25, kind: confusable, confusion_from: {csv}}}"]).data
    assert corrupt_fold(meta, fold, data)[0].flipped_table().equals(table)
    assert list(most_confusable(confusion)) == [partner[k] for k in range(8)]


def test_a_noisy_run_is_not_a_confusion_source(ravdess_fixture, tmp_path):
    meta = ravdess_meta(ravdess_fixture)
    fold = actor_folds(meta["actor"].unique(), 3, 0.25, seed=0)[0]
    run = write_clean_run(tmp_path / "noisy", {1: (3, 5)}, np.eye(8) + 0.1)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"label_noise": {"rate": 0.2}}}))
    data = load_config(MARS, [f"data.label_noise={{rate: 0.25, kind: confusable, confusion_from: {run}}}"]).data
    with pytest.raises(DataError, match="has label noise itself"):
        corrupt_fold(meta, fold, data)
    gone = load_config(MARS, [f"data.label_noise={{rate: 0.25, kind: confusable, confusion_from: {tmp_path / 'gone'}}}"]).data
    with pytest.raises(DataError, match="no such run directory or CSV file"):
        corrupt_fold(meta, fold, gone)


TINY_FEATURES = {"audio": {"name": "mfcc", "params": {"n_mfcc": 13, "deltas": False}}, "speaker_norm": True, "workers": 1}


def fixture_setup(ravdess_fixture, tmp_path, features=None, **data):
    """The generated RAVDESS fixture's features (MFCC sequences, AU vectors), speaker inputs and first fold, with
    ``data`` noise."""
    config = load_config(MARS).model_dump(mode="json")
    config["features"] = {**TINY_FEATURES, **(features or {})}
    config["data"].update(data)
    config = config_from_dict(config)
    fs = build_ravdess_features(ravdess_fixture, config.data, config.features, FeatureCache(tmp_path / "cache"), progress=False)
    fold = actor_folds(fs.meta["actor"].unique(), 3, 0.25, seed=0)[0]
    corruption = FoldCorruption(config.data, fs.meta, fs.class_names, 0, fold.index, fold.test_actors) if data else None
    return fs, prepare_inputs(fs, config), fold, corruption


def fixture_folds(ravdess_fixture, tmp_path, **data):
    """Standardised fold data of the generated RAVDESS fixture with ``data`` noise."""
    fs, inputs, fold, corruption = fixture_setup(ravdess_fixture, tmp_path, **data)
    return fold_data(fs, inputs, fold, corruption)


def test_gaussian_noise_has_the_asked_snr_and_stays_where_it_is_put(ravdess_fixture, tmp_path):
    clean = fixture_folds(ravdess_fixture, tmp_path)
    noisy = fixture_folds(ravdess_fixture, tmp_path, modality_noise={"modality": "visual", "kind": "gaussian", "level": 6.0})
    noise = (noisy.test.inputs["visual"] - clean.test.inputs["visual"]).numpy()
    assert np.mean(noise**2) == pytest.approx(10 ** (-6 / 10), rel=0.1)  # unit signal power per standardised dimension
    for split in ("train", "val"):
        assert np.array_equal(getattr(noisy, split).inputs["visual"], getattr(clean, split).inputs["visual"])
    assert np.array_equal(noisy.test.inputs["audio"], clean.test.inputs["audio"])
    assert np.array_equal(noisy.test.target, clean.test.target)
    inf = fixture_folds(ravdess_fixture, tmp_path, modality_noise={"modality": "visual", "kind": "gaussian", "level": float("inf")})
    assert np.array_equal(inf.test.inputs["visual"], clean.test.inputs["visual"])


def test_dropout_zeroes_a_share_of_dimensions_of_every_clip(ravdess_fixture, tmp_path):
    clean = fixture_folds(ravdess_fixture, tmp_path)
    noisy = fixture_folds(ravdess_fixture, tmp_path, modality_noise={"modality": "audio", "kind": "dropout", "level": 0.5,
                                                                   "where": "both"})
    for split in ("train", "val", "test"):
        a, b = getattr(noisy, split), getattr(clean, split)
        zeroed = (a.inputs["audio"] == 0).all(1)  # (clips, dims): a dimension zero in every frame of the clip
        assert (zeroed.sum(1) == 7).all()  # round(0.5 x 13) = 7 of the 13 MFCCs, in every clip
        kept = ~zeroed[:, None, :].expand_as(a.inputs["audio"])
        assert np.array_equal(a.inputs["audio"][kept], b.inputs["audio"][kept])


def test_a_missing_modality_is_the_training_mean_for_a_share_of_each_actors_clips(ravdess_fixture, tmp_path):
    clean = fixture_folds(ravdess_fixture, tmp_path)
    noisy = fixture_folds(ravdess_fixture, tmp_path, modality_noise={"modality": "visual", "kind": "missing", "level": 0.25,
                                                                   "where": "train"})
    missing = (noisy.train.inputs["visual"] == 0).all(1)
    assert missing.sum() == 0.25 * len(missing)  # 16 clips per actor, 4 of them without a face
    assert np.array_equal(noisy.train.inputs["visual"][~missing], clean.train.inputs["visual"][~missing])
    assert (noisy.val.inputs["visual"] == 0).all(1).sum() == 0.25 * len(noisy.val)
    assert np.array_equal(noisy.test.inputs["visual"], clean.test.inputs["visual"])
    assert noisy.corruption.summary() == {"modality_noise": {"corrupted_clips": {"train": int(missing.sum()),
                                                                                  "val": int(0.25 * len(noisy.val))}}}


def test_inductive_speaker_normalisation_corrupts_the_scored_rows_only(ravdess_fixture, tmp_path):
    """With enrolment clips (features.speaker_norm: inductive), the noise acts on the rows SpeakerInputs gives each
    split: training clips all, validation and test clips without their speakers' enrolment clips, which are never
    scored, never listed as flipped and never counted as corrupted; test labels stay true."""
    inductive = {"speaker_norm": "inductive", "adapt_clips": 3}
    noise = {"label_noise": {"rate": 0.25}, "modality_noise": {"modality": "visual", "kind": "missing", "level": 0.25,
                                                              "where": "both"}}
    fs, inputs, fold, corruption = fixture_setup(ravdess_fixture, tmp_path, inductive, **noise)
    noisy = fold_data(fs, inputs, fold, corruption)
    clean = fold_data(fs, inputs, fold)
    truth = fs.meta["label"].to_numpy()
    rows = {split: split_rows for split, (split_rows, _) in zip(("train", "val", "test"), inputs.split(fold))}
    actors = fs.meta["actor"].to_numpy()
    enrolled = ((inputs.enrolment["val"] & np.isin(actors, fold.val_actors))
                | (inputs.enrolment["test"] & np.isin(actors, fold.test_actors)))  # this fold's enrolment clips
    assert enrolled.sum() == 3 * (len(fold.val_actors) + len(fold.test_actors))
    assert not enrolled[rows["val"]].any() and not enrolled[rows["test"]].any()
    assert len(rows["val"]) == 16 * len(fold.val_actors) - 3 * len(fold.val_actors)  # 3 enrolment clips per speaker
    # test labels are the true ones; training and validation labels differ from them exactly at the listed clips
    assert np.array_equal(noisy.test.target, truth[rows["test"]])
    table = corruption.flipped_table()
    for split in ("train", "val"):
        target = getattr(noisy, split).target.numpy()
        listed = set(table.loc[table["split"] == split, "clip"])
        assert set(fs.meta["clip"].to_numpy()[rows[split]][target != truth[rows[split]]]) == listed
    assert (table["split"] == "train").sum() == 4 * len(fold.train_actors)  # round(0.25 x 16) of every training actor
    assert not set(table["clip"]) & set(fs.meta.loc[enrolled, "clip"]) and set(table["split"]) <= {"train", "val"}
    # the missing modality: the chosen clips among the scored rows, the same clips as without enrolment
    for split in ("train", "val", "test"):
        gone = (getattr(noisy, split).inputs["visual"] == 0).all(1).numpy()
        assert np.array_equal(gone, corruption.missing[rows[split]])
        assert corruption.summary()["modality_noise"]["corrupted_clips"][split] == int(gone.sum())
        assert np.array_equal(getattr(noisy, split).inputs["visual"][~gone], getattr(clean, split).inputs["visual"][~gone])
        assert np.array_equal(getattr(noisy, split).inputs["audio"], getattr(clean, split).inputs["audio"])
