"""End to end from media: face-crop clips from video, a 3D ResNeXt trained on them in `emofuse cv`, predict and
export. The data is a RAVDESS-shaped directory made of the six real CREMA-D videos (and their audio), the same
performances under four actor ids: the model has to recognise them again on other actor ids."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO
from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.core.errors import DataError
from emofuse.data.media import decode_audio
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import build_ravdess_features
from emofuse.datasets.normalize import ChannelStandardizer, Standardizer
from emofuse.features.visual.extractors import FaceClips, FaceFeatures
from emofuse.inference.predict import Predictor
from emofuse.core.registry import ConfigError
from emofuse.training.batches import TensorData
from test_media import CREMA, requires_crema, write_video

pytestmark = requires_crema
CONFIG = REPO / "configs" / "ravdess_mars_video.yaml"
CODES = {"NEU": 1, "HAP": 3, "SAD": 4, "ANG": 5, "FEA": 6, "DIS": 7}  # CREMA-D emotion -> RAVDESS emotion code
FLV = sorted(CREMA.glob("*.flv"))
MP3 = sorted(CREMA.glob("*.mp3"))
TINY_CLIPS = ["features.visual.params.frames=8", "features.visual.params.size=32", "features.workers=1",
              "model.encoders.visual.params={blocks: [1, 1], cardinality: 4, group_width: 2, stem: 8}",
              "protocol.n_folds=2", "train.early_stopping=null", "train.batch_size=6", "train.eval_batch_size=5"]
VISUAL_ONLY = ["data.modalities=[visual]", "model.encoders={visual: {name: resnext3d, params: {blocks: [1, 1], "
               "cardinality: 4, group_width: 2, stem: 8}}}", "loss={name: cross_entropy}", "train.lr=0.003",
               "train.epochs=30", "train.hflip=0"]
BOTH = ["model.encoders.audio.params.channels=[8, 8]", "train.epochs=3", "loss.params.switch_epoch=1"]


def make_video_fixture(root: Path, actors=range(1, 5)) -> Path:
    """audio16k/Actor_XX/03-01-EE-01-01-01-XX.flac (decoded from the CREMA-D video) and video/Actor_XX/01-...flv
    (a link to it), for each of the six CREMA-D videos and each actor id."""
    for actor in actors:
        for clip in FLV:
            take = f"01-{CODES[clip.stem.split('_')[2]]:02d}-01-01-01-{actor:02d}"
            audio = root / "audio16k" / f"Actor_{actor:02d}" / f"03-{take}.flac"
            video = root / "video" / f"Actor_{actor:02d}" / f"01-{take}.flv"
            audio.parent.mkdir(parents=True, exist_ok=True)
            video.parent.mkdir(parents=True, exist_ok=True)
            sf.write(audio, decode_audio(clip, 16000), 16000)
            video.symlink_to(clip)
    return root


@pytest.fixture(scope="module")
def video_data(tmp_path_factory) -> Path:
    return make_video_fixture(tmp_path_factory.mktemp("video") / "ravdess")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("video_cache")


@pytest.fixture(scope="module")
def both_run(video_data, cache, tmp_path_factory) -> Path:
    """configs/ravdess_mars_video.yaml (MFCC CNN + 3D ResNeXt on face clips, Mars) at tiny shapes, 2 folds."""
    out = tmp_path_factory.mktemp("both") / "run"
    run_cross_validation(load_config(CONFIG, TINY_CLIPS + BOTH), video_data, out, cache, progress=False)
    return out


def test_face_clips_from_real_videos():
    extractor = FaceClips(FaceClips.Params(frames=12, size=64))
    for clip in FLV:
        crops, record = extractor.extract_file(clip)
        assert crops.dtype == np.uint8 and crops.shape[1:] == (64, 64, 3) and record["sampled"] == 12
        assert len(crops) == record["sampled_with_face"] >= 11  # a face on (nearly) every sampled frame
        assert record["detected"] >= 0.9 * record["frames"]
        assert crops.std() > 10  # image content, not padding
    again, _ = extractor.extract_file(FLV[0])
    assert np.array_equal(again, extractor.extract_file(FLV[0])[0])  # deterministic


def test_face_features_give_hog_sequences_or_vectors():
    frames, record = FaceFeatures(FaceFeatures.Params(frames=6)).extract_file(FLV[0])
    assert frames.shape == (6, 1764) and frames.dtype == np.float32 and record["frames_with_features"] == 6
    pooled, _ = FaceFeatures(FaceFeatures.Params(frames=6, pool=True)).extract_file(FLV[0])
    np.testing.assert_allclose(pooled, frames.mean(0), rtol=1e-5)


@pytest.mark.slow
def test_visual_branch_learns_from_face_clips(video_data, cache, tmp_path):
    """Trained on the six videos under two actor ids, the 3D ResNeXt recognises them under the test actors' ids."""
    out = tmp_path / "run"
    summary = run_cross_validation(load_config(CONFIG, TINY_CLIPS + VISUAL_ONLY), video_data, out, cache, progress=False)
    assert summary["accuracy_mean"] >= 0.8  # chance: 1/6
    assert summary["n_clips"] == 24 and summary["face_detection"]["videos"] == 24
    state = json.loads((out / "folds" / "fold_1" / "standardizer.json").read_text())
    assert state["inputs"]["visual"]["kind"] == "channel" and len(state["inputs"]["visual"]["mean"]) == 3
    assert "linear_peer" not in summary  # face clips are no linear model's input, and there is nothing else


