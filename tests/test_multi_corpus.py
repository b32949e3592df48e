"""Several corpora in one manifest (a corpus column): speakers per corpus, the union of the classes with a mask per
corpus, losses that never push a sample towards or away from a class its corpus lacks (checked by hand), predictions
among a corpus's classes, folds and results per corpus, and a manifest of one corpus as before."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.cli import main
from emofuse.config.loading import config_from_dict
from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.datasets.manifest_set import build_manifest_features
from emofuse.features.cache import FeatureCache
from emofuse.losses import LOSSES
from emofuse.losses.base import restrict_classes
from emofuse.models.multimodal import ModelOutput
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.protocol.folds import dataset_folds

from conftest import feature_manifest_config, make_feature_manifest

LABELS = {"alpha": ("angry", "happy", "neutral"), "beta": ("happy", "neutral", "sad", "surprised")}
FEATURES = {"dataset": "manifest", "audio_source": "features", "visual": {"kind": "features"}}


def two_corpora(root: Path, speakers=("spk1", "spk2", "spk3", "spk4")) -> Path:
    """Manifests of two corpora of the same speaker names and different label sets, concatenated with a corpus
    column (ids prefixed: one id per row)."""
    tables = []
    for seed, (corpus, labels) in enumerate(LABELS.items()):
        path = make_feature_manifest(root / corpus, speakers=speakers, labels=labels, per_label=3, seed=seed)
        table = pd.read_csv(path, dtype=str)
        for column in ("audio_features", "visual_features"):
            table[column] = corpus + "/" + table[column]
        tables.append(table.assign(id=corpus + "_" + table["id"], corpus=corpus))
    pd.concat(tables).to_csv(root / "both.csv", index=False)
    return root / "both.csv"


def feature_set(path, tmp_path):
    return build_manifest_features(path, DataConfig(**FEATURES), FeaturesConfig(workers=1),
                                   FeatureCache(tmp_path / "cache"), progress=False)


def test_a_manifest_of_two_corpora_has_speakers_per_corpus_the_union_of_classes_and_a_mask_each(tmp_path):
    fs = feature_set(two_corpora(tmp_path), tmp_path)
    assert fs.class_names == ("neutral", "happy", "sad", "angry", "surprised")
    assert fs.corpus_classes == {"alpha": ("neutral", "happy", "angry"), "beta": ("neutral", "happy", "sad", "surprised")}
    assert set(fs.meta["actor"]) == {f"{c}/spk{i}" for c in LABELS for i in range(1, 5)}
    mask = fs.class_mask
    assert mask.shape == (len(fs.meta), 5)
    alpha = fs.meta["corpus"].to_numpy() == "alpha"
    assert (mask[alpha] == [True, True, False, True, False]).all() and (mask[~alpha] == [True, True, True, False, True]).all()


def test_a_manifest_of_one_corpus_reads_as_before(tmp_path):
    """A corpus column of one value (what `emofuse manifest` writes for one corpus) changes nothing."""
    path = make_feature_manifest(tmp_path)
    plain = feature_set(path, tmp_path)
    pd.read_csv(path, dtype=str).assign(corpus="nemo").to_csv(tmp_path / "one.csv", index=False)
    one = feature_set(tmp_path / "one.csv", tmp_path)
    assert "corpus" not in one.meta and one.class_mask is None and one.corpus_classes is None
    pd.testing.assert_frame_equal(one.meta.drop(columns="line"), plain.meta.drop(columns="line"))
    assert one.fingerprint == plain.fingerprint


def test_an_empty_corpus_cell_is_reported_with_its_line(tmp_path):
    path = two_corpora(tmp_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[2, "corpus"] = ""
    table.to_csv(path, index=False)
    with pytest.raises(Exception, match=r"line 4 .*column 'corpus': empty"):
        feature_set(path, tmp_path)


def test_a_corpus_of_one_class_is_refused(tmp_path):
    path = two_corpora(tmp_path)
    table = pd.read_csv(path, dtype=str)
    table = table[(table["corpus"] == "beta") | (table["label"] == "happy")]
    table.to_csv(path, index=False)
    with pytest.raises(Exception, match="corpus 'alpha' has one class \\('happy'\\) .* at least 2"):
        feature_set(path, tmp_path)


def test_folds_test_and_validate_speakers_of_every_corpus(tmp_path):
    meta = pd.DataFrame({"actor": [f"{c}/spk{i}" for c in ("a", "b") for i in range(1, 7)],
                         "corpus": [c for c in ("a", "b") for _ in range(6)]})
    folds = dataset_folds(meta, 3, 0.25, seed=0)
    for fold in folds:
        for part in (fold.test_actors, fold.val_actors, fold.train_actors):
            assert {s.split("/")[0] for s in part} == {"a", "b"}, fold
    assert [f.test_actors for f in folds] == [("a/spk1", "a/spk2", "b/spk1", "b/spk2"),
                                              ("a/spk3", "a/spk4", "b/spk3", "b/spk4"),
                                              ("a/spk5", "a/spk6", "b/spk5", "b/spk6")]
    # corpora of 5 and 4 speakers: contiguous groups of each, the larger ones on different folds: 3 speakers each
    uneven = meta[~meta["actor"].isin(["a/spk6", "b/spk5", "b/spk6"])]
    assert [f.test_actors for f in dataset_folds(uneven, 3, 0.25, seed=0)] == [("a/spk1", "a/spk2", "b/spk3"),
                                                                               ("a/spk3", "a/spk4", "b/spk4"),
                                                                               ("a/spk5", "b/spk1", "b/spk2")]
    # without a corpus column the same speakers make today's contiguous folds of the sorted ids
    plain = dataset_folds(meta.drop(columns="corpus"), 3, 0.25, seed=0)
    assert [f.test_actors for f in plain] == [("a/spk1", "a/spk2", "a/spk3", "a/spk4"),
                                              ("a/spk5", "a/spk6", "b/spk1", "b/spk2"),
                                              ("b/spk3", "b/spk4", "b/spk5", "b/spk6")]


def output(n_classes=4, fused=True, seed=0) -> ModelOutput:
    gen = torch.Generator().manual_seed(seed)
    branch = {m: torch.randn(2, n_classes, generator=gen).requires_grad_() for m in ("audio", "visual")}
    fused_logits = torch.randn(2, n_classes, generator=gen).requires_grad_() if fused else None
    return ModelOutput(branch_logits=branch, probs=torch.full((2, n_classes), 1 / n_classes), fused_logits=fused_logits)


@pytest.mark.parametrize("name, params", [("cross_entropy", {}), ("mars", {"switch_epoch": 0, "gamma": 2.0}),
                                          ("fused_cross_entropy", {}), ("focal", {}), ("m3er", {}),
                                          ("multiplication", {})])
def test_a_class_absent_from_a_samples_corpus_gets_no_gradient_from_it(name, params):
    """Sample 0's corpus lacks class 3: the loss's gradient with respect to its class-3 logit, fused and per branch,
    is exactly 0 with the mask and not without it; sample 1 (every class) is untouched by the mask."""
    loss = LOSSES.create(name, params, modalities=["audio", "visual"])
    target = torch.tensor([0, 3])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    grads = {}
    for masked in (False, True):
        out = output()
        loss(restrict_classes(out, mask if masked else None), target, epoch=1).total.backward()
        grads[masked] = {**{m: z.grad for m, z in out.branch_logits.items()}, "fused": out.fused_logits.grad}
    trained = [k for k, g in grads[False].items() if g is not None]
    assert set(trained) >= {"audio", "visual"}
    for k in trained:
        assert grads[False][k][0, 3] != 0
        assert grads[True][k][0, 3] == 0
        assert (grads[True][k][0, :3] != 0).all() and (grads[True][k][1] != 0).all()


def test_mars_weights_come_from_the_probabilities_over_the_corpus_classes():
    """Stage 2's weight exp(-gamma (1 - p_m[y])) takes p_m over the sample's corpus's classes: by hand."""
    loss = LOSSES.create("mars", {"switch_epoch": 0, "gamma": 2.0}, modalities=["audio", "visual"])
    out = output(fused=False)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    target = torch.tensor([1, 3])
    terms = loss(restrict_classes(out, mask), target, epoch=1).terms
    for m, z in out.branch_logits.items():
        z = z.detach()
        p0 = z[0, :3].softmax(-1)[1]  # by hand: the softmax over sample 0's three classes
        p1 = z[1].softmax(-1)[3]
        expected = (torch.exp(-2.0 * (1 - p0)) + torch.exp(-2.0 * (1 - p1))) / 2
        assert terms[f"weight/{m}"] == pytest.approx(float(expected), rel=1e-6)


