"""What a model knows of a speaker: the three speaker-normalisation settings of cross-validation.

- ``none``: raw features (standardised only with the fold's training statistics, as always).
- ``transductive``: every speaker, test speakers included, standardised with all of its own clips.
- ``inductive``: training speakers as in transductive; a held-out speaker is standardised with
  ``adapt_clips`` (k) enrolment clips of its own, drawn with the run's seed, and those clips are
  never scored. k = 0: a typical training speaker's statistics instead (no enrolment at all).

Validation speakers are held out like test speakers (their own k enrolment clips, left out of the
validation score): they stand in for test speakers when the epoch is selected, so the selection
sees the condition the test score, and a deployment, meets. The draw is per speaker (a seeded
permutation of its clips, the first k taken), so a speaker enrols with the same clips in every
fold, and a smaller k's clips are part of a larger k's.

How k clips become a speaker's statistics is ``features.enrolment`` (``features/normalize.Enrolment``):
their own mean and std (``full``), their own mean with the typical training speaker's std (``mean``),
both shrunk toward the typical speaker (``shrink``), or ``auto``: per fold and modality, the
shrinkage strengths whose k-clip statistics best reproduce the validation speakers' all-clip
normalisation over random k-clip draws (label-free; the typical speaker, i.e. no enrolment, is one
of the candidates). With ``features.train_draws`` the training speakers are standardised the same
way from k random clips of their own, redrawn every epoch (train as you test).
"""

from __future__ import annotations

import math
import zlib
from typing import Callable

import numpy as np
import pandas as pd

from emofuse.config.schema import FeaturesConfig
from emofuse.protocol.folds import Fold
from emofuse.datasets.feature_set import FeatureSet
from emofuse.datasets.normalize import (NAMED_ENROLMENTS, Enrolment, Standardizer, Values, floored_std, is_clips,
                                        select_rows, shrunk, speaker_normalize, typical_speaker)
from emofuse.core.registry import ConfigError

EnrolmentPool = Callable[[pd.DataFrame], np.ndarray]
"""A test speaker's clips (rows of FeatureSet.meta) -> a boolean mask of those its enrolment may be drawn from.

A stress test's hook (e.g. only high-arousal clips, which needs labels): never a user setting."""


def speaker_normalized(fs: FeatureSet) -> list[str]:
    """The modalities that speaker normalisation applies to: every one but face clips."""
    return [m for m, v in fs.features.items() if not is_clips(v)]


def draw_enrolment(meta: pd.DataFrame, k: int, seed: int, pool: EnrolmentPool | None = None) -> np.ndarray:
    """A boolean mask over ``meta``'s rows: k enrolment clips per speaker, drawn from ``pool`` where given."""
    enrolled = np.zeros(len(meta), bool)
    clips = meta["clip"].to_numpy()
    for speaker, rows in meta.groupby("actor", sort=True).indices.items():
        if len(rows) < k + 1:
            raise ConfigError(f"features.adapt_clips: {k}: speaker {speaker} has {len(rows)} clips; inductive "
                              f"normalisation needs k enrolment clips and at least one more to score")
        rng = np.random.default_rng([seed, zlib.crc32(str(speaker).encode())])
        order = rows[np.argsort(clips[rows], kind="stable")][rng.permutation(len(rows))]
        if pool is not None:
            order = order[np.asarray(pool(meta.iloc[order]), bool)]
            if len(order) < k:
                raise ConfigError(f"enrolment pool: speaker {speaker} has {len(order)} eligible clips, fewer than "
                                  f"features.adapt_clips: {k}")
        enrolled[order[:k]] = True
    return enrolled


PRIOR_GRID = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, math.inf)
"""``auto``'s candidate strengths (in clips) of the typical speaker in the mean and, separately, in the variance."""
CRITERION_DRAWS = 20
"""k-clip draws per validation speaker that ``auto`` scores each candidate on."""


