"""Emotion in written words: MELD (classes, the official split) through the manifest and cv with the packaged sentence
encoder, EmoBank (valence, arousal, dominance) through the EMI recipe; readers on the real files, small runs end to end."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

from conftest import REPO, SHARED_DATA
from emofuse.cli import main
from emofuse.core.errors import DataError
from emofuse.data.corpora import CORPORA, write_manifest
from emofuse.data.corpora.meld import START
from emofuse.features.cache import FeatureCache
from emofuse.metrics.classification import weighted_f1
from emofuse.tasks.emi.feature_dir import load_feature_dir
from emofuse.tasks.emi.text_table import read_text_table, write_text_features

MELD = SHARED_DATA / "text" / "meld"
EMOBANK = SHARED_DATA / "text" / "emobank" / "emobank.csv"
requires_text = pytest.mark.skipif(not MELD.is_dir() or not EMOBANK.is_file(), reason="../shared/data/text is absent")


@pytest.mark.slow
@requires_text
def test_meld_reads_the_official_split_with_dialogues_as_groups_and_the_previous_utterance_as_context():
    rows = pd.DataFrame(CORPORA.get("meld")(MELD).rows)
    assert len(rows) == 13708 and rows["id"].is_unique
    assert rows["split"].value_counts().to_dict() == {"train": 9989, "test": 2610, "val": 1109}
    assert rows.groupby("speaker")["split"].nunique().max() == 1  # a dialogue in one part only
    assert set(rows["corpus_label"]) == {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}
    assert set(rows["label"]) == {"angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"}
    assert (rows["corpus_label"] == "neutral").sum() == 4710 + 470 + 1256
    first, second = rows[rows["speaker"] == "dev_dia0"].iloc[:2].to_dict("records")
    assert first["context"] == START and first["character"] == "Phoebe"
    assert second["context"] == f"Phoebe: {first['transcript']}"
    assert (rows["context"] == START).sum() == rows["speaker"].nunique()  # one dialogue start each


def test_meld_names_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match="no train_sent_emo.csv"):
        CORPORA.get("meld")(tmp_path)
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
    for part in ("train", "dev", "test"):
        (tmp_path / f"{part}_sent_emo.csv").write_text(header + "1,Hi.,Ross,neutral,neutral,0,0\n")
    (tmp_path / "dev_sent_emo.csv").write_text(header + "1,Hi.,Ross,bored,neutral,0,0\n")
    with pytest.raises(DataError, match="dev_sent_emo.csv line 2.*'bored' is not one of MELD's"):
        CORPORA.get("meld")(tmp_path)
    (tmp_path / "test_sent_emo.csv").write_text("Utterance,Emotion\nHi.,joy\n")
    (tmp_path / "dev_sent_emo.csv").write_text(header + "1,Hi.,Ross,joy,positive,0,0\n")
    with pytest.raises(DataError, match="test_sent_emo.csv.*no column 'Speaker'"):
        CORPORA.get("meld")(tmp_path)


@requires_text
def test_emobank_reads_its_official_split_with_dev_as_val():
    table = read_text_table(EMOBANK, "text", ["V", "A", "D"])
    assert len(table) == 10062 and table["split"].value_counts().to_dict() == {"train": 8062, "val": 1000, "test": 1000}
    assert table["text"].str.len().min() > 0  # a sentence reading "NA" stays text
    values = table[["V", "A", "D"]].astype(float)
    assert values.min().min() >= 1 and values.max().max() <= 5


def test_a_text_table_names_the_line_of_a_bad_split_or_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,split,V,A,D,text\na,train,3,3,3,Fine.\nb,holdout,3,3,3,Well.\n")
    with pytest.raises(DataError, match="t.csv line 3.*'holdout' is not train"):
        read_text_table(path, "text", ["V", "A", "D"])
    path.write_text("id,split,V,A,D,text\na,train,3,x,3,Fine.\n")
    with pytest.raises(DataError, match="t.csv line 2.*target A 'x' is not a number"):
        read_text_table(path, "text", ["V", "A", "D"])


@pytest.mark.slow
def test_token_states_mean_pooled_are_the_sentence_vector_and_batches_change_nothing():
    from emofuse.features import EXTRACTORS

    texts = ["Oh my God, he's lost it.", "What?", "You must've had your hands full with the move to the new system."]
    sentences = EXTRACTORS.create("transcript", {}).embed_texts(texts)
    tokens = EXTRACTORS.create("transcript", {"output": "tokens"}).embed_texts(texts)
    assert [t.shape[1] for t in tokens] == [384] * 3 and len({t.shape[0] for t in tokens}) == 3  # own lengths, no padding
    for sentence, states in zip(sentences, tokens):
        pooled = states.mean(0)
        np.testing.assert_allclose(pooled / np.linalg.norm(pooled), sentence, atol=1e-5)  # MiniLM: mean, unit length
    np.testing.assert_allclose(EXTRACTORS.create("transcript", {}).embed(texts[1]), sentences[1], atol=1e-5)


def test_token_states_have_a_cache_key_of_their_own_and_sentence_vectors_keep_theirs():
    from emofuse.features import EXTRACTORS

    sentence, tokens = (EXTRACTORS.create("transcript", {"output": o}) for o in ("sentence", "tokens"))
    assert "output" not in sentence.key_params()  # the key caches written before the option have
    assert tokens.key_params()["output"] == "tokens" and tokens.settings_key() != sentence.settings_key()


def test_weighted_f1_is_sklearns():
    rng = np.random.default_rng(0)
    probs, target = rng.random((300, 7)), rng.integers(0, 6, 300)  # class 6 never a target, sometimes predicted
    expected = f1_score(target, probs.argmax(1), average="weighted")
    assert weighted_f1(probs, torch.as_tensor(target), 7) == pytest.approx(expected, abs=1e-12)


@pytest.mark.slow
@requires_text
def test_emobank_sentences_embedded_once_then_read_from_the_cache_through_the_emi_recipe(tmp_path, capsys):
    table = pd.read_csv(EMOBANK, dtype=str, keep_default_na=False)
    small = pd.concat([table[table["split"] == s].head(n) for s, n in (("train", 240), ("dev", 80), ("test", 80))])
    small.to_csv(tmp_path / "emobank.csv", index=False)
    cache = FeatureCache(tmp_path / "cache")
    first = write_text_features(tmp_path / "emobank.csv", tmp_path / "features", cache, progress=False)
    assert first["rows"] == {"train": 240, "val": 80, "test": 80} and first["shape"] == [384]
    entries = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == small["text"].nunique()
    mtimes = [p.stat().st_mtime_ns for p in entries]
    assert main(["text-features", str(tmp_path / "emobank.csv"), "--out", str(tmp_path / "again"),
                 "--cache", str(tmp_path / "cache"), "--no-progress"]) == 0
    assert [p.stat().st_mtime_ns for p in entries] == mtimes  # nothing encoded again
    data = load_feature_dir(tmp_path / "again", ["text"], ["V", "A", "D"])
    np.testing.assert_array_equal(np.stack([a[0] for a in data.features["text"]]),
                                  np.stack(list(np.load(tmp_path / "features" / "text.npz").values())))

    out = tmp_path / "run"
    assert main(["train", str(REPO / "configs" / "emi_emobank.yaml"), "--data", str(tmp_path / "features"),
                 "--out", str(out), "--set", "train.epochs=4"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["test"]["pearson"]) == {"V", "A", "D"} and results["test"]["n"] == 80
    assert results["test"]["pearson"]["V"] > 0.2  # valence is in the words, even from 240 sentences
    assert set(results["linear_peer"]["pearson_mean"]["test"]) == {"text"}


@pytest.mark.slow
@requires_text
def test_meld_text_and_context_through_cv_on_the_official_split_beside_the_linear_peer(tmp_path):
    manifest = tmp_path / "meld.csv"
    (tmp_path / "full.csv").write_text(write_manifest(CORPORA.get("meld")(MELD), None, "meld"))
    rows = pd.read_csv(tmp_path / "full.csv", dtype=str, keep_default_na=False)
    rows = rows[rows["corpus_label"].isin(["neutral", "joy", "anger"])]
    rows = pd.concat([rows[rows["split"] == s].head(n) for s, n in (("train", 240), ("val", 60), ("test", 60))])
    rows.to_csv(manifest, index=False)
    out = tmp_path / "run"
    assert main(["cv", "meld_text", "--data", str(manifest), "--out", str(out), "--cache", str(tmp_path / "cache"),
                 "--set", "train.epochs=3", "--no-progress"]) == 0
    (result,) = [json.loads(p.read_text()) for p in (out / "folds").glob("fold_*/result.json")]
    assert result["n_test"] == 60 and "weighted_f1" in result and "weighted_f1" in result["val_at_best"]
    assert set(result["linear_peer"]["accuracy"]) == {"text", "context", "concatenation", "late_average"}
    predictions = pd.read_csv(out / "folds" / "fold_1" / "predictions.csv")
    assert predictions["clip"].str.startswith("test_").all()  # scored on MELD's test part only
