"""Recording conditions applied to a waveform: noise, gain, telephone band, lossy codecs, reverberation, and other
voices (speed and pitch perturbation).

A model trained on studio recordings meets phones, compressed uploads and echoing rooms. Each kind here is a
function of (wave, sample_rate, rng, setting) -> wave of the same length, used to score a model on corrupted copies
of its test clips at fixed settings (``protocol.test_conditions``) and to train on augmented copies whose settings
are drawn per copy (``features.augment``). The copies are made before feature extraction
(features/conditioned.py), so that each copy is extracted once and cached under a key that names its condition.

A setting's number is fixed, or a ``[low, high]`` range drawn uniformly per copy (codec bitrates: a list, one drawn).
Everything random comes from the ``rng`` given, which callers derive from the clip's content and the copy's index
(``condition_rng``): the same clip, copy and condition give the same waveform on any machine and in any order.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Annotated, Callable, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

Value = float | tuple[float, float]  # fixed, or [low, high] drawn uniformly per copy


class Setting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def ranged(self) -> list[str]:
        """The fields given as a range or a choice (drawn per copy), which a fixed test condition may not have."""
        return [name for name in type(self).model_fields if isinstance(getattr(self, name), (tuple, list))]

    def fixed(self, rng: np.random.Generator) -> "Setting":
        """This setting with every range or choice drawn."""
        drawn = {}
        for name in self.ranged():
            value = getattr(self, name)
            drawn[name] = rng.uniform(*value) if isinstance(value, tuple) else value[int(rng.integers(len(value)))]
        return self.model_copy(update=drawn)

    def key(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @field_validator("*", mode="after")
    @classmethod
    def _ordered_range(cls, value):
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError(f"range [{value[0]}, {value[1]}]: low above high")
        return value


class Noise(Setting):
    kind: Literal["noise"] = "noise"
    snr_db: Value = Field(..., description="signal-to-noise ratio against the clip's mean power, in dB")
    color: Literal["white", "pink", "brown"] = Field("white", description="power falling as 1/f^0, 1/f, 1/f^2")


class Gain(Setting):
    kind: Literal["gain"] = "gain"
    gain_db: Value = Field(..., description="level change in dB; samples beyond full scale are clipped")


class Telephone(Setting):
    kind: Literal["telephone"] = "telephone"
    low_hz: float = Field(300.0, gt=0)
    high_hz: float = Field(3400.0, gt=0)
    rate: int = Field(8000, gt=0, description="the line's sample rate: down to it and back up")
    order: int = Field(8, ge=2, le=16, multiple_of=2, description="Butterworth band-pass order (even: a band-pass "
                                                                    "of order n is two filters of order n / 2)")


class Codec(Setting):
    kind: Literal["codec"] = "codec"
    codec: Literal["mp3", "opus"]
    bitrate_kbps: int | list[int] = Field(..., description="a bitrate, or a list to draw one from per copy")

    @field_validator("bitrate_kbps")
    @classmethod
    def _positive(cls, value):
        if any(b <= 0 for b in (value if isinstance(value, list) else [value])):
            raise ValueError("bitrates must be positive")
        return value


class Reverb(Setting):
    kind: Literal["reverb"] = "reverb"
    rt60_s: Value = Field(..., description="time for the room's reverberant energy to fall by 60 dB, in seconds")
    drr_db: Value = Field(0.0, description="direct-to-reverberant energy ratio of the room response, in dB")


class Speed(Setting):
    kind: Literal["speed"] = "speed"
    factor: Value = Field(..., description="playback speed: 1.1 is 10 % faster and higher (pitch and formants up, "
                                           "duration down), as Kaldi's speed perturbation")

    @field_validator("factor")
    @classmethod
    def _positive(cls, value):
        if min(value if isinstance(value, tuple) else (value,)) <= 0:
            raise ValueError("a speed factor must be positive")
        return value


class Pitch(Setting):
    kind: Literal["pitch"] = "pitch"
    semitones: Value = Field(..., description="pitch and formants moved by this many semitones, the duration kept")


Condition = Annotated[Union[Noise, Gain, Telephone, Codec, Reverb, Speed, Pitch], Field(discriminator="kind")]


def _power(wave: np.ndarray) -> float:
    return float(np.mean(np.square(wave, dtype=np.float64)))


def coloured_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of unit power whose spectrum falls as 1/f^alpha (white 0, pink 1, brown 2), no DC."""
    white = rng.standard_normal(n)
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}[color]
    if alpha:
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        spectrum[1:] /= f[1:] ** (alpha / 2)
        spectrum[0] = 0.0
        white = np.fft.irfft(spectrum, n)
    return white / np.sqrt(max(_power(white), 1e-30))


def add_noise(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, setting: Noise) -> np.ndarray:
    noise = coloured_noise(len(wave), setting.color, rng)
    scale = np.sqrt(_power(wave) / 10 ** (setting.snr_db / 10))
    return wave + scale * noise


def gain(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, setting: Gain) -> np.ndarray:
    return np.clip(wave * 10 ** (setting.gain_db / 20), -1.0, 1.0)