def test_run_records_faces_and_caches_each_video_once(both_run, cache, video_data):
    results = json.loads((both_run / "results.json").read_text())
    faces = results["face_detection"]
    assert faces["videos"] == 24 and faces["sampled_frames"] == 24 * 8
    assert faces["frames_detected"] + faces["frames_held"] + faces["frames_without_face"] == faces["frames_analysed"]
    assert faces["frames_without_face"] <= 0.1 * faces["frames_analysed"]
    assert json.loads((both_run / "data_fingerprint.json").read_text())["face_detection"] == faces
    entries = list(cache.glob("face_clips-*/*.npy"))
    assert len(entries) == len(FLV)  # the four links to one video are one cache entry
    assert all(e.with_suffix(".json").is_file() for e in entries)
    assert len(results["folds"]) == 2 and set(results["modality_accuracy_mean"]) == {"audio", "visual"}
    peer = results["linear_peer"]  # on the MFCC frames (mean and std pooled), the face clips left out
    assert peer["joint"] == "audio" and set(peer["chosen_C"]["1"]) == {"audio"} and "late_average" not in peer
    # a second build reads everything from the cache, memory-mapped
    config = load_config(CONFIG, TINY_CLIPS + BOTH)
    fs = build_ravdess_features(video_data, config.data, config.features, FeatureCache(cache), progress=False)
    assert isinstance(fs.features["visual"][0], np.memmap) and fs.input_dims["visual"] == 3


@pytest.mark.slow
def test_predict_uses_the_video_and_leaves_out_what_is_missing(both_run, capsys):
    predictor = Predictor(both_run)
    entries = predictor.predict(FLV + MP3[:1])
    for e in entries[:-1]:
        assert e["modalities"] == ["audio", "visual"] and e["missing"] == {}
        assert e["face"]["sampled_with_face"] >= 7
        assert abs(sum(e["probs"].values()) - 1) < 1e-4
    audio_only = entries[-1]
    assert audio_only["modalities"] == ["audio"] and "no video stream" in audio_only["missing"]["visual"]
    assert audio_only["probs"] == pytest.approx(audio_only["modality_probs"]["audio"], abs=1e-5)
    outputs = []
    for _ in range(2):
        assert main(["predict", str(both_run), *map(str, FLV[:2]), "--json"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0]) == predictor.predict(FLV[:2]) == entries[:2]  # each file on its own: batch-independent


def test_a_video_without_a_face_is_reported(both_run, tmp_path):
    blank = write_video(tmp_path / "blank.mp4", np.full((20, 96, 96, 3), 90, np.uint8),
                        audio=0.1 * np.sin(np.arange(16000) / 4))
    (entry,) = Predictor(both_run).predict([blank])
    assert entry["modalities"] == ["audio"] and "a face in only 0 of 8 sampled frames" in entry["missing"]["visual"]


@pytest.mark.slow
def test_export_of_a_face_clip_model_matches_pytorch(both_run, tmp_path):
    import onnxruntime as ort

    from emofuse.inference.export import export_run, load_run_model

    result = export_run(both_run, fold=1, out=tmp_path / "model.onnx")
    assert result.format == "onnx" and result.max_abs_diff <= 1e-5
    wrapper, _, _ = load_run_model(both_run, 1)
    session = ort.InferenceSession(result.path)
    x = wrapper.example(2, 8, torch.Generator().manual_seed(5))
    assert x[2].shape == (2, 8, 3, 32, 32)  # visual: (batch, frames, channels, size, size)
    got = session.run(None, dict(zip(wrapper.input_names(), (t.numpy() for t in x))))
    with torch.no_grad():
        np.testing.assert_allclose(got[0], wrapper(*x)[0].numpy(), atol=1e-5)


