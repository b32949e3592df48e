"""Bundled models: the card is complete and matches the shipped files, predict needs no run directory, and a
retrain from ../shared/data gives the shipped model back."""

import json

import pytest

import emofuse
from emofuse import zoo
from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.core.registry import ConfigError
from conftest import SHARED_DATA

CREMA_D = SHARED_DATA / "crema-d"
RAVDESS = SHARED_DATA / "ravdess"
CORPORA = {"ravdess": RAVDESS / "audio16k", "nemo": SHARED_DATA / "nemo"}  # as the cards' rebuild commands name them
needs_shared = pytest.mark.skipif(not RAVDESS.is_dir(), reason="needs ../shared/data")
TOLERANCE = 0.02  # largest probability difference a retrain on another torch build or thread count may show


def test_the_default_model_is_bundled_with_a_complete_card():
    assert zoo.DEFAULT in zoo.names()
    card = zoo.card(zoo.DEFAULT)
    for key in ("classes", "modalities", "features", "training_data", "estimates", "limits", "reproduce",
                "weights_sha256", "epoch"):
        assert key in card, key
    assert card["training_data"]["licence"] == "CC BY-NC-SA 4.0"
    assert {"k=0", "k=5", "k=10"} <= set(card["estimates"])
    speakers = {"ravdess": 24, "nemo": 9}
    corpora = card["training_data"]["corpora"]
    for key in ("k=0", "k=5", "k=10"):
        e = card["estimates"][key]
        assert e["interval"][0] <= e["accuracy"] <= e["interval"][1]
        assert e["n_speakers"] == sum(speakers[c] for c in corpora)
        for corpus, per in e.get("per_corpus", {}).items():
            assert per["interval"][0] <= per["accuracy"] <= per["interval"][1] and per["n_speakers"] == speakers[corpus]
    for row in card.get("leave_one_corpus_out") or []:  # a corpus never heard: every one of its speakers scored
        assert row["held_out"] not in row["trained_on"] and row["k=0"]["n_speakers"] == speakers[row["held_out"]]
    conditions = card.get("recording_conditions")
    if conditions:  # the cross-validation's test speakers again under each fixed condition, clean first
        assert list(conditions["scores"]) == ["clean", *conditions["conditions"]]
        for v in conditions["scores"].values():
            assert v["accuracy_ci"][0] <= v["accuracy"] <= v["accuracy_ci"][1]
    directory = zoo.model_dir(zoo.DEFAULT)
    assert zoo.weights_sha256(directory) == card["weights_sha256"]  # the card describes the shipped weights
    fingerprint = json.loads((directory / "data_fingerprint.json").read_text())
    assert fingerprint["sha256"] == card["training_data"]["data_fingerprint"]
    result = json.loads((directory / "folds" / "fold_0" / "result.json").read_text())
    assert result["final_fit"] and result["epoch"] == card["epoch"]
    assert len(result["train_actors"]) == sum(speakers[c] for c in corpora)


def test_models_command_lists_and_shows_cards(capsys):
    assert main(["models"]) == 0
    assert f"{zoo.DEFAULT} (default)" in capsys.readouterr().out
    assert main(["models", zoo.DEFAULT]) == 0
    out = capsys.readouterr().out
    assert "CC BY-NC-SA 4.0" in out and "a file on its own" in out and "rebuild: python recipes/" in out
    assert main(["models", "ravdess-speach"]) == 2
    assert "no bundled model 'ravdess-speach'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="bundled: .*ravdess-speech"):
        emofuse.load_model("nope")


@needs_shared
def test_predict_answers_without_a_run_directory(capsys):
    clip = CREMA_D / "1002_DFA_ANG_XX.mp3"
    assert main(["predict", str(clip), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    model = emofuse.load_model()
    assert entry["pred"] in model.classes and entry["modalities"] == ["audio"]
    assert sum(entry["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    again = model.predict([clip])[0]
    assert again.probs == pytest.approx(entry["probs"], abs=1e-6)
    assert main(["predict", str(clip), "--model", zoo.DEFAULT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["probs"] == entry["probs"]


@needs_shared
@pytest.mark.slow
def test_a_retrain_gives_the_shipped_model_back(tmp_path):
    """The card's rebuild, less the cross-validation that picked the epoch: the final fit at the card's epoch."""
    from emofuse.protocol.final_fit import fit_final
    from emofuse.features.cache import default_cache_dir

    from emofuse.api import locate_data
    from emofuse.data.corpora.base import corpora_manifest

    shipped = zoo.model_dir(zoo.DEFAULT)
    card = zoo.card(zoo.DEFAULT)
    config = load_config(shipped / "config.yaml")
    data = RAVDESS
    if config.data.dataset == "manifest":  # a model of several corpora: their manifest, rebuilt from the folders
        data = corpora_manifest({c: CORPORA[c] for c in card["training_data"]["corpora"]}, tmp_path / "data")
    config, data = locate_data(config, data)
    fit_final(config, data, tmp_path / "model", default_cache_dir(), epoch=card["epoch"], progress=False)
    assert json.loads((tmp_path / "model" / "data_fingerprint.json").read_text())["sha256"] == \
        card["training_data"]["data_fingerprint"]
    if zoo.weights_sha256(tmp_path / "model") == card["weights_sha256"]:
        return  # the same weights, bit for bit (same torch build and thread count)
    # Another BLAS or thread count changes the order of float sums: predictions within the card's tolerance.
    clips = sorted(CREMA_D.glob("*.mp3"))
    retrained = [p.probs for p in emofuse.load_run(tmp_path / "model").predict(clips)]
    shipped_probs = [p.probs for p in emofuse.load_model().predict(clips)]
    diff = max(abs(a[c] - b[c]) for a, b in zip(retrained, shipped_probs) for c in a)
    assert diff < TOLERANCE, f"the retrained model's probabilities differ from the shipped one's by up to {diff:.4f}"


def test_serve_and_predict_default_to_the_bundled_model(monkeypatch, tmp_path, capsys):
    import emofuse.serve

    served = []
    monkeypatch.setattr(emofuse.serve, "serve", lambda run_dir, **kw: served.append(run_dir))
    assert main(["serve"]) == 0 and served[-1] == zoo.model_dir(zoo.DEFAULT)
    assert main(["serve", "--model", zoo.DEFAULT]) == 0 and served[-1] == zoo.model_dir(zoo.DEFAULT)
    assert main(["serve", str(tmp_path), "--model", zoo.DEFAULT]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["predict"]) == 2
    assert "name the media files" in capsys.readouterr().err