def telephone(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, setting: Telephone) -> np.ndarray:
    """A narrow-band line: down to its rate, band-passed, back up; the length kept."""
    from scipy.signal import butter, sosfilt

    from emofuse.data.media import resample

    if not setting.low_hz < setting.high_hz < setting.rate / 2:
        raise ValueError(f"telephone band {setting.low_hz}-{setting.high_hz} Hz must lie below half of {setting.rate} Hz")
    line = resample(wave, sample_rate, setting.rate) if setting.rate != sample_rate else wave
    sos = butter(setting.order // 2, [setting.low_hz, setting.high_hz], btype="bandpass", fs=setting.rate, output="sos")
    line = sosfilt(sos, line)
    back = resample(line.astype(np.float32), setting.rate, sample_rate) if setting.rate != sample_rate else line
    return _same_length(back, len(wave))


def _same_length(wave: np.ndarray, n: int) -> np.ndarray:
    return np.pad(wave, (0, max(0, n - len(wave))))[:n]


CODECS = {"mp3": ("mp3", "libmp3lame", "s16p"), "opus": ("ogg", "libopus", "s16")}  # container, encoder, sample format
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def reencode(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, setting: Codec) -> np.ndarray:
    """Encoded and decoded again in memory through PyAV (FFmpeg's LAME and libopus), at the same rate, mono; the
    codec's delay removed by aligning on the cross-correlation peak, the length kept."""
    import av

    container_format, encoder, sample_format = CODECS[setting.codec]
    rate = sample_rate if setting.codec == "mp3" or sample_rate in OPUS_RATES else 48000
    pcm = np.clip(wave, -1.0, 1.0).astype(np.float32)
    if rate != sample_rate:
        from emofuse.data.media import resample

        pcm = resample(pcm, sample_rate, rate)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.layout = "mono"
        stream.bit_rate = int(setting.bitrate_kbps) * 1000
        samples = np.round(pcm * 32767).astype(np.int16)
        frame_size = stream.codec_context.frame_size or 1152
        for start in range(0, len(samples), frame_size):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + frame_size], format=sample_format, layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    pieces = []
    with av.open(buffer, "r") as decoded:
        for frame in decoded.decode(audio=0):
            pieces.extend(f.to_ndarray()[0] for f in resampler.resample(frame))
        pieces.extend(f.to_ndarray()[0] for f in resampler.resample(None))
    return align(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), wave)


def align(output: np.ndarray, reference: np.ndarray, max_lag: int = 4096) -> np.ndarray:
    """``output`` shifted by the lag (0..max_lag samples of delay) that best matches ``reference``, cut or padded to its
    length."""
    from scipy.signal import correlate

    n = len(reference)
    window = output[: n + max_lag]
    if len(window) == 0 or not np.any(reference):
        return _same_length(window, n)
    scores = correlate(window, reference, mode="full", method="fft")[n - 1: n + max_lag]
    lag = int(np.argmax(scores))
    return _same_length(window[lag:], n)


def room_response(sample_rate: int, rt60_s: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: a direct path (unit sample) followed by Gaussian noise whose energy
    decays 60 dB in ``rt60_s`` (Polack's model), its energy ``drr_db`` below the direct path's, 1.2 * RT60 long."""
    n = max(2, int(round(1.2 * rt60_s * sample_rate)))
    t = np.arange(1, n) / sample_rate
    tail = rng.standard_normal(n - 1) * np.exp(-3 * np.log(10) * t / rt60_s)  # amplitude: 10^-3 at RT60
    tail *= np.sqrt(10 ** (-drr_db / 10) / max(_power(tail) * len(tail), 1e-30))
    return np.concatenate([[1.0], tail])


def reverb(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, setting: Reverb) -> np.ndarray:
    """Convolved with a synthetic room response, cut to the input's length and brought back to its mean power (a
    room changes the sound, not the level)."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(wave, room_response(sample_rate, setting.rt60_s, setting.drr_db, rng))[: len(wave)]
    return wet * np.sqrt(_power(wave) / max(_power(wet), 1e-30))


def speed(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, setting: Speed) -> np.ndarray:
    """Played ``factor`` times faster: another voice (a shorter or longer vocal tract, a higher or lower pitch) saying
    the same thing; the only kind that changes the clip's length."""
    from emofuse.data.media import resample

    return resample(np.asarray(wave, dtype=np.float32), int(round(sample_rate * setting.factor)), sample_rate)


def pitch(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, setting: Pitch) -> np.ndarray:
    """librosa's pitch shift (a phase-vocoder time stretch, then resampling back to the length): pitch and formants
    move together, the tempo stays."""
    import librosa

    return librosa.effects.pitch_shift(np.asarray(wave, dtype=np.float32), sr=sample_rate, n_steps=setting.semitones)


CORRUPTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator, Setting], np.ndarray]] = {
    "noise": add_noise, "gain": gain, "telephone": telephone, "codec": reencode, "reverb": reverb, "speed": speed,
    "pitch": pitch,
}


def condition_rng(content: str, copy: int, conditions: list[Setting]) -> np.random.Generator:
    """The generator of one copy of a clip: from the clip's content digest (hex), the copy's index and the
    conditions it is drawn from."""
    key = hashlib.sha256("|".join([content, str(copy), *(c.key() for c in conditions)]).encode()).digest()
    return np.random.default_rng(int.from_bytes(key[:16], "little"))


def corrupt(wave: np.ndarray, sample_rate: int, conditions: list[Setting], rng: np.random.Generator) -> np.ndarray:
    """One of ``conditions`` (drawn when several) with its ranges drawn, applied: float32, the input's length (but
    under ``speed``)."""
    condition = conditions[int(rng.integers(len(conditions)))] if len(conditions) > 1 else conditions[0]
    setting = condition.fixed(rng)
    out = CORRUPTIONS[setting.kind](np.asarray(wave, dtype=np.float64), sample_rate, rng, setting)
    return np.asarray(out, dtype=np.float32)
