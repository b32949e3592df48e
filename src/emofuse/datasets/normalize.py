"""Feature standardisation: global (fitted on training rows only) and per speaker.

Speaker normalisation uses a speaker's own clips but never their labels: all of them
(transductive, the usual unsupervised speaker adaptation of speaker-independent emotion work) or
only a few enrolment clips (inductive, what a deployment can have; ``protocol/enrolment.py``
decides which). Face-crop clips (T, S, S, 3) uint8 are standardised per colour
channel with training statistics, lazily (a float copy of every clip would not fit in memory), and
not per speaker (a crop already removes the face's position and scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Values = np.ndarray | list[np.ndarray]


def select_rows(values: Values, idx: np.ndarray) -> Values:
    return [values[i] for i in idx] if isinstance(values, list) else values[idx]


def replace_rows(values: Values, idx: np.ndarray, source: Values, source_idx: np.ndarray | None = None) -> Values:
    """A copy of ``values`` whose rows ``idx`` are ``source``'s rows ``source_idx`` (default: ``idx``, when ``source``
    is another copy of the same clips)."""
    source_idx = idx if source_idx is None else source_idx
    if not isinstance(values, list):
        out = values.copy()
        out[idx] = source[source_idx]
        return out
    out = list(values)
    for i, j in zip(idx, source_idx):
        out[i] = source[j]
    return out


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


STD_FLOOR = 0.1
"""An enrolled speaker's standard deviation is never below this share of the typical speaker's: a dimension that is
constant over a few enrolment clips (one clip, or a sparse action unit) would otherwise be scaled by about 1e6."""


def shrunk(n: int, own: np.ndarray, prior, typical: np.ndarray) -> np.ndarray:
    """(n * own + prior * typical) / (n + prior); ``prior`` a number or a column of candidates (then one row each);
    an infinite prior, or no clip, gives ``typical``."""
    if n == 0:
        own = typical
    prior = np.asarray(prior, float)
    finite = np.where(np.isinf(prior), 0.0, prior)
    weight = np.where(np.isinf(prior) | (n + finite == 0), 0.0, n / np.maximum(n + finite, 1e-12))
    return weight * own + (1 - weight) * typical


def floored_std(variance: np.ndarray, typical: Standardizer) -> np.ndarray:
    return np.maximum(np.sqrt(variance), STD_FLOOR * typical.std)


@dataclass(frozen=True)
class Enrolment:
    """How a speaker's statistics are estimated from their n enrolment clips: shrinkage toward the typical training
    speaker, who counts as ``mean_prior`` pseudo-clips in the mean and ``var_prior`` in the variance::

        mean = (n * m_own + a * m_typical) / (n + a)        var = (n * v_own + b * v_typical) / (n + b)

    a = b = 0 is the clips' own statistics (``full``), b = inf keeps the typical speaker's variance (``mean``),
    a = b = inf is the typical speaker alone; the strength is in clips, so the same prior suits any n."""

    mean_prior: float = 0.0
    var_prior: float = 0.0

    def standardizer(self, own: "SpeakerSummary", typical: Standardizer) -> Standardizer:
        scaler = Standardizer()
        scaler.mean = shrunk(own.n, own.mean, self.mean_prior, typical.mean)
        scaler.std = floored_std(shrunk(own.n, own.var, self.var_prior, typical.std**2), typical)
        return scaler

    @property
    def name(self) -> str:
        named = [name for name, estimator in NAMED_ENROLMENTS.items() if estimator == self]
        return named[0] if named else f"shrink(mean {self.mean_prior:g}, var {self.var_prior:g} clips)"

    def to_dict(self) -> dict:
        return {"mean_prior": _finite_or_inf(self.mean_prior), "var_prior": _finite_or_inf(self.var_prior)}

    @classmethod
    def from_dict(cls, state: dict) -> Enrolment:
        return cls(float(state["mean_prior"]), float(state["var_prior"]))


NAMED_ENROLMENTS = {"full": Enrolment(0.0, 0.0), "mean": Enrolment(0.0, math.inf), "typical": Enrolment(math.inf, math.inf)}
"""The estimators with names of their own (``features.enrolment``: full, mean; ``typical``: no enrolment at all)."""


def _finite_or_inf(value: float) -> float | str:
    return "inf" if math.isinf(value) else value  # JSON has no infinity


@dataclass(frozen=True)
class SpeakerSummary:
    """A speaker's enrolment clips as an estimator needs them: their count, mean and (biased) variance."""

    n: int
    mean: np.ndarray
    var: np.ndarray

    @classmethod
    def of(cls, values: Values) -> SpeakerSummary:
        n = len(values)
        if n == 0:
            return cls(0, np.zeros(0), np.zeros(0))
        stacked = _stack(values).astype(np.float64)
        return cls(n, stacked.mean(0), stacked.var(0))


def speaker_normalize(values: Values, speakers: np.ndarray, fit_on: np.ndarray | None = None,
                      enrolment: Enrolment | None = None, typical: Standardizer | None = None) -> Values:
    """Standardise each speaker's rows with statistics of that speaker's rows where ``fit_on`` (a boolean mask; all
    rows by default) is set, its enrolment clips: their own mean and standard deviation, or, with ``enrolment``
    and the ``typical`` training speaker, that estimator's; a speaker with no enrolment clip gets ``typical``'s
    statistics, as a file on its own does."""
    speakers = np.asarray(speakers)
    fit_on = np.ones(len(speakers), bool) if fit_on is None else np.asarray(fit_on, bool)
    out: list = list(values) if isinstance(values, list) else np.empty_like(values, dtype=np.float32)
    for s in np.unique(speakers):
        idx = np.flatnonzero(speakers == s)
        rows, enrolled = select_rows(values, idx), select_rows(values, idx[fit_on[idx]])
        if typical is not None and not fit_on[idx].any():
            scaler = typical
        elif enrolment is None:
            scaler = Standardizer()
            scaler.mean, scaler.std = fit_stats(enrolled)
        else:
            scaler = enrolment.standardizer(SpeakerSummary.of(enrolled), typical)
        normed = scaler.transform(rows)
        for j, i in enumerate(idx):
            out[i] = normed[j]
    return out


def fill_absent(values: Values, present: np.ndarray | None) -> Values:
    """Standardised values with the rows of an absent modality (``present`` False) at 0, the training mean: what a
    feature-level fusion reads for them (mean imputation); a branch of their modality ignores them. Face clips
    (standardised lazily) are left as they are."""
    if present is None or present.all() or not isinstance(values, (np.ndarray, list)):
        return values
    if isinstance(values, list):
        return [v if p else np.zeros((1, *np.shape(v)[1:]), np.float32) for v, p in zip(values, present)]
    out = np.array(values, copy=True)
    out[~present] = 0
    return out


def standardise(scalers: dict[str, Standardizer], values: dict[str, Values],
                presence: dict[str, np.ndarray]) -> dict[str, Values]:
    """Each modality's values standardised with its scaler, the rows that lack the modality at the training mean
    (``fill_absent``; ``presence``: per modality, the rows that have it, where some lack it)."""
    return {m: fill_absent(scalers[m].transform(v), presence.get(m)) for m, v in values.items()}


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
