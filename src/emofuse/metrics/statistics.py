"""Intervals and paired tests for comparing methods under speaker-independent cross-validation.

The (seed, fold) runs of a comparison are not independent: the seeds of a fold share its test speakers, and
the speakers of a fold share its trained models. So everything here works from integer counts per unit,
summed over seeds (which averages the seeds out before any test):

- an interval for accuracy, and for a difference in accuracy, from a cluster bootstrap over test speakers
  (speakers are resampled with replacement, each carrying all its clips; clips are never resampled alone);
- a paired sign-flip permutation test over folds (the units that share nothing at test time) and over
  speakers, exact over all 2^n sign patterns. Differences are integer counts of correctly classified clips,
  so equal differences tie exactly, and so do a pattern's sum and the observed sum.

docs/statistics.md explains how to read the results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_EXACT_UNITS = 40  # 2^20 signed sums per half: exact enumeration stays within a few hundred MB and a second


def speaker_counts(predictions: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per test speaker: fold, clips scored ``n`` and clips correct, summed over seeds (one row per speaker, sorted
    by fold and speaker). With ``reference``, also ``correct_reference``: that method's correct clips among the
    same (seed, clip) pairs, which must be exactly the pairs ``predictions`` holds."""
    table = predictions[["seed", "clip", "fold", "actor"]].assign(correct=(predictions["label"] == predictions["pred"]).astype(np.int64))
    if reference is not None:
        other = reference[["seed", "clip"]].assign(correct_reference=(reference["label"] == reference["pred"]).astype(np.int64))
        table = table.merge(other, on=["seed", "clip"], how="inner", validate="one_to_one")
        if len(table) != len(predictions) or len(table) != len(reference):
            raise ValueError(f"paired counts need the same scored clips: {len(predictions)} and {len(reference)} "
                             f"(seed, clip) predictions, {len(table)} in common")
    folds_per_speaker = table.groupby("actor")["fold"].nunique()
    if (folds_per_speaker > 1).any():
        raise ValueError(f"speakers tested in more than one fold: {sorted(folds_per_speaker[folds_per_speaker > 1].index)}")
    columns = ["correct", "correct_reference"] if reference is not None else ["correct"]
    counts = table.assign(n=1).groupby(["fold", "actor"], sort=True)[["n", *columns]].sum()
    return counts.reset_index()


