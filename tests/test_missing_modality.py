"""A corpus without a modality another has (nEMO has no face) trains the branches it has: presence per sample from
the manifest to the metrics, a branch that gets exactly no gradient from a sample without its modality (checked by
hand), a fused answer of an audio-only sample that is its audio branch's, and a cross-validation that completes."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.config.loading import config_from_dict
from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.core.errors import DataError
from emofuse.core.registry import ConfigError
from emofuse.data.manifest import read_manifest
from emofuse.datasets.manifest_set import build_manifest_features
from emofuse.features.cache import FeatureCache
from emofuse.losses import LOSSES
from emofuse.losses.base import restrict_classes
from emofuse.metrics.classification import classification_metrics, predict
from emofuse.models.multimodal import create_model
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.protocol.rescore import predictions_at_k
from emofuse.training.batches import TensorData

from conftest import AU_NAMES, SHARED_DATA, feature_manifest_config, requires_shared_data
from test_multi_corpus import FEATURES, two_corpora


def without_visual(path, corpus="beta"):
    """The two corpora's manifest with no visual_features on any row of ``corpus``."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[table["corpus"] == corpus, "visual_features"] = ""
    table.to_csv(path, index=False)
    return path


def feature_set(path, tmp_path, on_incomplete="error"):
    return build_manifest_features(path, DataConfig(**FEATURES, on_incomplete=on_incomplete), FeaturesConfig(workers=1),
                                   FeatureCache(tmp_path / "cache"), progress=False)


def test_a_corpus_without_a_modality_has_it_absent_on_its_rows_and_says_so(tmp_path, caplog):
    path = without_visual(two_corpora(tmp_path))
    with caplog.at_level(logging.INFO):
        fs = feature_set(path, tmp_path)
    alpha = fs.meta["corpus"].to_numpy() == "alpha"
    assert len(fs.meta) == 84 and not fs.skipped  # every row of both corpora, none incomplete
    assert set(fs.presence) == {"visual"} and (fs.presence["visual"] == alpha).all()
    assert fs.present("audio").all() and fs.absent_modalities == {"beta": ["visual"]}
    assert (fs.features["visual"][~alpha] == 0).all() and (fs.features["visual"][alpha] != 0).any()
    assert "corpus beta has no visual: its rows train the audio branch only" in caplog.text


def test_an_empty_cell_in_a_corpus_that_has_the_modality_is_still_a_problem(tmp_path):
    path = without_visual(two_corpora(tmp_path))
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    line = int(np.flatnonzero(table["corpus"] == "alpha")[3]) + 2
    table.loc[line - 2, "visual_features"] = ""
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"1 of 84 takes are incomplete:\n  line {line} .*column 'visual_features': empty"):
        feature_set(path, tmp_path)
    fs = feature_set(path, tmp_path, on_incomplete="skip")
    assert len(fs.meta) == 83 and fs.presence["visual"].sum() == 35


def test_a_corpus_with_none_of_the_modalities_stops(tmp_path):
    path = without_visual(two_corpora(tmp_path))
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[table["corpus"] == "beta", "audio_features"] = ""
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match="corpus 'beta' has none of the columns the config reads"):
        feature_set(path, tmp_path)
    # unless a modality is looked up by key (a transcript column, a feature table's row), which every row has
    manifest = read_manifest(path, ["audio_features", "visual_features"], keyed=True)
    assert {c: sorted(v) for c, v in manifest.absent.items()} == {"audio_features": ["beta"], "visual_features": ["beta"]}


def model_and_batch(tmp_path, fusion="average", loss="cross_entropy"):
    path = without_visual(two_corpora(tmp_path))
    fs = feature_set(path, tmp_path)
    config = config_from_dict(feature_manifest_config(path, **{
        "model.encoders.audio.params": {"hidden": [8, 8], "dropout": 0.0},
        "model.encoders.visual.params": {"hidden": [8, 8], "dropout": 0.0}, "model.fusion": {"name": fusion},
        "loss": {"name": loss}}))
    torch.manual_seed(0)
    model = create_model(config.model, fs.input_dims, fs.sequence, len(fs.class_names))
    rows = np.r_[0:10, 50:60]  # 10 rows of alpha (audio + visual), 10 of beta (audio only)
    data = TensorData({m: v[rows] for m, v in fs.features.items()}, fs.meta["label"].to_numpy()[rows],
                      class_mask=fs.class_mask[rows], presence={m: p[rows] for m, p in fs.presence.items()})
    assert data.presence["visual"].tolist() == [True] * 10 + [False] * 10
    return model, data


