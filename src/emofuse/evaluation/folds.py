"""Speaker-independent folds: test actors per fold, and validation actors drawn from the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    index: int
    test_actors: tuple[int, ...]
    val_actors: tuple[int, ...]
    train_actors: tuple[int, ...]

    def check_disjoint(self) -> None:
        test, val, train = set(self.test_actors), set(self.val_actors), set(self.train_actors)
        if test & val or test & train or val & train:
            raise AssertionError(f"fold {self.index}: actor sets overlap (test {test}, val {val}, train {train})")


def actor_folds(actors, n_folds: int, val_fraction: float, seed: int) -> list[Fold]:
    """Contiguous groups of the sorted actors are the test sets (24 actors, 6 folds: 1-4, 5-8, ...).

    Validation actors come only from the fold's training actors, balanced between odd (male) and
    even (female) ids where possible, and chosen by a seeded generator.
    """
    actors = sorted(set(int(a) for a in actors))
    if len(actors) < n_folds:
        raise ValueError(f"{len(actors)} actors cannot make {n_folds} speaker-independent folds")
    groups = np.array_split(np.array(actors), n_folds)
    folds = []
    for i, group in enumerate(groups):
        rest = [a for a in actors if a not in set(group.tolist())]
        n_val = min(len(rest) - 1, max(1, round(val_fraction * len(rest))))
        rng = np.random.default_rng([seed, i])
        by_sex = [rng.permutation([a for a in rest if a % 2 == parity]).tolist() for parity in (1, 0)]
        start = int(rng.integers(2))  # which sex gets the extra actor when n_val is odd
        val: list[int] = []
        while len(val) < n_val:
            pool = by_sex[(start + len(val)) % 2] or by_sex[(start + len(val) + 1) % 2]
            val.append(pool.pop(0))
        fold = Fold(
            index=i + 1,
            test_actors=tuple(group.tolist()),
            val_actors=tuple(sorted(val)),
            train_actors=tuple(a for a in rest if a not in val),
        )
        fold.check_disjoint()
        folds.append(fold)
    return folds
