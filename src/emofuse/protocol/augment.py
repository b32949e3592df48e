"""Training on augmented copies of the training clips' audio (``features.augment``).

Each clip has ``copies`` corrupted copies (data/waveform_augment.py: per copy one kind drawn among
``features.augment.kinds`` and its ranges drawn), rendered and extracted once and cached like clean audio
(features/conditioned.py). Every epoch each training clip is fed clean with probability ``p_clean``, else one of
its copies, drawn from the seed, fold and epoch alone (a resumed run draws alike). Validation and test clips, the
fold's standardisation statistics and the linear peer stay clean: the model learns from the copies, and is selected
and scored as without them. Under speaker normalisation a training speaker's statistics come from the same epoch's
mix of clean clips and copies (their enrolment draws included), as a deployed speaker's enrolment clips are recorded
under whatever conditions they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emofuse.config.schema import ExperimentConfig
from emofuse.datasets.feature_set import FeatureSet
from emofuse.datasets.normalize import replace_rows, select_rows
from emofuse.features.cache import FeatureCache
from emofuse.protocol.test_conditions import audio_copies, conditioned_audio


@dataclass
class TrainingCopies:
    clean: np.ndarray | list  # every clip's clean audio features (rows of the feature set)
    copies: list[np.ndarray | list]  # every clip's features in each augmented copy
    p_clean: float
    seed: int

    def draw(self, rows: np.ndarray, fold: int, epoch: int) -> dict[str, np.ndarray | list]:
        """The audio features of ``rows`` for this epoch: each clean or one of its copies."""
        rng = np.random.default_rng([self.seed, fold, epoch, 0xA06])
        which = np.where(rng.random(len(rows)) < self.p_clean, 0, rng.integers(1, len(self.copies) + 1, len(rows)))
        values = select_rows(self.clean, rows)
        for k, copy in enumerate(self.copies, start=1):
            chosen = np.flatnonzero(which == k)
            values = replace_rows(values, chosen, copy, rows[chosen])
        return {"audio": values}


def training_copies(config: ExperimentConfig, fs: FeatureSet, data_dir: Path | None, cache: FeatureCache,
                    progress: bool = True) -> TrainingCopies | None:
    """The run's augmented copies of every clip's audio (None without ``features.augment``)."""
    augment = config.features.augment
    if augment is None:
        return None
    kinds = list(augment.kinds.values())
    wanted = {f"augment_{c}": conditioned_audio(config.features, kinds, copy_index=c) for c in range(augment.copies)}
    copies = audio_copies(config, fs, data_dir, cache, wanted, progress)
    return TrainingCopies(fs.features["audio"], list(copies.values()), augment.p_clean, config.seed)