def test_takes_without_a_usable_video(video_data, cache, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "audio16k").symlink_to(video_data / "audio16k", target_is_directory=True)
    for folder in (video_data / "video").iterdir():
        (data / "video" / folder.name).mkdir(parents=True)
        for f in sorted(folder.iterdir())[1:]:  # the first take of each actor has no video ...
            (data / "video" / folder.name / f.name).symlink_to(f.resolve())
    blank = data / "video" / "Actor_01" / (sorted((video_data / "video" / "Actor_01").iterdir())[0].stem + ".mp4")
    write_video(blank, np.full((20, 96, 96, 3), 90, np.uint8))  # ... except actor 1's, which shows no face
    config = load_config(CONFIG, TINY_CLIPS + BOTH)
    with pytest.raises(DataError) as err:
        build_ravdess_features(data, config.data, config.features, FeatureCache(cache), progress=False)
    message = str(err.value)
    assert "4 of 24 takes are incomplete" in message and str(blank) in message and "a face in only 0 of 8" in message
    assert "no video file 01-01-" in message
    skip = config.data.model_copy(update={"on_incomplete": "skip"})
    fs = build_ravdess_features(data, skip, config.features, FeatureCache(cache), progress=False)
    assert len(fs.meta) == 20 and len(fs.skipped) == 4 and fs.face_report["videos"] == 20


def test_video_config_is_checked():
    with pytest.raises(ConfigError, match="needs features.visual"):
        load_config(CONFIG, ["features.visual=null"])
    with pytest.raises(ConfigError, match="features.visual is set but"):
        load_config(CONFIG, ["data.visual.kind=table"])
    with pytest.raises(ConfigError, match="unknown video feature extractor 'faces'"):
        load_config(CONFIG, ["features.visual.name=faces"])
    with pytest.raises(ConfigError, match="features.visual.params.frame"):
        load_config(CONFIG, ["features.visual.params.frame=3"])


def test_clip_batches_are_standardised_padded_and_mirrored():
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8) for n in (5, 3, 4)]
    scaler = Standardizer.for_values(clips).fit(clips)
    assert isinstance(scaler, ChannelStandardizer)
    pixels = np.concatenate([c.reshape(-1, 3) for c in clips]).astype(np.float64)
    np.testing.assert_allclose(scaler.mean, pixels.mean(0))
    np.testing.assert_allclose(scaler.std, pixels.std(0))
    data = TensorData({"visual": scaler.transform(clips)}, np.array([0, 1, 2]))
    batch = data.batch(torch.tensor([1, 0]))
    assert batch.inputs["visual"].shape == (2, 5, 3, 8, 8) and batch.lengths["visual"].tolist() == [3, 5]
    expected = (clips[1].astype(np.float32) - scaler.mean.astype(np.float32)) / scaler.std.astype(np.float32)
    np.testing.assert_allclose(batch.inputs["visual"][0, :3].numpy(), expected.transpose(0, 3, 1, 2), rtol=1e-5)
    assert (batch.inputs["visual"][0, 3:] == 0).all()  # padding
    mirrored = data.batch(torch.tensor([1, 0]), hflip=1.0)
    assert torch.equal(mirrored.inputs["visual"], batch.inputs["visual"].flip(-1))
    cropped = data.batch(torch.tensor([0, 2]), crop=2, generator=torch.Generator().manual_seed(0))
    assert cropped.inputs["visual"].shape[1] == 2 and cropped.lengths["visual"].tolist() == [2, 2]
    assert Standardizer.from_dict(scaler.to_dict()).apply(clips[0]).shape == (5, 3, 8, 8)


def test_expression_probabilities_from_the_bundled_fer_model():
    """fer's CNN, run with LiteRT, per sampled frame: probabilities, and the happy take looks happiest."""
    from emofuse.features.visual.expression import LABELS

    extractor = FaceFeatures(FaceFeatures.Params(frames=20, descriptors=["expression"], pool=True))
    means = {clip.stem.split("_")[2]: extractor.extract_file(clip)[0] for clip in FLV}
    frames, _ = FaceFeatures(FaceFeatures.Params(frames=5, descriptors=["expression", "hog"])).extract_file(FLV[0])
    assert frames.shape == (5, 7 + 1764)
    np.testing.assert_allclose(frames[:, :7].sum(1), 1.0, atol=1e-3)
    happy = LABELS.index("happy")
    assert LABELS[int(np.argmax(means["HAP"]))] == "happy"
    assert means["HAP"][happy] == max(m[happy] for m in means.values())
