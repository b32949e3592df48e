"""Intervals over the independent units of the design (folds, i.e. groups of test speakers), not seeds x folds."""

from __future__ import annotations

import numpy as np
from scipy import stats


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean of independent values (e.g. one seed-averaged accuracy
    per fold); the interval is (nan, nan) with fewer than two values."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(mean - half), float(mean + half)
