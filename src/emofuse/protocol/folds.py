"""Speaker-independent folds: test speakers per fold, and validation speakers drawn from the rest.

Speakers are ids of any kind (RAVDESS actor numbers, a manifest's speaker strings), ordered by a natural
sort ("2" before "10"). Without a fixed protocol the test sets are contiguous groups of that order; a
manifest's ``fold`` or ``split`` column fixes them instead. Validation speakers always come from a fold's
training speakers, balanced over the speakers' gender groups where known, and drawn by a seeded generator.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emofuse.data.speakers import natural_key, normalise_gender
from emofuse.core.registry import ConfigError

GENDER_ORDER = ("male", "female")  # the order groups take turns in (RAVDESS's odd actors first), then others sorted


@dataclass(frozen=True)
class Fold:
    index: int
    test_actors: tuple  # speakers; named actors after RAVDESS, the first corpus
    val_actors: tuple
    train_actors: tuple

    def check_disjoint(self) -> None:
        test, val, train = set(self.test_actors), set(self.val_actors), set(self.train_actors)
        if test & val or test & train or val & train:
            raise AssertionError(f"fold {self.index}: speaker sets overlap (test {test}, val {val}, train {train})")


def _group_order(groups: Mapping[Hashable, str]) -> list[str]:
    return [*GENDER_ORDER, *sorted(set(groups.values()) - set(GENDER_ORDER))]


def draw_validation(rest: list, n_val: int, rng: np.random.Generator, groups: Mapping[Hashable, str] | None) -> list:
    """``n_val`` of the speakers in ``rest``, the groups taking turns (a random one first), each group's speakers
    in a random order; a group that runs out gives its turn to the next."""
    order = _group_order(groups) if groups else [None]
    pools = [rng.permutation([s for s in rest if (groups[s] if groups else None) == g]).tolist() for g in order]
    start = int(rng.integers(len(pools)))  # which group gets the extra speaker when n_val is odd
    val: list = []
    while len(val) < n_val:
        turn = start + len(val)
        pool = next(pools[(turn + k) % len(pools)] for k in range(len(pools)) if pools[(turn + k) % len(pools)])
        val.append(pool.pop(0))
    return val


def _n_val(rest: list, val_fraction: float) -> int:
    return min(len(rest) - 1, max(1, round(val_fraction * len(rest))))


def _validation(rest: list, val_fraction: float, rng: np.random.Generator, groups: Mapping[Hashable, str] | None,
                corpus_of: Mapping[Hashable, str] | None) -> list:
    """Validation speakers drawn from ``rest``; with several corpora (``corpus_of``: speaker -> corpus), from each
    corpus's speakers in ``rest`` in its share (none of a corpus with one speaker there, who trains)."""
    if corpus_of is None:
        return draw_validation(rest, _n_val(rest, val_fraction), rng, groups)
    val = []
    for corpus in dict.fromkeys(corpus_of[s] for s in rest):
        own = [s for s in rest if corpus_of[s] == corpus]
        val += draw_validation(own, _n_val(own, val_fraction), rng, groups)  # 0 for a corpus of one speaker here
    if not val:
        raise ConfigError("no corpus has two speakers outside a fold's test speakers to draw validation speakers from")
    return val


def _fold(index: int, test: list, rest: list, val: list) -> Fold:
    fold = Fold(index, tuple(test), tuple(sorted(val, key=natural_key)), tuple(s for s in rest if s not in val))
    fold.check_disjoint()
    return fold


def speaker_folds(speakers: Iterable, n_folds: int, val_fraction: float, seed: int,
                  groups: Mapping[Hashable, str] | None = None,
                  corpus_of: Mapping[Hashable, str] | None = None) -> list[Fold]:
    """Contiguous groups of the naturally sorted speakers are the test sets (24 speakers, 6 folds: 1-4, 5-8, ...);
    validation speakers come from each fold's training speakers, balanced over ``groups`` (speaker -> gender). With
    several corpora (``corpus_of``), each corpus's speakers are grouped so, so that every fold tests speakers of every
    corpus with as many speakers as folds, the groups dealt so that the folds differ by one speaker at most, and
    validation speakers are drawn per corpus."""
    speakers = sorted(set(speakers), key=natural_key)
    if len(speakers) < 2:
        raise ConfigError(f"{len(speakers)} speaker cannot make speaker-independent folds: a manifest needs at least 2 "
                          "speakers (or a split column)")
    if len(speakers) < n_folds:
        raise ConfigError(f"{len(speakers)} speakers cannot make {n_folds} speaker-independent folds "
                          f"(set protocol.n_folds to at most {len(speakers)})")
    if corpus_of is None:
        fold_of = contiguous_groups(speakers, n_folds)
    else:  # a corpus's larger groups go to the folds after the previous corpora's larger ones: folds of even size
        fold_of, offset = {}, 0
        for corpus in dict.fromkeys(corpus_of[s] for s in speakers):
            own = [s for s in speakers if corpus_of[s] == corpus]
            fold_of.update({s: (k - 1 + offset) % n_folds + 1 for s, k in contiguous_groups(own, n_folds).items()})
            offset += len(own) % n_folds
    return fixed_folds(fold_of, val_fraction, seed, groups, hint="lower protocol.n_folds or use more speakers",
                       corpus_of=corpus_of)


