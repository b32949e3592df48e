"""Frame-level spectral sequences with librosa: MFCC (the Mars audio branch input) and log-mel."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from emofuse.features.base import EXTRACTORS, AudioExtractor, ExtractorParams


class FrameParams(ExtractorParams):
    n_fft: int = Field(512, gt=0)
    win_length: int = Field(400, gt=0, description="25 ms at 16 kHz")
    hop_length: int = Field(160, gt=0, description="10 ms at 16 kHz")
    n_mels: int = Field(64, gt=0)


class MfccParams(FrameParams):
    n_mfcc: int = Field(40, gt=0)
    deltas: bool = False


def log_mel(wave: np.ndarray, p: FrameParams) -> np.ndarray:
    """(n_mels, T) log-power mel spectrogram in dB (80 dB floor): the input of MFCC and the log-mel feature."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=wave, sr=p.sample_rate, n_fft=p.n_fft, win_length=p.win_length, hop_length=p.hop_length, n_mels=p.n_mels
    )
    return librosa.power_to_db(mel, ref=1.0, top_db=80.0)


@EXTRACTORS.register("mfcc")
class Mfcc(AudioExtractor):
    Params = MfccParams
    sequence = True

    def compute(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        mfcc = librosa.feature.mfcc(S=log_mel(wave, self.params), n_mfcc=self.params.n_mfcc)
        if self.params.deltas:
            mfcc = np.concatenate([mfcc, librosa.feature.delta(mfcc, mode="nearest")])
        return mfcc.T.astype(np.float32)


@EXTRACTORS.register("logmel")
class LogMel(AudioExtractor):
    Params = FrameParams
    sequence = True

    def compute(self, wave: np.ndarray) -> np.ndarray:
        return log_mel(wave, self.params).T.astype(np.float32)
