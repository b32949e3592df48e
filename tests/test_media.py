"""Decoding audio and video with PyAV: real CREMA-D files (VP6 flv + mp3), generated mp4/webm/wav, bad files."""

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from emofuse.data.audio import load_audio
from emofuse.core.errors import DataError
from emofuse.data.media import decode_audio, decode_video, probe

from conftest import SHARED_DATA

CREMA = SHARED_DATA / "crema-d"
requires_crema = pytest.mark.skipif(not CREMA.is_dir(), reason="../shared/data/crema-d is not beside the repository")


def write_video(path: Path, frames: np.ndarray, fps: int = 25, audio: np.ndarray | None = None, audio_rate: int = 16000,
                codecs: tuple[str, str] = ("mpeg4", "aac")) -> Path:
    """Encode (N, H, W, 3) uint8 RGB frames, and optionally a mono float waveform, into a container with PyAV."""
    video_codec, audio_codec = codecs
    with av.open(str(path), "w") as out:
        vs = out.add_stream(video_codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        streams = [vs]
        if audio is not None:
            aus = out.add_stream(audio_codec, rate=audio_rate)
            aus.layout = "mono"
            streams.append(aus)
        for frame in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        if audio is not None:
            resampler = av.AudioResampler(format=aus.format.name, layout="mono", rate=audio_rate)
            src = av.AudioFrame.from_ndarray(audio.astype(np.float32)[None], format="flt", layout="mono")
            src.sample_rate = audio_rate
            for frame in resampler.resample(src) + resampler.resample(None):
                for packet in aus.encode(frame):
                    out.mux(packet)
        for stream in streams:
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def moving_square(n: int = 30, h: int = 96, w: int = 128) -> np.ndarray:
    frames = np.full((n, h, w, 3), 40, np.uint8)
    for i in range(n):
        frames[i, 30:60, 10 + 2 * i: 40 + 2 * i] = (200, 60, 60)
    return frames


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@requires_crema
@pytest.mark.parametrize("clip", sorted(p.name for p in CREMA.glob("*.flv")))
def test_crema_flv_audio_and_video(clip):
    path = CREMA / clip
    info = probe(path)
    assert info.has_audio and info.has_video and 1.5 < info.duration < 3.5
    wave = decode_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
    assert abs(len(wave) / 16000 - info.duration) < 0.1  # mp3 priming/padding only
    assert 0.01 < np.abs(wave).max() <= 1.0
    video = decode_video(path)
    assert video.frames.shape[1:] == (360, 480, 3) and video.frames.dtype == np.uint8
    assert abs(video.fps - 29.97) < 0.01
    assert abs(len(video.frames) - info.duration * video.fps) <= 3
    assert np.all(np.diff(video.timestamps) > 0)
    thinned = decode_video(path, fps=10)
    assert abs(len(thinned.frames) - info.duration * 10) <= 2
    assert np.diff(thinned.timestamps).min() > 0.09  # evenly thinned: about 0.1 s apart, never two source frames in a row
    np.testing.assert_array_equal(thinned.frames[0], video.frames[0])
    assert len(decode_video(path, max_frames=5).frames) == 5


@requires_crema
def test_crema_mp3_is_audio_only():
    path = CREMA / "1002_DFA_ANG_XX.mp3"
    info = probe(path)
    assert info.has_audio and not info.has_video
    wave = load_audio(path, 16000)  # the soundfile loader falls back to PyAV for mp3
    np.testing.assert_array_equal(wave, decode_audio(path, 16000))
    assert abs(len(wave) / 16000 - info.duration) < 0.1
    with pytest.raises(DataError, match="no video stream") as err:
        decode_video(path)
    assert str(path) in str(err.value)


def test_wav_gives_the_same_signal_through_both_decoders(tmp_path):
    rate = 22050
    stereo = np.stack([tone(0.5, rate, 300), tone(0.5, rate, 500)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, rate, subtype="FLOAT")
    via_soundfile = load_audio(path, 16000)
    via_pyav = decode_audio(path, 16000)
    assert len(via_soundfile) == len(via_pyav) == 8000
    np.testing.assert_allclose(via_pyav, via_soundfile, atol=1e-6)  # same mono mix and soxr resampling


@pytest.mark.parametrize("suffix,codecs", [(".mp4", ("mpeg4", "aac")), (".webm", ("libvpx", "libopus"))])
def test_generated_video_with_audio(tmp_path, suffix, codecs):
    frames = moving_square()
    rate = 48000 if codecs[1] == "libopus" else 16000  # opus encodes at 48 kHz only
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=25, audio=tone(1.2, rate), audio_rate=rate, codecs=codecs)
    info = probe(path)
    assert info.has_audio and info.has_video
    video = decode_video(path)
    assert video.frames.shape == frames.shape and abs(video.fps - 25) < 1e-6
    assert np.abs(video.frames.astype(int) - frames.astype(int)).mean() < 8  # lossy, but the same picture
    np.testing.assert_allclose(video.timestamps, np.arange(30) / 25, atol=2e-3)
    wave = decode_audio(path, 16000)
    assert abs(len(wave) / 16000 - 1.2) < 0.1
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16000 / len(wave) - 440) < 5  # the tone survives encoding and resampling
    assert len(decode_video(path, fps=5).frames) == 6


def test_video_without_audio_names_the_file(tmp_path):
    path = write_video(tmp_path / "silent.mp4", moving_square(10))
    with pytest.raises(DataError, match="no audio stream") as err:
        load_audio(path, 16000)
    assert str(path) in str(err.value)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    for decode in (lambda p: decode_audio(p, 16000), decode_video, probe):
        with pytest.raises(DataError) as err:
            decode(bad)
        assert str(bad) in str(err.value) and "cannot" in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        decode_video(tmp_path / "nope.webm")
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 50)
    with pytest.raises(DataError, match="cannot") as err:
        load_audio(text, 16000)
    assert str(text) in str(err.value)


@pytest.mark.parametrize("seed", range(6))
def test_trim_and_resample_equal_librosa_without_importing_it(seed):
    """The prediction path trims and resamples without librosa (its import costs seconds): the same samples."""
    import librosa

    from emofuse.data.media import resample
    from emofuse.features.base import trim_silence

    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 40000))
    envelope = np.concatenate([np.full(n // 3, 1e-4), np.ones(n - 2 * (n // 3)), np.full(n // 3, 1e-3)])
    wave = (rng.standard_normal(n) * envelope).astype(np.float32)
    for top_db in (20, 30, 60):
        np.testing.assert_array_equal(trim_silence(wave, top_db), librosa.effects.trim(wave, top_db=top_db)[0])
    for rates in ((16000, 22050), (44100, 16000), (48000, 16000)):
        np.testing.assert_array_equal(resample(wave, *rates),
                                      librosa.resample(wave, orig_sr=rates[0], target_sr=rates[1], res_type="soxr_hq"))


def test_an_implausible_sample_rate_is_refused_before_resampling(tmp_path):
    """A header announcing 1 Hz would turn a few KB into hundreds of MB at 16 kHz."""
    path = tmp_path / "forged.wav"
    sf.write(path, np.zeros(3000, np.float32), 1)
    with pytest.raises(DataError, match="sample rate 1 Hz: below 1000 Hz"):
        load_audio(path, 16000)