def contiguous_groups(speakers: list, n_folds: int) -> dict:
    """Speaker -> fold (1-based): ``n_folds`` contiguous groups of the ordered ``speakers``, the first ones larger."""
    return {speakers[j]: i + 1 for i, idx in enumerate(np.array_split(np.arange(len(speakers)), n_folds)) for j in idx}


def actor_folds(actors, n_folds: int, val_fraction: float, seed: int) -> list[Fold]:
    """RAVDESS: speaker folds of the actor numbers, odd actors male and even ones female."""
    actors = sorted(set(int(a) for a in actors))
    return speaker_folds(actors, n_folds, val_fraction, seed, {a: GENDER_ORDER[a % 2 == 0] for a in actors})


def fixed_folds(fold_of: Mapping[Hashable, int], val_fraction: float, seed: int,
                groups: Mapping[Hashable, str] | None = None, hint: str = "",
                corpus_of: Mapping[Hashable, str] | None = None) -> list[Fold]:
    """Fold k tests the speakers ``fold_of`` gives k (a manifest's ``fold`` column, or speaker_folds' groups);
    validation speakers are drawn from the others as usual (per corpus with ``corpus_of``). ``hint`` ends the error
    of a fold with too few others."""
    speakers = sorted(fold_of, key=natural_key)
    folds = []
    for k in sorted(set(fold_of.values())):
        test = [s for s in speakers if fold_of[s] == k]
        rest = [s for s in speakers if fold_of[s] != k]
        if len(rest) < 2:
            raise ConfigError(f"fold {k}: {len(rest)} speaker outside it; training and validation need 2 or more"
                              + (f" ({hint})" if hint else ""))
        rng = np.random.default_rng([seed, k - 1])
        folds.append(_fold(int(k), test, rest, _validation(rest, val_fraction, rng, groups, corpus_of)))
    return folds


def split_fold(split_of: Mapping[Hashable, str], val_fraction: float, seed: int,
               groups: Mapping[Hashable, str] | None = None,
               corpus_of: Mapping[Hashable, str] | None = None) -> list[Fold]:
    """A ``split`` column (train / val / test): one fold; without val rows, validation speakers are drawn from the
    training speakers (per corpus with ``corpus_of``)."""
    speakers = sorted(split_of, key=natural_key)
    named = {part: [s for s in speakers if split_of[s] == part] for part in ("train", "val", "test")}
    if not named["test"] or not named["train"]:
        raise ConfigError(f"the split column needs train and test rows (has {sorted(set(split_of.values()))})")
    rest = named["train"] + named["val"]
    val = named["val"]
    if not val:
        if len(rest) < 2:
            raise ConfigError("the split column has no val rows and only one training speaker to draw validation from")
        val = _validation(rest, val_fraction, np.random.default_rng([seed, 0]), groups, corpus_of)
    return [_fold(1, named["test"], sorted(rest, key=natural_key), val)]


def dataset_folds(meta: pd.DataFrame, n_folds: int, val_fraction: float, seed: int) -> list[Fold]:
    """The folds of a FeatureSet's rows: fixed by its ``fold`` or ``split`` column where it has one, else built by
    speaker (``actor``), with validation balanced over ``gender`` where it has one, and by corpus where it has a
    ``corpus`` column (several corpora)."""
    per_speaker = meta.drop_duplicates("actor").set_index("actor")
    groups = per_speaker["gender"].map(normalise_gender).to_dict() if "gender" in meta else None
    corpus_of = per_speaker["corpus"].to_dict() if "corpus" in meta else None
    if "fold" in meta:
        return fixed_folds(per_speaker["fold"].astype(int).to_dict(), val_fraction, seed, groups, corpus_of=corpus_of)
    if "split" in meta:
        return split_fold(per_speaker["split"].to_dict(), val_fraction, seed, groups, corpus_of)
    return speaker_folds(per_speaker.index, n_folds, val_fraction, seed, groups, corpus_of)