def test_the_trainer_gives_every_loss_the_masked_output(tmp_path):
    """The mask travels with each batch to the loss: a loss that records what it is given sees the absent classes'
    logits at the lowest value."""
    from emofuse.config.schema import TrainConfig
    from emofuse.losses.base import Loss, LossOutput
    from emofuse.training.batches import TensorData
    from emofuse.training.trainer import Trainer
    from torch import nn

    seen = []

    class Recording(Loss):
        def forward(self, out, target, epoch):
            seen.append((out.branch_logits["audio"].detach(), target))
            return LossOutput(nn.functional.cross_entropy(out.branch_logits["audio"], target))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 4)

        def forward(self, inputs, lengths):
            z = self.linear(inputs["audio"])
            return ModelOutput(branch_logits={"audio": z}, probs=z.softmax(-1))

    # rows 0-3: a corpus without class 2; rows 4-7: of class 2, whose corpus has every class
    mask = np.array([[True, True, False, True]] * 4 + [[True] * 4] * 4)
    data = TensorData({"audio": np.random.default_rng(0).normal(size=(8, 3))}, np.array([0, 1, 3, 0, 2, 2, 2, 2]),
                      class_mask=mask)
    trainer = Trainer(TrainConfig(epochs=1, batch_size=8, device="cpu"), lambda model, data: {"accuracy": 0.0})
    trainer.fit(Model(), Recording(None, ["audio"]), data, data)
    ((logits, target),) = seen
    lowest = logits == torch.finfo(logits.dtype).min
    assert lowest[target != 2].tolist() == [[False, False, True, False]] * 4
    assert not lowest[target == 2].any()


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    path = two_corpora(root, speakers=("spk1", "spk2", "spk3", "spk4", "spk5", "spk6"))
    tree = feature_manifest_config(path, **{"train.epochs": 3, "protocol.n_folds": 3})
    run = root / "run"
    summary = run_cross_validation(config_from_dict(tree), path, run, root / "cache", progress=False)
    return run, summary


