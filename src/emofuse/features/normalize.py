"""Feature standardisation: global (fitted on training rows only) and per speaker.

Speaker normalisation uses each speaker's own clips, test speakers included, but never their
labels: it is the usual unsupervised speaker adaptation of speaker-independent emotion work, and
results record whether it was on.
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
        scaler = cls()
        scaler.mean, scaler.std = np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64)
        return scaler


def speaker_normalize(values: Values, speakers: np.ndarray) -> Values:
    """Standardise each speaker's rows with that speaker's own mean and standard deviation."""
    speakers = np.asarray(speakers)
    out: list = list(values) if isinstance(values, list) else np.empty_like(values, dtype=np.float32)
    for s in np.unique(speakers):
        idx = np.flatnonzero(speakers == s)
        rows = select_rows(values, idx)
        normed = _apply(rows, *fit_stats(rows))
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