def visual_gradient(model, batch, loss) -> list[torch.Tensor]:
    model.zero_grad()
    output = model(batch.inputs, batch.lengths, **batch.model_kwargs)
    loss(restrict_classes(output, batch.class_mask), batch.target, 5).total.backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.encoders["visual"].parameters()]


@pytest.mark.parametrize("name,params", [("cross_entropy", {}), ("mars", {"switch_epoch": 0, "gamma": 2.0, "normalize": True}),
                                         ("focal", {}), ("multiplication", {})])
def test_a_branch_gets_no_gradient_from_a_sample_without_its_modality(tmp_path, name, params):
    """With the audio-only rows in the batch or without them, the visual encoder's gradient is the same (its term is
    a mean over the rows that have faces, and BatchNorm sees those rows only), and equals the gradient of that mean
    written out by hand; the audio-only rows give it exactly zero. Multiplication's visual weights read the audio
    branch, whose BatchNorm statistics change with the batch: compared in eval mode."""
    model, data = model_and_batch(tmp_path)
    model.train(name != "multiplication")
    loss = LOSSES.create(name, params, modalities=["audio", "visual"])
    both, alpha_only, beta_only = (data.batch(torch.tensor(r)) for r in (range(20), range(10), range(10, 20)))
    with_beta, without = visual_gradient(model, both, loss), visual_gradient(model, alpha_only, loss)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(with_beta, without))
    assert any(g.abs().sum() > 0 for g in with_beta)
    assert all(torch.equal(g, torch.zeros_like(g)) for g in visual_gradient(model, beta_only, loss))
    model.zero_grad()  # in the mixed batch, what the audio-only rows give out: nothing reaches the visual encoder
    out = model(both.inputs, both.lengths, **both.model_kwargs)
    (out.branch_logits["visual"][10:].sum() + out.probs[10:].sum() + out.features["visual"][10:].sum()).backward()
    assert all(p.grad is None or torch.equal(p.grad, torch.zeros_like(p)) for p in model.encoders["visual"].parameters())
    if name == "cross_entropy":  # by hand: mean over the 10 rows with faces of the visual branch's cross-entropy
        model.zero_grad()
        out = model(alpha_only.inputs, alpha_only.lengths)
        z = out.branch_logits["visual"].masked_fill(~alpha_only.class_mask, torch.finfo(torch.float32).min)
        torch.nn.functional.cross_entropy(z, alpha_only.target).backward()
        assert all(torch.allclose(p.grad, g, atol=1e-6) for p, g in zip(model.encoders["visual"].parameters(), with_beta))


def test_a_branch_with_one_row_of_its_modality_sits_a_training_batch_out(tmp_path):
    """BatchNorm cannot normalise one row: in training, a branch with a single row of its modality in the batch sits
    it out (zeros, no row present); in evaluation that row is answered by both branches, and a batch without any row
    of the modality (scored in batches of 10 here) gives the branch's scores where it has them."""
    model, data = model_and_batch(tmp_path)
    batch = data.batch(torch.arange(9, 20))
    out = model.train()(batch.inputs, batch.lengths, **batch.model_kwargs)
    assert not out.presence["visual"].any() and not out.branch_logits["visual"].any()
    assert torch.allclose(out.probs, out.branch_logits["audio"].softmax(-1))
    out = model.eval()(batch.inputs, batch.lengths, **batch.model_kwargs)
    assert out.presence["visual"].tolist() == [True] + [False] * 10
    whole, batched = predict(model, data, batch_size=20), predict(model, data, batch_size=10)
    assert np.allclose(whole.probs, batched.probs, atol=1e-6) and batched.presence["visual"].sum() == 10
    assert np.allclose(whole.branch_probs["visual"][:10], batched.branch_probs["visual"][:10], atol=1e-6)
    assert classification_metrics(batched, 5)["accuracy/visual"] == pytest.approx(
        float((batched.branch_probs["visual"][:10].argmax(1) == batched.target[:10]).mean()))