def test_cv_on_two_corpora_reports_each_on_its_own_classes(multi_run):
    run, summary = multi_run
    results = json.loads((run / "results.json").read_text())
    assert results["per_corpus"].keys() == {"alpha", "beta"}
    assert results["per_corpus"]["alpha"]["classes"] == ["neutral", "happy", "angry"]
    assert results["per_corpus"]["beta"]["classes"] == ["neutral", "happy", "sad", "surprised"]
    assert results["per_corpus"]["alpha"]["n"] == 6 * 3 * 3 and results["per_corpus"]["beta"]["n"] == 6 * 4 * 3
    predictions = pd.read_csv(run / "predictions.csv")
    for corpus, rows in predictions.groupby("corpus"):
        allowed = set(LABELS[corpus])
        for column in ("pred", "pred_audio", "pred_visual"):
            assert set(rows[column]) <= allowed, (corpus, column)
        absent = [f"prob_{c}" for c in results["per_corpus"]["beta"]["classes"] if c not in allowed] if corpus == "alpha" \
            else ["prob_angry"]
        assert (rows[absent] == 0).all().all()
        own = rows[rows["label"] == rows["pred"]]
        assert results["per_corpus"][corpus]["accuracy"] == pytest.approx(len(own) / len(rows))
        recall = (rows["label"] == rows["pred"]).groupby(rows["label"]).mean().mean()
        assert results["per_corpus"][corpus]["ua"] == pytest.approx(recall)
    for fold in results["folds"]:
        assert {s.split("/")[0] for s in fold["test_actors"]} == {"alpha", "beta"}
        assert {s.split("/")[0] for s in fold["val_actors"]} == {"alpha", "beta"}
        assert fold["per_corpus"].keys() == {"alpha", "beta"} and 0 <= fold["ua"] <= 1
    assert "ua_mean" in results and "pooled_ua" in results


def test_the_console_summary_shows_ua_beside_accuracy_and_each_corpus(multi_run, capsys):
    from emofuse.reporting.report import print_cv_summary

    run, summary = multi_run
    print_cv_summary(summary, run)
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "fold" in line and "accuracy" in line).split()
    assert header[header.index("accuracy") + 1] == "UA"
    alpha = summary["per_corpus"]["alpha"]
    assert f"alpha: accuracy {alpha['accuracy']:.4f}, UA {alpha['ua']:.4f} on 54 clips of 3 classes (neutral, happy, " \
           "angry)" in out