def bootstrap_indices(n_units: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_units) unit indices drawn with replacement; one fixed draw is shared by every method of a
    comparison, so their intervals move together."""
    return np.random.default_rng(seed).integers(0, n_units, size=(n_resamples, n_units))


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray, indices: np.ndarray,
                   level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of sum(numerator) / sum(denominator) over the resampled units (rows of ``indices``).

    With correct counts over clip counts this is the accuracy of the resampled speakers' clips; with differences of
    correct counts, the difference in accuracy."""
    numerator, denominator = np.asarray(numerator), np.asarray(denominator)
    ratios = numerator[indices].sum(axis=1) / denominator[indices].sum(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def paired_difference(predictions: pd.DataFrame, reference: pd.DataFrame, level: float = 0.95,
                      n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Pooled accuracy of ``predictions`` minus ``reference``'s on the same (seed, clip) predictions (columns seed,
    clip, fold, actor, label, pred), with a percentile cluster-bootstrap interval over test speakers (correct clips per
    speaker summed over seeds, paired)."""
    counts = speaker_counts(predictions, reference)
    n, difference = counts["n"].to_numpy(), (counts["correct"] - counts["correct_reference"]).to_numpy()
    low, high = ratio_interval(difference, n, bootstrap_indices(len(counts), n_resamples, seed), level)
    return {"difference": float(difference.sum() / n.sum()), "ci_low": low, "ci_high": high, "level": level,
            "n_speakers": len(counts), "interval": "cluster bootstrap over test speakers"}


def signed_sums(values: np.ndarray) -> np.ndarray:
    """All 2^n sums of ±values (index bit i set: values[i] subtracted)."""
    sums = np.zeros(1, dtype=np.int64)
    for v in values:
        sums = np.concatenate([sums + v, sums - v])
    return sums


def sign_flip_p_value(differences, n_resamples: int = 100_000, seed: int = 0,
                      max_exact_units: int = MAX_EXACT_UNITS) -> float:
    """Two-sided p of a paired sign-flip permutation test of sum(differences) = 0.

    Under the null each unit's difference is as likely negated, so p is the share of the 2^n sign patterns whose
    |sum| is at least the observed |sum|. Enumerated exactly (meet in the middle: the sums of the two halves'
    patterns, sorted, then counted with a binary search) up to ``max_exact_units`` units; beyond that, estimated from
    ``n_resamples`` random patterns with a fixed seed, as (hits + 1) / (n_resamples + 1). The smallest exact p with
    n non-zero differences is 2 / 2^n."""
    d = np.asarray(differences)
    if d.size and not np.issubdtype(d.dtype, np.integer):
        raise TypeError(f"sign_flip_p_value needs integer differences (counts), so that equal ones tie exactly; got {d.dtype}")
    d = d.astype(np.int64)
    if d.size == 0:
        return float("nan")
    observed = abs(int(d.sum()))
    if observed == 0:
        return 1.0
    if d.size <= max_exact_units:
        left = signed_sums(d[: d.size // 2])
        right = np.sort(signed_sums(d[d.size // 2:]))
        at_least = len(right) - np.searchsorted(right, observed - left, side="left")  # left + right >= observed
        at_most = np.searchsorted(right, -observed - left, side="right")  # left + right <= -observed
        return float((int(at_least.sum()) + int(at_most.sum())) / 2.0 ** d.size)
    signs = np.random.default_rng(seed).choice(np.array([-1, 1], dtype=np.int64), size=(n_resamples, d.size))
    hits = int((np.abs(signs @ d) >= observed).sum())
    return (hits + 1) / (n_resamples + 1)


def smallest_p_value(n_units: int) -> float:
    """The smallest two-sided p an exact sign-flip test over ``n_units`` units can give."""
    return 2.0 / 2.0 ** n_units


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error) of a family of p-values; NaN entries are left out of it."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m = len(order)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


def compare_to_reference(predictions: dict[str, pd.DataFrame], reference: str, level: float = 0.95,
                         n_resamples: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """One row per method: pooled accuracy with its speaker-bootstrap interval and, against ``reference``, the
    difference in accuracy with its interval, sign-flip p-values over folds and over speakers, and their Holm
    adjustments across the compared methods.

    ``predictions`` maps each method to its test predictions over all seeds (columns seed, clip, fold, actor,
    label, pred), as the runs' ``predictions.csv`` hold them."""
    indices = None
    rows = []
    for method, table in predictions.items():
        try:
            counts = speaker_counts(table, predictions[reference])
        except ValueError as err:
            raise ValueError(f"{method} against {reference}: {err}") from None
        if indices is None:
            indices = bootstrap_indices(len(counts), n_resamples, seed)
        n, correct = counts["n"].to_numpy(), counts["correct"].to_numpy()
        low, high = ratio_interval(correct, n, indices, level)
        row = {"method": method, "accuracy_pooled": correct.sum() / n.sum(), "ci_low": low, "ci_high": high,
               "n_speakers": len(counts), "n_folds": counts["fold"].nunique()}
        if method != reference:
            counts["difference"] = counts["correct"] - counts["correct_reference"]
            difference = counts["difference"].to_numpy()
            delta_low, delta_high = ratio_interval(difference, n, indices, level)
            row.update({
                "delta_vs_reference": difference.sum() / n.sum(), "delta_ci_low": delta_low, "delta_ci_high": delta_high,
                "p_fold": sign_flip_p_value(counts.groupby("fold")["difference"].sum().to_numpy(), seed=seed),
                "p_speaker": sign_flip_p_value(difference, seed=seed),
            })
        rows.append(row)
    out = pd.DataFrame(rows)
    for column in ("delta_vs_reference", "delta_ci_low", "delta_ci_high", "p_fold", "p_speaker"):
        if column not in out:
            out[column] = np.nan
    out["p_fold_holm"] = holm(out["p_fold"])
    out["p_speaker_holm"] = holm(out["p_speaker"])
    return out
