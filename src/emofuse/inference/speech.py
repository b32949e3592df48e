"""Where the speech is: Silero VAD (its weights ship in the silero-vad wheel, so nothing is downloaded).

The detector gives a speech probability for every 32 ms frame of 16 kHz audio; it runs on blocks of any length with
its recurrent state carried from block to block, so an hour-long recording is scanned in pieces and a clip in one
call. Regions come from Silero's own state machine (``get_speech_timestamps_from_probs``) on those probabilities:
the same regions as ``get_speech_timestamps`` on the whole signal. No speech means no emotion: ``predict`` answers
"no speech" for a file where the detector finds none, and a recording's segments are its speech regions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

RATE = 16000  # the detector's rate; other audio is resampled to it
FRAME = 512  # samples per frame at RATE (32 ms)
CONTEXT = 64  # samples of the previous frame each frame is given
FRAMES_PER_CALL = 512  # frames per ONNX call (16 s of audio)
NO_SPEECH = "no speech"  # the label a recording or segment without speech gets, in every output


@dataclass(frozen=True)
class VadSettings:
    """How speech probabilities become regions (Silero's parameters, in seconds). ``min_silence_s``: a pause shorter
    than this does not end an utterance; ``pad_s``: kept on each side of a region."""
    threshold: float = 0.5
    clip_threshold: float = 0.15  # a whole clip holds speech if one frame reaches this (why_no_speech)
    min_speech_s: float = 0.25
    min_silence_s: float = 0.5
    pad_s: float = 0.3  # wider than Silero's 0.1: the features trim silence, and a take's soft edges stay in


@lru_cache(maxsize=1)
def _session():
    """The batched ("sequence") ONNX export of Silero VAD, one thread: a few ms per minute of audio."""
    from importlib import resources

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1
    model = resources.files("silero_vad.data").joinpath("silero_vad_16k_sequence.onnx")
    return ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


def _state_machine():
    """Silero's region finder. Importing the silero_vad package sets torch's thread count to 1; it is restored."""
    import torch

    threads = torch.get_num_threads()
    from silero_vad.utils_vad import get_speech_timestamps_from_probs

    torch.set_num_threads(threads)
    return get_speech_timestamps_from_probs


class SpeechScanner:
    """Speech probabilities of one stream of 16 kHz audio fed in blocks of any length (``feed``), then ``finish``."""

    def __init__(self):
        self.session = _session()
        self.hidden = np.zeros((1, 1, 128), np.float32)
        self.cell = np.zeros((1, 1, 128), np.float32)
        self.context = np.zeros(CONTEXT, np.float32)
        self.pending = np.zeros(0, np.float32)  # samples short of a whole frame
        self.probs: list[np.ndarray] = []
        self.samples = 0

    def feed(self, block: np.ndarray) -> None:
        self.samples += len(block)
        audio = np.concatenate([self.pending, np.asarray(block, np.float32)])
        whole = len(audio) // FRAME * FRAME
        self._frames(audio[:whole])
        self.pending = audio[whole:]

    def finish(self) -> np.ndarray:
        """Every frame's speech probability (the last frame zero-padded), as one array."""
        if len(self.pending):
            self._frames(np.pad(self.pending, (0, FRAME - len(self.pending))))
            self.pending = np.zeros(0, np.float32)
        return np.concatenate(self.probs) if self.probs else np.zeros(0, np.float32)

    def _frames(self, audio: np.ndarray) -> None:
        frames = audio.reshape(-1, FRAME)
        for first in range(0, len(frames), FRAMES_PER_CALL):
            block = frames[first:first + FRAMES_PER_CALL]
            contexts = np.concatenate([self.context[None], block[:-1, -CONTEXT:]])
            values, self.hidden, self.cell = self.session.run(
                ["speech_probs", "hn", "cn"],
                {"input": np.concatenate([contexts, block], axis=1), "h": self.hidden, "c": self.cell})
            self.context = block[-1, -CONTEXT:].copy()
            self.probs.append(np.asarray(values, np.float32).reshape(-1))


def speech_probabilities(blocks: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """(per-frame speech probabilities, samples) of 16 kHz audio given in blocks."""
    scanner = SpeechScanner()
    for block in blocks:
        scanner.feed(block)
    return scanner.finish(), scanner.samples


def speech_regions(probs: np.ndarray, samples: int, settings: VadSettings = VadSettings(),
                   max_s: float = float("inf")) -> list[tuple[int, int]]:
    """(start, end) samples at RATE of each speech region; a region longer than ``max_s`` is cut at its longest pause
    (Silero's ``max_speech_duration_s``)."""
    if samples == 0:
        return []
    found = _state_machine()(
        probs.tolist(), sampling_rate=RATE, threshold=settings.threshold,
        min_speech_duration_ms=round(1000 * settings.min_speech_s), max_speech_duration_s=max_s,
        min_silence_duration_ms=round(1000 * settings.min_silence_s), speech_pad_ms=round(1000 * settings.pad_s),
        audio_length_samples=samples)
    return [(int(r["start"]), int(r["end"])) for r in found]


def why_no_speech(wave: np.ndarray, sample_rate: int, settings: VadSettings = VadSettings()) -> str | None:
    """None when a clip holds speech; else why it gets no emotion: too short to hold any, or no speech found."""
    seconds = len(wave) / sample_rate
    if seconds < settings.min_speech_s:
        return f"too short: {seconds:.2f} s of audio, speech takes at least {settings.min_speech_s:g} s"
    if sample_rate != RATE:
        from emofuse.data.media import resample

        wave = resample(wave, sample_rate, RATE)
    probs, _ = speech_probabilities([np.pad(wave, (0, -len(wave) % FRAME))])  # whole frames: one call per 16 s
    # A whole clip is judged by its most speech-like frame, against a lower bar than a region's: Silero gives strong
    # emotional speech (shouted, sobbed) few frames above 0.5, too few for a region (14 of the 3,693 RAVDESS and nEMO
    # takes have none; their best frames reach 0.21-0.76), while silence, noise and tones stay below 0.14.
    if probs.size and probs.max() >= settings.clip_threshold:
        return None
    return f"no speech: the voice-activity detector found none in {seconds:.2f} s of audio"


def gate_default() -> bool:
    """Whether predictions answer "no speech" for audio without speech unless told otherwise: yes, unless the
    environment sets EMOFUSE_SPEECH_GATE=0 (synthetic test signals: tones hold no speech)."""
    return os.environ.get("EMOFUSE_SPEECH_GATE", "1") != "0"
