"""Feature standardisation: global (fitted on training rows only) and per speaker.

Speaker normalisation uses a speaker's own clips but never their labels: all of them
(transductive, the usual unsupervised speaker adaptation of speaker-independent emotion work) or
only a few enrolment clips (inductive, what a deployment can have; ``evaluation/enrolment.py``
decides which). Face-crop clips (T, S, S, 3) uint8 are standardised per colour
channel with training statistics, lazily (a float copy of every clip would not fit in memory), and
not per speaker (a crop already removes the face's position and scale).
"""

from __future__ import annotations

import numpy as np

Values = np.ndarray | list[np.ndarray]


def select_rows(values: Values, idx: np.ndarray) -> Values:
    return [values[i] for i in idx] if isinstance(values, list) else values[idx]


def _stack(values: Values) -> np.ndarray:
    return np.concatenate(values) if isinstance(values, list) else values


def _apply(values: Values, mean: np.ndarray, std: np.ndarray) -> Values:
    if isinstance(values, list):
        return [((v - mean) / std).astype(np.float32) for v in values]
    return ((values - mean) / std).astype(np.float32)


def fit_stats(values: Values, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    stacked = _stack(values).astype(np.float64)
    return stacked.mean(0), np.maximum(stacked.std(0), eps)


def is_clips(values) -> bool:
    """Face-crop clips: a list of (T, S, S, 3) arrays."""
    return isinstance(values, list) and len(values) > 0 and np.ndim(values[0]) == 4


class Standardizer:
    def fit(self, values: Values) -> "Standardizer":
        self.mean, self.std = fit_stats(values)
        return self

    def transform(self, values: Values) -> Values:
        return _apply(values, self.mean, self.std)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> Standardizer:
        scaler = ChannelStandardizer() if state.get("kind") == "channel" else cls()
        scaler.mean, scaler.std = np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64)
        return scaler

    @staticmethod
    def for_values(values) -> Standardizer:
        return ChannelStandardizer() if is_clips(values) else Standardizer()


class ChannelStandardizer(Standardizer):
    """Per colour channel over every pixel of every frame of uint8 clips (T, S, S, 3); a clip comes out as
    float32 (T, 3, S, S), frames first and channels next, the layout video encoders take."""

    def fit(self, values: list[np.ndarray]) -> ChannelStandardizer:
        total, squares, count = np.zeros(3), np.zeros(3), 0
        for clip in values:
            pixels = np.asarray(clip, dtype=np.float64).reshape(-1, 3)
            total += pixels.sum(0)
            squares += np.square(pixels).sum(0)
            count += len(pixels)
        self.mean = total / count
        self.std = np.maximum(np.sqrt(np.maximum(squares / count - self.mean**2, 0)), 1e-6)
        return self

    def apply(self, clip: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(clip, dtype=np.float32) - self.mean.astype(np.float32)) / self.std.astype(np.float32)
        return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))

    def transform(self, values):
        """One clip -> its float32 (T, 3, S, S) array; a list of clips -> a lazy sequence of them."""
        return StandardizedClips(values, self) if isinstance(values, list) else self.apply(values)

    def to_dict(self) -> dict:
        return {"kind": "channel", **super().to_dict()}


class StandardizedClips:
    """Clips standardised when read, and only the frames read, so that only a batch is ever held as floats."""

    def __init__(self, clips: list[np.ndarray], scaler: ChannelStandardizer):
        self.clips, self.scaler = clips, scaler

    def __len__(self) -> int:
        return len(self.clips)

    def window(self, i: int, start: int, length: int) -> np.ndarray:
        """Frames ``start`` to ``start + length`` of clip ``i``, standardised: float32 (length, 3, S, S)."""
        return self.scaler.apply(self.clips[i][start : start + length])

    def frame_shape(self) -> tuple[int, int, int]:
        """(3, S, S): one standardised frame."""
        _, height, width, channels = self.clips[0].shape
        return channels, height, width

    def lengths(self) -> list[int]:
        return [len(c) for c in self.clips]


def speaker_normalize(values: Values, speakers: np.ndarray, fit_on: np.ndarray | None = None) -> Values:
    """Standardise each speaker's rows with that speaker's own mean and standard deviation, taken from the
    speaker's rows where ``fit_on`` (a boolean mask; all rows by default) is set: its enrolment clips."""
    speakers = np.asarray(speakers)
    fit_on = np.ones(len(speakers), bool) if fit_on is None else np.asarray(fit_on, bool)
    out: list = list(values) if isinstance(values, list) else np.empty_like(values, dtype=np.float32)
    for s in np.unique(speakers):
        idx = np.flatnonzero(speakers == s)
        rows = select_rows(values, idx)
        normed = _apply(rows, *fit_stats(select_rows(values, idx[fit_on[idx]])))
        for j, i in enumerate(idx):
            out[i] = normed[j]
    return out


def typical_speaker(values: Values, speakers: np.ndarray) -> Standardizer:
    """A typical speaker's statistics: the mean of the speakers' means and the root mean of their variances.

    Stands in for a new speaker's own statistics when too few of their clips are at hand.
    """
    speakers = np.asarray(speakers)
    stats = [fit_stats(select_rows(values, np.flatnonzero(speakers == s))) for s in np.unique(speakers)]
    scaler = Standardizer()
    scaler.mean = np.mean([mean for mean, _ in stats], axis=0)
    scaler.std = np.sqrt(np.mean([std**2 for _, std in stats], axis=0))
    return scaler
