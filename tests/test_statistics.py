"""Speaker-bootstrap intervals, exact sign-flip tests on integer counts, Holm's adjustment, and their assembly."""

import itertools
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy.stats import permutation_test

from emofuse.metrics.statistics import (bootstrap_indices, compare_to_reference, holm, ratio_interval,
                                           sign_flip_p_value, smallest_p_value, speaker_counts)


def enumerated_p(differences) -> float:
    """The definition: the share of all 2^n sign patterns whose |sum| reaches the observed |sum|."""
    d = np.asarray(differences)
    patterns = np.array(list(itertools.product([-1, 1], repeat=len(d))))
    return float(np.mean(np.abs(patterns @ d) >= abs(d.sum())))


def test_ratio_interval_matches_a_hand_computation():
    correct, n = np.array([50, 40, 30]), np.array([60, 60, 60])
    indices = np.array([[0, 0, 1], [1, 2, 2], [0, 1, 2], [2, 2, 2]])  # four resamples of the three speakers
    # ratios 140/180, 100/180, 120/180, 90/180; sorted 90, 100, 120, 140 (/180); quantiles 0.25 and 0.75 with
    # linear interpolation sit at positions 0.75 and 2.25 of the sorted list
    low, high = ratio_interval(correct, n, indices, level=0.5)
    assert low == pytest.approx((90 + 0.75 * 10) / 180)
    assert high == pytest.approx((120 + 0.25 * 20) / 180)


def test_bootstrap_distribution_matches_enumeration_of_all_resamples():
    """Four speakers have 4^4 equally likely ordered resamples; the bootstrap's draws reproduce that distribution
    (a ratio of sums, so a speaker with fewer clips weighs less) and its interval is that distribution's quantiles."""
    correct, n = np.array([52, 31, 44, 38]), np.array([60, 58, 60, 54])
    every = np.array(list(itertools.product(range(4), repeat=4)))
    exact = np.array([Fraction(int(correct[t].sum()), int(n[t].sum())) for t in every])
    values, counts = np.unique(exact.astype(float), return_counts=True)
    cdf = np.cumsum(counts) / len(every)

    indices = bootstrap_indices(4, 50_000, seed=0)
    drawn, drawn_counts = np.unique(correct[indices].sum(1) / n[indices].sum(1), return_counts=True)
    assert np.allclose(drawn, values)
    assert np.abs(drawn_counts / len(indices) - counts / len(every)).max() < 0.005
    low, high = ratio_interval(correct, n, indices, level=0.95)
    # the exact 2.5% / 97.5% quantiles (cdf 0.0195 -> 0.0352 and 0.9648 -> 0.9805 around them: far from the edges)
    assert low == values[np.searchsorted(cdf, 0.025)]
    assert high == values[np.searchsorted(cdf, 0.975)]
    assert np.array_equal(bootstrap_indices(4, 100, seed=3), bootstrap_indices(4, 100, seed=3))


@pytest.mark.parametrize("n_units", [1, 2, 5, 6, 9, 12])
def test_sign_flip_p_value_is_the_enumerated_share_and_scipys(n_units):
    d = np.random.default_rng(n_units).integers(-6, 9, n_units)
    assert sign_flip_p_value(d) == enumerated_p(d)
    if n_units > 1:  # scipy wants two observations
        scipy_p = permutation_test((d,), lambda x, axis: x.sum(axis=axis), permutation_type="samples",
                                   n_resamples=np.inf, vectorized=True).pvalue
        assert sign_flip_p_value(d) == pytest.approx(scipy_p)


def test_six_folds_give_at_best_one_in_32():
    assert sign_flip_p_value(np.array([3, 5, 2, 1, 4, 7])) == 2 / 64 == smallest_p_value(6)
    assert sign_flip_p_value(np.array([-3, -5, -2, -1, -4, -7])) == 2 / 64
    assert smallest_p_value(24) == pytest.approx(1.19e-7, rel=0.01)