def test_the_fused_answer_of_an_audio_only_sample_is_its_audio_branch(tmp_path):
    model, data = model_and_batch(tmp_path)
    model.eval()
    batch = data.batch(torch.arange(20))
    out = model(batch.inputs, batch.lengths, **batch.model_kwargs)
    audio = out.branch_logits["audio"].softmax(-1)
    visual = out.branch_logits["visual"].softmax(-1)
    assert torch.allclose(out.probs[10:], audio[10:], atol=1e-6)
    assert torch.allclose(out.probs[:10], (audio[:10] + visual[:10]) / 2, atol=1e-6)
    assert out.presence["visual"].tolist() == [True] * 10 + [False] * 10


def test_a_feature_level_fusion_reads_the_mean_and_a_model_level_one_stops(tmp_path):
    model, data = model_and_batch(tmp_path, "concat", "fused_cross_entropy")
    audio_only = data.batch(torch.arange(10, 20))  # a batch without faces: the visual input at its mean
    assert model(audio_only.inputs, audio_only.lengths, **audio_only.model_kwargs).fused_logits.shape == (10, 5)
    batch = data.batch(torch.arange(20))
    out = model(batch.inputs, batch.lengths, **batch.model_kwargs)
    assert out.fused_logits.shape == (20, 5) and torch.isfinite(out.fused_logits).all()
    assert out.presence["visual"].tolist() == [True] * 10 + [False] * 10  # the probe is trained on rows with faces
    terms = LOSSES.create("fused_cross_entropy", {}, modalities=["audio", "visual"])(out, batch.target, 0).terms
    probe = torch.nn.functional.cross_entropy(out.branch_logits["visual"][:10], batch.target[:10])
    assert terms["probe_ce/visual"] == pytest.approx(probe.item(), rel=1e-6)
    path = without_visual(two_corpora(tmp_path / "run"))
    config = config_from_dict(feature_manifest_config(path, **{"model.fusion": {"name": "mmtm"}, "protocol.n_folds": 2}))
    with pytest.raises(ConfigError, match="corpus 'beta' has no visual: fusion 'mmtm'"):
        run_cross_validation(config, path, tmp_path / "out", tmp_path / "cache", progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("speaker_norm", [{"speaker_norm": "none"}, {"speaker_norm": "inductive", "adapt_clips": 2}])
def test_a_cross_validation_trains_on_a_corpus_without_faces(tmp_path, speaker_norm):
    """Audio + visual on alpha (faces) and beta (none): every clip scored, per-corpus figures, the visual branch and the
    linear peer's visual model scored on alpha's clips only."""
    path = without_visual(two_corpora(tmp_path))
    config = config_from_dict(feature_manifest_config(path, **{"protocol.n_folds": 2, "protocol.linear_peer": True,
                                                               "loss": {"name": "mars", "params": {"switch_epoch": 2}},
                                                               "features": {**speaker_norm, "workers": 1}}))
    summary = run_cross_validation(config, path, tmp_path / "run", tmp_path / "cache", progress=False)
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv", keep_default_na=False)
    assert set(summary["per_corpus"]) == {"alpha", "beta"}
    assert summary["n_clips"] == len(predictions) and set(predictions["corpus"]) == {"alpha", "beta"}
    beta = predictions["corpus"] == "beta"
    assert (predictions.loc[beta, "pred_visual"] == "").all() and (predictions.loc[~beta, "pred_visual"] != "").all()
    for result in summary["folds"]:
        fold = predictions[predictions["fold"] == result["fold"]]
        scored = fold[fold["corpus"] == "alpha"]
        assert result["modality_accuracy"]["visual"] == pytest.approx((scored["pred_visual"] == scored["label"]).mean())
    peer = summary["linear_peer"]
    assert np.isfinite(peer["per_modality"]["visual"]["pooled_accuracy"])
    assert np.isfinite(json.loads((tmp_path / "run" / "results.json").read_text())["accuracy_mean"])
    if speaker_norm["speaker_norm"] == "inductive":  # scored again with the run's own k: the run's own answers
        again = predictions_at_k(tmp_path / "run", 2, path, tmp_path / "cache").set_index("clip")
        names = np.asarray(json.loads((tmp_path / "run" / "data_fingerprint.json").read_text())["class_names"])
        assert (names[again.loc[predictions["clip"], "pred"]] == predictions["pred"].to_numpy()).all()


@requires_shared_data()
@pytest.mark.slow
def test_real_ravdess_faces_beside_nemo_speech(tmp_path):
    """Real files: RAVDESS clips with audio and OpenFace action units, nEMO clips with audio only; nEMO's visual is
    absent (zeros before standardisation), RAVDESS's is its clip's AU means, and the fused answer of a nEMO clip is
    its audio branch's."""
    aus = pd.read_csv(SHARED_DATA / "ravdess" / "openface_au_clip_means.csv")
    aus = aus[aus["actor"].isin([1, 2]) & aus["emotion"].isin([1, 5])].groupby(["actor", "emotion"]).head(3)
    rows = []
    (tmp_path / "au").mkdir()
    for _, clip in aus.iterrows():
        np.save(tmp_path / "au" / f"{clip['video_stem']}.npy", clip[AU_NAMES].to_numpy(np.float32))
        audio = SHARED_DATA / "ravdess" / "audio16k" / clip["audio_file"].replace(".wav", ".flac")
        rows.append({"id": clip["video_stem"], "corpus": "ravdess", "speaker": clip["actor"],
                     "label": {1: "neutral", 5: "angry"}[clip["emotion"]], "audio": audio,
                     "visual_features": f"au/{clip['video_stem']}.npy"})
    nemo = pd.read_csv(SHARED_DATA / "nemo" / "data.tsv", sep="\t")
    nemo = nemo.assign(speaker_id=nemo["speaker_id"].str.strip())
    nemo = nemo[nemo["speaker_id"].isin(["EB0", "WR0"]) & nemo["emotion"].isin(["anger", "neutral", "sadness"])]
    for _, clip in nemo.groupby(["speaker_id", "emotion"]).head(2).iterrows():
        rows.append({"id": clip["file_id"].removesuffix(".flac"), "corpus": "nemo", "speaker": clip["speaker_id"],
                     "label": {"anger": "angry", "neutral": "neutral", "sadness": "sad"}[clip["emotion"]],
                     "audio": SHARED_DATA / "nemo" / "samples" / clip["file_id"], "visual_features": ""})
    pd.DataFrame(rows).to_csv(tmp_path / "both.csv", index=False)
    data = DataConfig(dataset="manifest", audio_source="media", visual={"kind": "features"})
    fs = build_manifest_features(tmp_path / "both.csv", data, FeaturesConfig(workers=1),
                                 FeatureCache(tmp_path / "cache"), progress=False)
    ravdess = fs.meta["corpus"].to_numpy() == "ravdess"
    assert ravdess.sum() == 12 and (~ravdess).sum() == 12 and (fs.presence["visual"] == ravdess).all()
    assert np.allclose(fs.features["visual"][ravdess], aus.set_index("video_stem").loc[fs.meta["clip"][ravdess], AU_NAMES])
    assert (fs.features["visual"][~ravdess] == 0).all() and all(len(a) > 10 for a in fs.features["audio"])
    config = config_from_dict(feature_manifest_config(tmp_path / "both.csv", **{"model.encoders.audio": {"name": "cnn1d"}}))
    model = create_model(config.model, fs.input_dims, fs.sequence, len(fs.class_names)).eval()
    data = TensorData(fs.features, fs.meta["label"].to_numpy().copy(), presence=fs.presence)
    batch = data.batch(torch.arange(len(fs.meta)))
    out = model(batch.inputs, batch.lengths, **batch.model_kwargs)
    assert torch.allclose(out.probs[~ravdess], out.branch_logits["audio"][~ravdess].softmax(-1), atol=1e-6)


def test_a_training_batch_where_every_branch_sits_out_is_skipped(tmp_path):
    """Two rows, each lacking another modality: in training both branches sit the batch out (BatchNorm needs two
    rows); the model answers zeros with no row present and the loss has nothing to learn from (the trainer skips it)."""
    model, data = model_and_batch(tmp_path)
    batch = data.batch(torch.tensor([0, 10]))
    batch.presence["audio"] = torch.tensor([False, True])
    out = model.train()(batch.inputs, batch.lengths, **batch.model_kwargs)
    assert not out.presence["audio"].any() and not out.presence["visual"].any()
    loss = LOSSES.create("cross_entropy", {}, modalities=["audio", "visual"])
    assert not loss(restrict_classes(out, batch.class_mask), batch.target, 0).total.requires_grad