def test_the_html_report_shows_ua_and_each_corpus(multi_run):
    from emofuse.reporting.html_report import render_report

    run, summary = multi_run
    html = render_report(run)
    beta = summary["per_corpus"]["beta"]
    assert "<th>UA</th>" in html.replace(' class="num"', "")
    assert (f"<th>beta: accuracy, UA on its 4 classes (72 clips)</th>\n      <td class=\"num\">{beta['accuracy']:.4f}, "
            f"{beta['ua']:.4f}</td>") in html


def test_the_linear_peer_predicts_among_a_corpus_classes_too(multi_run):
    run, _ = multi_run
    peer = pd.concat([pd.read_csv(f) for f in sorted((run / "folds").glob("fold_*/peer_predictions.csv"))])
    corpus = peer["actor"].str.split("/").str[0]
    for name, rows in peer.groupby(corpus):
        for column in [c for c in rows if c.startswith("pred")]:
            assert set(rows[column]) <= set(LABELS[name]), (name, column)


def test_every_manifest_names_its_corpus(tmp_path, capsys):
    """Each layout's manifest carries a corpus column: the layout's name, a folder's name, or --corpus."""
    root = tmp_path / "mycorpus"
    for name in ("Anger/spk1_a.wav", "happiness/spk2_b.wav"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    assert main(["manifest", "folder", str(root), "--speaker-regex", r"^(spk\d+)_"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("id,corpus,speaker")
    assert main(["manifest", "folder", str(root), "--speaker-regex", r"^(spk\d+)_", "--corpus", "mine"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()[1:]]
    assert {r[1] for r in rows} == {"mine"}
    emodb = tmp_path / "emodb"
    emodb.mkdir()
    (emodb / "03a01Fa.wav").touch()
    (emodb / "08a02Wa.wav").touch()
    assert main(["manifest", "emodb", str(emodb)]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(table["corpus"]) == {"emodb"}


def test_manifest_merge_unites_columns_resolves_paths_and_names_each_corpus(tmp_path, capsys):
    """Manifests written apart (relative paths, columns of their own) merge into one that reads as two corpora; an id
    in both stops with the two files named."""
    a = make_feature_manifest(tmp_path / "alpha", speakers=("spk1", "spk2"), labels=LABELS["alpha"], per_label=2)
    b = make_feature_manifest(tmp_path / "beta", speakers=("spk1", "spk2"), labels=LABELS["beta"], per_label=2, seed=1)
    assert main(["manifest", "merge", str(a), str(b)]) == 2
    assert f"id 'spk1_happy_0' is also in {a}" in capsys.readouterr().err
    table = pd.read_csv(b, dtype=str)
    table.assign(id="b_" + table["id"], corpus="beta", sentence="x").to_csv(b, index=False)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["manifest", "merge", str(a), str(b), "--relative-to", str(out)]) == 0
    (out / "both.csv").write_text(capsys.readouterr().out)
    merged = pd.read_csv(out / "both.csv", dtype=str, keep_default_na=False)
    assert list(merged.columns[:3]) == ["id", "corpus", "speaker"] and set(merged["corpus"]) == {"manifest", "beta"}
    assert merged["audio_features"].iloc[0] == "../alpha/features/spk1_angry_0_a.npy"
    assert set(merged["sentence"]) == {"", "x"}
    fs = feature_set(out / "both.csv", tmp_path)
    assert fs.corpus_classes == {"manifest": ("neutral", "happy", "angry"), "beta": ("neutral", "happy", "sad", "surprised")}
    assert len(fs.meta) == len(merged)


def test_planted_label_noise_is_refused_on_several_corpora(tmp_path):
    """Label noise draws among all classes, which could give a sample a label its corpus lacks: refused, with why."""
    from emofuse.core.registry import ConfigError

    path = two_corpora(tmp_path)
    config = config_from_dict(feature_manifest_config(path, **{"data.label_noise": {"rate": 0.2}, "protocol.n_folds": 2}))
    with pytest.raises(ConfigError, match="data.label_noise .* several corpora"):
        run_cross_validation(config, path, tmp_path / "run", tmp_path / "cache", progress=False)