def test_ties_and_zero_differences_are_counted_exactly():
    # equal differences: a pattern's sum is 2 (2k - 6) for k plus signs, an exact integer, so the patterns whose
    # |sum| equals the observed 4 (k = 2 or 4) count as "at least as extreme": k in {0, 1, 2, 4, 5, 6}, 44 of 64
    tied = np.array([2, -2, 2, -2, 2, 2])
    assert sign_flip_p_value(tied) == enumerated_p(tied) == 44 / 64
    # a zero difference is no evidence either way: five +1 and a 0 are five units, so p = 2 / 32
    assert sign_flip_p_value(np.array([1, 1, 1, 1, 1, 0])) == 2 / 32
    assert sign_flip_p_value(np.array([3, 0, 0, 0, 0, 0])) == 1.0
    assert sign_flip_p_value(np.zeros(6, dtype=int)) == 1.0
    with pytest.raises(TypeError, match="integer"):
        sign_flip_p_value(np.array([0.01, 0.02], dtype=np.float32))


def test_large_unit_counts_are_exact_and_monte_carlo_beyond_the_limit():
    d = np.random.default_rng(0).integers(-3, 6, 24)
    exact = sign_flip_p_value(d)  # 2^24 patterns, enumerated in two halves
    estimate = sign_flip_p_value(d, max_exact_units=10, n_resamples=200_000, seed=1)
    assert estimate == pytest.approx(exact, abs=0.004)
    assert estimate == sign_flip_p_value(d, max_exact_units=10, n_resamples=200_000, seed=1)  # fixed seed


def test_holm_matches_a_hand_computation():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04, then running maximum 0.03, 0.06, 0.06
    assert np.allclose(holm([0.01, 0.04, np.nan, 0.03]), [0.03, 0.06, np.nan, 0.06], equal_nan=True)
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]


def predictions_fixture(rng, extra_correct: dict[int, int] | None = None) -> pd.DataFrame:
    """Two seeds x 6 folds x 4 speakers x 10 clips; ``extra_correct`` turns that many wrong clips of each of a
    fold's first speaker right (per seed)."""
    rows = []
    for seed in (0, 1):
        for fold in range(1, 7):
            for speaker in range(4):
                actor = (fold - 1) * 4 + speaker + 1
                right = rng.random(10) < 0.7
                fixes = (extra_correct or {}).get(fold, 0) if speaker == 0 else 0
                right[np.flatnonzero(~right)[:fixes]] = True
                for clip in range(10):
                    rows.append({"seed": seed, "clip": f"{actor}-{clip}", "fold": fold, "actor": actor, "label": "a",
                                 "pred": "a" if right[clip] else "b"})
    return pd.DataFrame(rows)


def test_compare_to_reference_works_from_counts_summed_over_seeds():
    reference = predictions_fixture(np.random.default_rng(0))
    better = reference.copy()
    # two more clips right in every fold (one per seed): equal integer differences per fold
    for fold in range(1, 7):
        for seed in (0, 1):
            wrong = better.index[(better["fold"] == fold) & (better["seed"] == seed) & (better["pred"] == "b")][:1]
            better.loc[wrong, "pred"] = "a"
    table = compare_to_reference({"ref": reference, "better": better}, "ref", n_resamples=2000).set_index("method")

    counts = speaker_counts(better, reference)
    assert (counts["n"] == 20).all() and len(counts) == 24  # 10 clips x 2 seeds per speaker
    assert table.loc["better", "accuracy_pooled"] == (better["label"] == better["pred"]).mean()
    assert table.loc["better", "delta_vs_reference"] == pytest.approx(12 / 480)
    assert table.loc["better", "p_fold"] == 2 / 64  # six equal fold differences of +2: the smallest p there is
    per_speaker = (counts["correct"] - counts["correct_reference"]).to_numpy()
    assert table.loc["better", "p_speaker"] == enumerated_p(per_speaker[per_speaker != 0])
    assert table.loc["better", "ci_low"] <= table.loc["better", "accuracy_pooled"] <= table.loc["better", "ci_high"]
    assert 0 <= table.loc["better", "delta_ci_low"] <= 12 / 480 <= table.loc["better", "delta_ci_high"]
    assert np.isnan(table.loc["ref", "p_fold"]) and np.isnan(table.loc["ref", "delta_vs_reference"])
    assert table.loc["better", "p_fold_holm"] == table.loc["better", "p_fold"]  # one comparison: nothing to adjust

    with pytest.raises(ValueError, match="short against ref: paired counts need the same scored clips"):
        compare_to_reference({"ref": reference, "short": better.iloc[:-1]}, "ref")
    moved = reference.assign(fold=np.where(reference["seed"] == 1, reference["fold"] % 6 + 1, reference["fold"]))
    with pytest.raises(ValueError, match="more than one fold"):
        speaker_counts(moved)
