"""A finished cv run's fold models scored on their test speakers with another number of enrolment clips.

No training: each fold's selected weights and input statistics (standardizer.json) are read back, and its test
speakers are normalised as ``features.speaker_norm: inductive`` with k enrolment clips would (the run's seed and
estimator setting; k = 0: the typical training speaker, what `emofuse predict` gives a file on its own). With the
run's own k the predictions are the run's own. Answers: what does a model trained for k = 10 give a speaker who
records fewer clips, or none? The estimate stays nested: nothing is chosen here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.metrics.classification import predict
from emofuse.protocol.cross_validation import prepare_inputs, scored_fold
from emofuse.protocol.enrolment import EnrolmentPool
from emofuse.protocol.folds import dataset_folds
from emofuse.metrics.statistics import bootstrap_indices, ratio_interval, speaker_counts
from emofuse.features.cache import FeatureCache
from emofuse.inference.predict import Predictor
from emofuse.datasets.build import build_features
from emofuse.datasets.normalize import standardise
from emofuse.training.batches import TensorData


def predictions_at_k(run: Path, k: int, data: Path, cache: Path, pool: EnrolmentPool | None = None) -> pd.DataFrame:
    """One row per scored test clip of the run's folds (fold, actor, label, pred; corpus where several) with k enrolment clips per speaker,
    drawn from ``pool`` where given (e.g. one emotion's clips: what a speaker whose recordings are one-sided gives)."""
    predictor = Predictor(run)  # the fold models and their input statistics, loaded as predict loads them
    config = predictor.config
    fs = build_features(config.data, config.features, data, FeatureCache(cache), progress=False)
    features = config.features.model_copy(update={"speaker_norm": "inductive", "adapt_clips": k})
    inputs = prepare_inputs(fs, config.model_copy(update={"features": features}), pool)
    members = {member.index: member for member in predictor.folds}
    tables = []
    for fold in dataset_folds(fs.meta, config.protocol.n_folds, config.protocol.val_fraction, config.seed):
        member = members[fold.index]
        rows, values = inputs.split(scored_fold(config, fold))[2]  # held-out speakers' statistics as the run had them
        mask = fs.class_mask[rows] if fs.class_mask is not None else None  # a corpus decides among its own classes
        presence = {m: inputs.presence[m][rows] for m in fs.presence}  # a corpus without a modality: as in training
        preds = predict(member.model, TensorData(standardise(member.scalers, values, presence),
                                                 fs.meta["label"].to_numpy()[rows], class_mask=mask, presence=presence),
                        config.train.eval_batch_size)
        meta = fs.meta.iloc[rows]
        tables.append(pd.DataFrame({"seed": config.seed, "clip": meta["clip"].to_numpy(), "fold": fold.index,
                                    "actor": meta["actor"].to_numpy(), "label": preds.target,
                                    "pred": preds.probs.argmax(1),
                                    **({"corpus": meta["corpus"].to_numpy()} if "corpus" in meta else {})}))
    return pd.concat(tables, ignore_index=True)


def accuracy_with_interval(predictions: pd.DataFrame, level: float = 0.95, resamples: int = 10_000) -> dict:
    """Pooled accuracy and its cluster-bootstrap interval over test speakers (the independent units)."""
    counts = speaker_counts(predictions)
    low, high = ratio_interval(counts["correct"].to_numpy(), counts["n"].to_numpy(),
                               bootstrap_indices(len(counts), resamples, seed=0), level)
    return {"accuracy": float(np.mean(predictions["label"] == predictions["pred"])), "interval": [low, high],
            "level": level, "n_clips": int(len(predictions)), "n_speakers": int(len(counts))}