def _clip_moments(values: Values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per clip: frame count, mean and mean square of each dimension (a clip vector is one frame)."""
    if isinstance(values, list):
        rows = [np.asarray(v, np.float64) for v in values]
        return (np.array([len(r) for r in rows], float), np.stack([r.mean(0) for r in rows]),
                np.stack([np.square(r).mean(0) for r in rows]))
    rows = np.asarray(values, np.float64)
    return np.ones(len(rows)), rows, np.square(rows)


def _pooled(count: np.ndarray, mean: np.ndarray, square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance over every frame of the given clips."""
    weight = count / count.sum()
    mu = weight @ mean
    return mu, np.maximum(weight @ square - mu**2, 0.0)


def choose_enrolment(values: Values, speakers: np.ndarray, typical: Standardizer, k: int, seed: int,
                     grid: tuple[float, ...] = PRIOR_GRID, draws: int = CRITERION_DRAWS) -> tuple[Enrolment, float]:
    """The candidate (mean prior, variance prior) whose statistics from k random clips of a speaker put that speaker's
    other clips closest (mean squared difference, in standard deviations) to where all of the speaker's clips put them,
    averaged over ``draws`` draws per speaker of ``speakers`` (a fold's validation speakers: never a test speaker);
    returns it and its error. Labels play no part; the typical speaker alone (inf, inf) is a candidate, so k clips are
    used only as far as they beat none."""
    speakers = np.asarray(speakers)
    prior = np.asarray(grid, float)[:, None]
    error, terms = 0.0, 0
    for s in np.unique(speakers):
        count, mean, square = _clip_moments(select_rows(values, np.flatnonzero(speakers == s)))
        if len(count) <= k:
            continue
        own_mean, own_var = _pooled(count, mean, square)
        own_std = np.maximum(np.sqrt(own_var), 1e-6)
        rng = np.random.default_rng([seed, zlib.crc32(str(s).encode())])
        for _ in range(draws):
            order = rng.permutation(len(count))
            enrol, scored = order[:k], order[k:]
            m_k, v_k = _pooled(count[enrol], mean[enrol], square[enrol])
            means = shrunk(k, m_k, prior, typical.mean)  # (A, D)
            stds = floored_std(shrunk(k, v_k, prior, typical.std**2), typical)  # (B, D)
            # E over the scored frames of ((x - mean_a) / std_b - (x - own_mean) / own_std)^2 = u^2 E[x^2] + 2uc E[x] + c^2
            mu, sq = mean[scored].mean(0), square[scored].mean(0)
            u = 1 / stds - 1 / own_std  # (B, D)
            c = own_mean / own_std - means[:, None, :] / stds[None, :, :]  # (A, B, D)
            error = error + (u**2 * sq + 2 * u * c * mu + c**2).mean(-1)
            terms += 1
    if terms == 0:
        raise ConfigError(f"features.enrolment: auto: no speaker to choose on has more than features.adapt_clips: {k} clips")
    error = error / terms
    a, b = np.unravel_index(np.argmin(error), error.shape)
    return Enrolment(float(grid[a]), float(grid[b])), float(error[a, b])


class SpeakerInputs:
    """Every clip's features under a run's speaker-normalisation setting, and, per fold, the rows and
    features it trains on, selects on and scores."""

    def __init__(self, fs: FeatureSet, features: FeaturesConfig, seed: int, pool: EnrolmentPool | None = None):
        self.setting, self.k, self.config, self.seed = features.speaker_norm, features.adapt_clips, features, seed
        self.raw, self.meta = fs.features, fs.meta
        self.speakers = fs.meta["actor"].to_numpy()
        self.normalized = speaker_normalized(fs) if features.per_speaker else []
        # a modality some samples lack (a corpus without it): its statistics come from the samples that have it, and a
        # speaker with none gets the typical speaker's (their values are zeros, replaced by the training mean later)
        self.presence = {m: fs.present(m) for m in fs.features}
        # every clip standardised with all of its speaker's clips: training speakers always, everyone unless inductive
        self.own = {m: self._own(m, v) if m in self.normalized else v for m, v in fs.features.items()}
        none = np.zeros(len(fs.meta), bool)
        self.enrolment = {"val": none, "test": none}
        if self.inductive and self.k > 0:
            self.enrolment = {"val": draw_enrolment(fs.meta, self.k, seed),
                              "test": draw_enrolment(fs.meta, self.k, seed, pool)}
        self._fold_stats: dict[Fold, tuple[dict[str, Standardizer], dict[str, Enrolment]]] = {}

    def _own(self, m: str, values: Values) -> Values:
        present = self.presence[m]
        if present.all():
            return speaker_normalize(values, self.speakers)
        rows = np.flatnonzero(present)
        typical = typical_speaker(select_rows(values, rows), self.speakers[rows])
        return speaker_normalize(values, self.speakers, present, typical=typical)

    @property
    def inductive(self) -> bool:
        return self.setting == "inductive"

    @property
    def train_draws(self) -> bool:
        return self.inductive and self.config.train_draws

    def fold_statistics(self, fold: Fold) -> tuple[dict[str, Standardizer], dict[str, Enrolment]]:
        """Per speaker-normalised modality: the fold's typical training speaker and its enrolment estimator."""
        if fold not in self._fold_stats:
            all_train = np.flatnonzero(np.isin(self.speakers, fold.train_actors))
            all_val = np.flatnonzero(np.isin(self.speakers, fold.val_actors)) if len(fold.val_actors) else all_train
            typical, estimators = {}, {}
            for m in self.normalized:
                train, val = (rows[self.presence[m][rows]] for rows in (all_train, all_val))
                val = val if len(val) else train  # no validation speaker has the modality: choose on training ones
                typical[m] = typical_speaker(select_rows(self.raw[m], train), self.speakers[train])
                estimators[m] = self._estimator(m, val, typical[m])
            self._fold_stats[fold] = typical, estimators
        return self._fold_stats[fold]

    def _estimator(self, m: str, val: np.ndarray, typical: Standardizer) -> Enrolment:
        setting = self.config.enrolment
        if setting in NAMED_ENROLMENTS:
            return NAMED_ENROLMENTS[setting]
        if setting == "shrink":
            return Enrolment(self.config.shrink_clips, self.config.shrink_clips)
        speakers, k = self.speakers[val], self.k
        if not (self.inductive and k > 0):  # only predict's speaker groups use it: any k the speakers allow
            most = int(np.unique(speakers, return_counts=True)[1].max())
            if most < 2:
                return NAMED_ENROLMENTS["mean"]  # no speaker with two clips: nothing to choose on
            k = min(max(k, 1), most - 1)
        return choose_enrolment(select_rows(self.raw[m], val), speakers, typical, k, self.seed)[0]

    def split(self, fold: Fold) -> list[tuple[np.ndarray, dict[str, Values]]]:
        """(rows, features) of the fold's training, validation and test clips; enrolment clips are left out."""
        train = np.flatnonzero(np.isin(self.speakers, fold.train_actors))
        out = [(train, {m: select_rows(v, train) for m, v in self.own.items()})]
        for role, actors in (("val", fold.val_actors), ("test", fold.test_actors)):
            rows = np.flatnonzero(np.isin(self.speakers, actors))
            values = self._held_out(rows, role, fold) if self.inductive else {m: select_rows(v, rows) for m, v in self.own.items()}
            scored = np.flatnonzero(~self.enrolment[role][rows])
            out.append((rows[scored], {m: select_rows(v, scored) for m, v in values.items()}))
        return out

    def _held_out(self, rows: np.ndarray, role: str, fold: Fold) -> dict[str, Values]:
        typical, estimators = self.fold_statistics(fold)
        out = {}
        for m, values in self.raw.items():
            mine = select_rows(values, rows)
            out[m] = mine if m not in self.normalized else speaker_normalize(
                mine, self.speakers[rows], self.enrolment[role][rows] & self.presence[m][rows], estimators[m], typical[m])
        return out

    def training_draw(self, fold: Fold, epoch: int, raw: dict[str, Values] | None = None) -> dict[str, Values]:
        """Train as you test: the fold's training clips, each speaker standardised through the fold's estimator from
        k clips of their own drawn for this epoch (from the seed, fold and epoch alone: a resumed run redraws alike);
        with ``train_draw_clips`` k is drawn per speaker too, k = 0 giving the typical speaker's statistics.
        ``raw``: this epoch's features of the training clips for some modalities (augmented copies), in place of the
        clean ones; a speaker's enrolment clips are then drawn from them too."""
        train = np.flatnonzero(np.isin(self.speakers, fold.train_actors))
        typical, estimators = self.fold_statistics(fold)
        enrolled = np.zeros(len(train), bool)  # a speaker drawn with no clip gets the typical speaker's statistics
        speakers = self.speakers[train]
        for s in np.unique(speakers):
            mine = np.flatnonzero(speakers == s)
            rng = np.random.default_rng([self.seed, fold.index, epoch, zlib.crc32(str(s).encode())])
            k = self.k if self.config.train_draw_clips is None else int(rng.choice(self.config.train_draw_clips))
            enrolled[rng.choice(mine, size=min(k, len(mine)), replace=False)] = True
        raw = raw or {}
        return {m: speaker_normalize(raw[m] if m in raw else select_rows(self.raw[m], train), speakers,
                                     enrolled & self.presence[m][train], estimators[m], typical[m]) for m in self.normalized}

    def training_values(self, fold: Fold, epoch: int, raw: dict[str, Values]) -> dict[str, Values]:
        """This epoch's features of the fold's training clips where they differ from the clean, fixed ones: fresh
        enrolment draws (``train_draws``) and ``raw``'s modalities (augmented copies), each normalised per speaker
        as the setting normalises training speakers (without draws: with all of the speaker's clips this epoch; the
        copies are of audio, which every clip has)."""
        if self.train_draws:
            return {**raw, **self.training_draw(fold, epoch, raw)}
        speakers = self.speakers[np.isin(self.speakers, fold.train_actors)]
        return {m: speaker_normalize(values, speakers) if m in self.normalized else values for m, values in raw.items()}

    def enrolment_table(self, fold: Fold) -> pd.DataFrame:
        """The fold's enrolment clips (validation and test speakers): speaker, role, clip, emotion."""
        parts = []
        for role, actors in (("val", fold.val_actors), ("test", fold.test_actors)):
            rows = np.flatnonzero(np.isin(self.speakers, actors) & self.enrolment[role])
            parts.append(pd.DataFrame({"speaker": self.speakers[rows], "role": role,
                                       "clip": self.meta["clip"].to_numpy()[rows], "emotion": self.meta["emotion"].to_numpy()[rows]}))
        return pd.concat(parts, ignore_index=True)


def enrolment_record(table: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """An enrolment table as {role: {speaker: [clips]}}, for results.json."""
    return {role: {str(s): sorted(g["clip"]) for s, g in table[table["role"] == role].groupby("speaker")}
            for role in ("val", "test")}
