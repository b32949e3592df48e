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
"""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np
import pandas as pd

from emofuse.config import FeaturesConfig
from emofuse.evaluation.folds import Fold
from emofuse.features.dataset import FeatureSet
from emofuse.features.normalize import Values, is_clips, select_rows, speaker_normalize, typical_speaker
from emofuse.registry import ConfigError

HIGH_AROUSAL = ("angry", "happy", "fearful", "surprised")
LOW_AROUSAL = ("neutral", "calm", "sad")  # disgust belongs to neither half

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


class SpeakerInputs:
    """Every clip's features under a run's speaker-normalisation setting, and, per fold, the rows and
    features it trains on, selects on and scores."""

    def __init__(self, fs: FeatureSet, features: FeaturesConfig, seed: int, pool: EnrolmentPool | None = None):
        self.setting, self.k = features.speaker_norm, features.adapt_clips
        self.raw, self.meta = fs.features, fs.meta
        self.speakers = fs.meta["actor"].to_numpy()
        self.normalized = speaker_normalized(fs) if features.per_speaker else []
        # every clip standardised with all of its speaker's clips: training speakers always, everyone unless inductive
        self.own = {m: speaker_normalize(v, self.speakers) if m in self.normalized else v for m, v in fs.features.items()}
        none = np.zeros(len(fs.meta), bool)
        self.enrolment = {"val": none, "test": none}
        if self.inductive and self.k > 0:
            self.enrolment = {"val": draw_enrolment(fs.meta, self.k, seed),
                              "test": draw_enrolment(fs.meta, self.k, seed, pool)}

    @property
    def inductive(self) -> bool:
        return self.setting == "inductive"

    def split(self, fold: Fold) -> list[tuple[np.ndarray, dict[str, Values]]]:
        """(rows, features) of the fold's training, validation and test clips; enrolment clips are left out."""
        train = np.flatnonzero(np.isin(self.speakers, fold.train_actors))
        out = [(train, {m: select_rows(v, train) for m, v in self.own.items()})]
        for role, actors in (("val", fold.val_actors), ("test", fold.test_actors)):
            rows = np.flatnonzero(np.isin(self.speakers, actors))
            values = self._held_out(rows, role, train) if self.inductive else {m: select_rows(v, rows) for m, v in self.own.items()}
            scored = np.flatnonzero(~self.enrolment[role][rows])
            out.append((rows[scored], {m: select_rows(v, scored) for m, v in values.items()}))
        return out

    def _held_out(self, rows: np.ndarray, role: str, train: np.ndarray) -> dict[str, Values]:
        out = {}
        for m, values in self.raw.items():
            mine = select_rows(values, rows)
            if m not in self.normalized:
                out[m] = mine
            elif self.k == 0:
                out[m] = typical_speaker(select_rows(values, train), self.speakers[train]).transform(mine)
            else:
                out[m] = speaker_normalize(mine, self.speakers[rows], self.enrolment[role][rows])
        return out

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
