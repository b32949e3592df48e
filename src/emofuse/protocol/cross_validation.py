"""Speaker-independent k-fold cross-validation of one config, resumable fold by fold.

Per fold: features are standardised with statistics of the training actors (optionally after
per-speaker normalisation, ``protocol/enrolment.py``), the model is trained on the training actors,
the epoch is selected on the validation actors, and the selected weights are scored once on the test
actors (less their enrolment clips under inductive normalisation). With ``protocol.refit`` the fold is then trained
again up to the selected epoch on its training and validation actors (statistics of those actors too), as the
deployed model of a final fit learns from every speaker, and that model is scored instead. With ``protocol.calibrate``
each fold also fits a temperature on its validation actors' predictions (``protocol/calibration.py``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from emofuse.config.loading import dump_config, recorded_config
from emofuse.config.schema import ExperimentConfig
from emofuse.core.console import listed, rounded
from emofuse.datasets.corruption import SPLITS, FoldCorruption, plants_corruption
from emofuse.protocol.calibration import calibration_summary, fit_fold_temperatures, fold_calibration
from emofuse.protocol.cartography import dynamics_recorders
from emofuse.metrics.calibration import CALIBRATION_FILE
from emofuse.metrics.classification import ClassificationEvaluator, classification_metrics, fold_figures, \
    per_corpus, predict
from emofuse.protocol.enrolment import EnrolmentPool, SpeakerInputs, enrolment_record
from emofuse.data.speakers import natural_key
from emofuse.protocol.folds import Fold, dataset_folds
from emofuse.protocol.linear_peer import PEER_PREDICTIONS, fit_peer, peer_summary
from emofuse.protocol.augment import TrainingCopies, training_copies
from emofuse.protocol.selection import run_selection
from emofuse.reporting.report import condition_lines
from emofuse.protocol.test_conditions import CONDITIONS_DIR, condition_summary, test_condition_copies, with_test_audio
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import FeatureSet
from emofuse.datasets.build import build_features
from emofuse.datasets.normalize import Standardizer, is_clips, select_rows, standardise
from emofuse.losses import LOSSES
from emofuse.models import create_model
from emofuse.models.encoders import compute_bound
from emofuse.core.registry import ConfigError
from emofuse.core.threads import thread_budget
from emofuse.core.atomic import atomic_torch_save
from emofuse.core.runs import atomic_write_text, logging_to, record_fingerprint, start_run, write_json
from emofuse.training import distributed
from emofuse.training.batches import RedrawnData, TensorData
from emofuse.training.budget import summarize_budgets
from emofuse.training.seeding import seed_everything
from emofuse.training.speaker_adversary import SpeakerAdversary
from emofuse.training.trainer import Trainer

log = logging.getLogger(__name__)


def data_record(fs: FeatureSet, data_dir: Path) -> dict:
    """What a run directory records of its data (data_fingerprint.json): what predict and export rebuild models from."""
    return {"sha256": fs.fingerprint, "data_dir": str(data_dir), "n_takes": len(fs.meta), "skipped_takes": fs.skipped,
            "feature_dims": fs.input_dims, "face_detection": fs.face_report, "class_names": list(fs.class_names),
            "sequence": fs.sequence}


def prepare_inputs(fs: FeatureSet, config: ExperimentConfig, enrolment_pool: EnrolmentPool | None = None) -> SpeakerInputs:
    return SpeakerInputs(fs, config.features, config.seed, enrolment_pool)


def fold_standardizers(inputs: SpeakerInputs, scalers: dict[str, Standardizer], fold: Fold) -> dict:
    """What `emofuse predict` needs to prepare new clips as this fold's were: the model inputs' statistics and,
    with speaker normalisation, a typical training speaker's (for a new speaker with too few clips of their own) and
    the enrolment estimator that turns a speaker's clips into their statistics."""
    out = {"inputs": {m: s.to_dict() for m, s in scalers.items()}}
    if inputs.normalized:
        typical, estimators = inputs.fold_statistics(fold)
        out["typical_speaker"] = {m: s.to_dict() for m, s in typical.items()}
        out["enrolment"] = {m: e.to_dict() for m, e in estimators.items()}
    return out


@dataclass
class FoldData:
    """A fold's train / validation / test data, standardised with statistics of its training actors."""

    train: TensorData
    val: TensorData
    test: TensorData
    scalers: dict[str, Standardizer]
    test_rows: np.ndarray  # the scored test clips' rows of the feature set
    val_rows: np.ndarray  # the validation clips' rows of the feature set
    corruption: FoldCorruption | None = None  # planted label noise / modality noise (data.label_noise, data.modality_noise)


def fold_data(fs: FeatureSet, inputs: SpeakerInputs, fold: Fold, corruption: FoldCorruption | None = None,
              modalities: list[str] | None = None, augment: TrainingCopies | None = None) -> FoldData:
    """``modalities``: only these (the linear peer's, which leaves face clips out); ``augment``: training clips fed
    clean or as one of their augmented copies, drawn each epoch (protocol/augment.py)."""
    label = fs.meta["label"].to_numpy()
    splits = inputs.split(fold)
    if modalities is not None:
        splits = [(rows, {m: values[m] for m in modalities}) for rows, values in splits]
    # who spoke each training clip, as an index among the fold's training speakers (speaker-adversarial training)
    speaker = np.searchsorted(np.sort(np.asarray(fold.train_actors)), fs.meta["actor"].to_numpy()[splits[0][0]])
    train_rows, train_values = splits[0]
    # a modality some samples lack: statistics of the training rows that have it; the others' values become 0 (the mean)
    scalers = {m: Standardizer.for_values(values).fit(select_rows(values, np.flatnonzero(inputs.presence[m][train_rows])))
               for m, values in train_values.items()}
    class_mask = fs.class_mask
    parts = []
    for split, (rows, values) in zip(SPLITS, splits):
        presence = {m: inputs.presence[m][rows] for m in fs.presence if m in values}
        clean = standardise(scalers, values, presence)
        features, labels = clean, label[rows]
        if corruption is not None:
            features, labels = corruption.apply(split, rows, clean, labels)
        mask = class_mask[rows] if class_mask is not None else None
        if split == "train" and (inputs.train_draws or augment is not None):
            parts.append(RedrawnData(features, labels, training_draws(inputs, fold, scalers, clean, rows, corruption, augment),
                                     speaker, mask, presence))
        else:
            parts.append(TensorData(features, labels, speaker if split == "train" else None, mask, presence))
    return FoldData(*parts, scalers, splits[2][0], splits[1][0], corruption)


def training_draws(inputs: SpeakerInputs, fold: Fold, scalers: dict[str, Standardizer], clean: dict, rows: np.ndarray,
                   corruption: FoldCorruption | None, augment: TrainingCopies | None = None):
    """Train as you test: each epoch's training inputs from fresh enrolment draws, standardised like the fold's and
    corrupted as planted (the corruption is fixed per clip, so every draw carries the same)."""
    presence = {m: present[rows] for m, present in inputs.presence.items()}

    def draw(epoch: int) -> dict:
        copies = augment.draw(rows, fold.index, epoch) if augment is not None else {}  # each clip clean or a copy
        drawn = {**clean, **standardise(scalers, inputs.training_values(fold, epoch, copies), presence)}
        return corruption.apply("train", rows, drawn, None)[0] if corruption is not None else drawn
    return draw


def fold_corruption(config: ExperimentConfig, fs: FeatureSet, fold: Fold) -> FoldCorruption | None:
    """The corruption the config plants in this fold (the same for the refit, which shares its test actors)."""
    if not plants_corruption(config.data):
        return None
    if config.data.label_noise is not None and fs.class_mask is not None:
        raise ConfigError("data.label_noise draws wrong labels among all classes, and a manifest of several corpora "
                          "trains each sample on its corpus's classes only: plant label noise in one corpus's manifest")
    return FoldCorruption(config.data, fs.meta, fs.class_names, config.seed, fold.index, fold.test_actors)


def peer_fold(config: ExperimentConfig, fs: FeatureSet, inputs: SpeakerInputs,
              fold: Fold) -> tuple[dict | None, pd.DataFrame | None]:
    """The fold's linear peer (protocol/linear_peer.py) on the fold's data as its network sees it, built afresh (a
    trained fold's data holds its last epoch's enrolment draw): C chosen on the fold, scored by the fold that is.
    Face clips are left out (pixels are no linear model's input); (None, None) when nothing else is there."""
    modalities = [m for m, values in fs.features.items() if not is_clips(values)]
    if not modalities:
        return None, None
    noise = config.data.modality_noise
    if noise is not None and noise.modality not in modalities:  # planted on a modality the peer leaves out
        config = config.model_copy(update={"data": config.data.model_copy(update={"modality_noise": None})})
    selection = fold_data(fs, inputs, fold, fold_corruption(config, fs, fold), modalities)
    scored = scored_fold(config, fold)
    final = fold_data(fs, inputs, scored, fold_corruption(config, fs, scored), modalities) if scored != fold else selection
    test_meta = fs.meta.iloc[final.test_rows].reset_index(drop=True)
    return fit_peer(selection, final, fs.class_names, test_meta, fold.index)


def train_fold(config: ExperimentConfig, fs: FeatureSet, inputs: SpeakerInputs, fold: Fold, fold_dir: Path | None,
               epoch_callbacks=None, final_epoch: int | None = None, augment: TrainingCopies | None = None):
    """Train one fold, select on its validation actors; returns (model with selected weights, fit result, fold data).
    With ``final_epoch`` (a final fit, protocol/final_fit.py) nothing is validated: that epoch's weights are kept."""
    seed = config.seed * 1000 + fold.index
    seed_everything(seed)
    data = fold_data(fs, inputs, fold, fold_corruption(config, fs, fold), augment=augment)
    n_classes = len(fs.class_names)
    model = create_model(config.model, fs.input_dims, fs.sequence, n_classes, pretrained=True)
    check_presence(model, fs)
    loss = LOSSES.create(config.loss.name, config.loss.params, modalities=list(config.data.modalities))
    evaluator = ClassificationEvaluator(n_classes, config.train.eval_batch_size)
    callbacks = [*dynamics_recorders(config.train, fs, fold.train_actors, model, data.train, fold_dir), *(epoch_callbacks or [])]
    adversary = None
    if config.train.speaker_adversary is not None:
        adversary = SpeakerAdversary(config.train.speaker_adversary, {m: e.out_dim for m, e in model.encoders.items()},
                                     len(fold.train_actors))
    trainer = Trainer(config.train, evaluator, fold_dir, seed=seed, epoch_callbacks=callbacks, adversary=adversary,
                      final_epoch=final_epoch)
    fit = trainer.fit(model, loss, data.train, data.val if final_epoch is None else None)
    model.load_state_dict(fit.best_state)
    return model, fit, data


def check_presence(model, fs: FeatureSet) -> None:
    """A model-level fusion (blocks between encoder stages) needs every modality on every sample: a corpus without
    one stops, naming it (decision- and feature-level fusions train on it)."""
    absent = fs.absent_modalities
    if absent and model.fusion.stage_blocks:
        said = "; ".join(f"corpus {c!r} has no {' or '.join(ms)}" for c, ms in absent.items())
        raise ConfigError(f"{said}: fusion {type(model.fusion).registry_name!r} exchanges information between the "
                          f"encoders of every modality of a sample; use a decision-level fusion (average) or a "
                          f"feature-level one (concat: mean imputation), or leave the corpus out")


@torch.no_grad()
def last_epoch_train_losses(model, fold_dir: Path, fs: FeatureSet, train: TensorData, fold: Fold,
                            batch_size: int) -> pd.DataFrame:
    """Per-sample cross-entropy of each branch on the training clips with the weights of the last epoch run
    (the Mars paper's Fig. 7 compares these distributions for CE and Mars)."""
    last = torch.load(fold_dir / "last.pt", map_location="cpu", weights_only=False)["model"]
    selected = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(last)
    preds = predict(model, train, batch_size)
    model.load_state_dict(selected)
    train_meta = fs.meta[np.isin(fs.meta["actor"], fold.train_actors)].reset_index(drop=True)
    table = pd.DataFrame({"clip": train_meta["clip"], "label": preds.target})
    for m, p in preds.branch_probs.items():  # NaN where the clip lacks the modality
        ce = -np.log(np.clip(p[np.arange(len(p)), preds.target], 1e-12, None))
        table[f"ce_{m}"] = np.where(preds.present(m), ce, np.nan)
    return table


def refit_fold(fold: Fold) -> Fold:
    """The fold with its validation actors moved into training (``protocol.refit``): nothing left to select on."""
    return Fold(fold.index, fold.test_actors, (), tuple(sorted((*fold.train_actors, *fold.val_actors), key=natural_key)))


def scored_fold(config: ExperimentConfig, fold: Fold) -> Fold:
    """The fold whose model is scored, and whose speakers give the test speakers' statistics: the refit's under
    ``protocol.refit``, else the fold itself."""
    return refit_fold(fold) if config.protocol.refit else fold


def score_conditions(config: ExperimentConfig, fs: FeatureSet, inputs: SpeakerInputs, fold: Fold, model,
                     conditions: dict, fold_dir: Path, test_rows: np.ndarray) -> dict:
    """The scored model on the fold's test clips with their audio under each recording condition, fed as the clean
    clips are (the same standardisation, enrolment clips and scored rows: protocol/test_conditions.py)."""
    (fold_dir / CONDITIONS_DIR).mkdir(exist_ok=True)
    test_meta = fs.meta.iloc[test_rows].reset_index(drop=True)
    scores = {}
    for name, audio in conditions.items():
        mixed = with_test_audio(fs, audio, fold.test_actors)
        mixed_inputs = prepare_inputs(mixed, config)
        mixed_inputs.enrolment = inputs.enrolment  # the same enrolment clips as the clean scoring
        data = fold_data(mixed, mixed_inputs, fold, fold_corruption(config, mixed, fold))
        if not np.array_equal(data.test_rows, test_rows):
            raise RuntimeError(f"condition {name}: other test rows than the clean scoring's")
        preds = predict(model, data.test, config.train.eval_batch_size)
        metrics = classification_metrics(preds, len(fs.class_names))
        table = predictions_table(test_meta, preds, fs.class_names, fold.index)
        atomic_write_text(fold_dir / CONDITIONS_DIR / f"{name}.csv", table.to_csv(index=False))
        scores[name] = {"accuracy": metrics["accuracy"], "ua": metrics["ua"]}
    return scores


def run_fold(config: ExperimentConfig, fs: FeatureSet, inputs: SpeakerInputs, fold: Fold, fold_dir: Path,
             conditions: dict | None = None, augment: TrainingCopies | None = None) -> dict:
    """``conditions``: recording condition -> every clip's audio features under it, scored as well; ``augment``:
    the training clips' augmented copies."""
    started = time.perf_counter()
    model, fit, data = train_fold(config, fs, inputs, fold, fold_dir, augment=augment)
    val_meta = fs.meta.iloc[data.val_rows].reset_index(drop=True)
    val_preds = predict(model, data.val, config.train.eval_batch_size)
    val_table = predictions_table(val_meta, val_preds, fs.class_names, fold.index)
    # fitted on the selection model's validation speakers; a refit model, with none held out, takes the same
    temperatures = fit_fold_temperatures(val_preds) if config.protocol.calibrate else None
    scored, scored_dir, state = scored_fold(config, fold), fold_dir, fit.best_state
    if config.protocol.refit:  # the selected epoch, retrained on every speaker outside the test fold
        scored_dir = fold_dir / "refit"
        scored_dir.mkdir(exist_ok=True)
        model, refit, data = train_fold(config, fs, inputs, scored, scored_dir, final_epoch=fit.best_epoch,
                                        augment=augment)
        state = refit.best_state
    preds = predict(model, data.test, config.train.eval_batch_size)
    metrics = classification_metrics(preds, len(fs.class_names))
    test_meta = fs.meta.iloc[data.test_rows].reset_index(drop=True)
    table = predictions_table(test_meta, preds, fs.class_names, fold.index)
    result = {
        "fold": fold.index,
        "test_actors": list(fold.test_actors),
        "val_actors": list(fold.val_actors),
        "train_actors": list(fold.train_actors),
        "n_test": len(test_meta),
        "accuracy": metrics["accuracy"],
        "ua": metrics["ua"],
        "macro_f1": metrics["macro_f1"],
        "weighted_f1": metrics["weighted_f1"],
        **({"per_corpus": per_corpus(table)} if "corpus" in table else {}),
        "modality_accuracy": {m: metrics[f"accuracy/{m}"] for m in preds.branch_probs},
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "budget": fit.budget,
        "val_at_best": fit.best_metrics,
        "params": model.n_parameters(),
        "seconds": time.perf_counter() - started,
        **(data.corruption.summary() if data.corruption is not None else {}),
    }
    if conditions:
        result["test_conditions"] = score_conditions(config, fs, inputs, scored, model, conditions, fold_dir,
                                                     data.test_rows)
    if temperatures is not None:
        result["calibration"] = fold_calibration(temperatures, preds)
    if config.protocol.refit:
        result["refit"] = {"train_actors": list(scored.train_actors), "epoch": fit.best_epoch, "n_train": len(data.train)}
    if inputs.normalized:  # how a speaker's enrolment clips became their statistics (chosen per fold under auto)
        result["enrolment_estimator"] = {m: {"name": e.name, **e.to_dict()}
                                         for m, e in inputs.fold_statistics(scored)[1].items()}
    if inputs.inductive:  # the clips a held-out speaker enrolled with, never scored
        enrolment = inputs.enrolment_table(fold)
        atomic_write_text(fold_dir / "enrolment.csv", enrolment.to_csv(index=False))
        result["enrolment_clips"] = enrolment_record(enrolment)
    atomic_write_text(fold_dir / "history.csv", pd.DataFrame(fit.history).to_csv(index=False))
    atomic_torch_save(fold_dir / "best.pt", state)
    write_json(fold_dir / "standardizer.json", fold_standardizers(inputs, data.scalers, scored))
    if temperatures is not None:
        write_json(fold_dir / CALIBRATION_FILE, temperatures.to_dict())
    atomic_write_text(fold_dir / "predictions.csv", table.to_csv(index=False))
    atomic_write_text(fold_dir / "val_predictions.csv", val_table.to_csv(index=False))
    if data.corruption is not None and data.corruption.label_config is not None:
        atomic_write_text(fold_dir / "flipped.csv", data.corruption.flipped_table().to_csv(index=False))
    losses = last_epoch_train_losses(model, scored_dir, fs, data.train, scored, config.train.eval_batch_size)
    atomic_write_text(fold_dir / "train_losses.csv", losses.to_csv(index=False))
    peer, peer_table = peer_fold(config, fs, inputs, fold) if config.protocol.linear_peer else (None, None)
    if peer is not None:
        result["linear_peer"] = peer
        atomic_write_text(fold_dir / PEER_PREDICTIONS, peer_table.to_csv(index=False))
    write_json(fold_dir / "result.json", result)  # written last: its presence marks the fold done
    return result


def predictions_table(meta: pd.DataFrame, preds, class_names, fold: int) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "clip": meta["clip"], "take": meta["take"], "actor": meta["actor"],
            **({"corpus": meta["corpus"]} if "corpus" in meta else {}), "fold": fold,
            "label": [class_names[i] for i in preds.target], "pred": [class_names[i] for i in preds.probs.argmax(1)],
        }
    )
    for k, name in enumerate(class_names):
        table[f"prob_{name}"] = preds.probs[:, k]
    for m, p in preds.branch_probs.items():  # empty where the clip lacks the modality
        table[f"pred_{m}"] = [class_names[i] if present else "" for i, present in zip(p.argmax(1), preds.present(m))]
    return table


def summarize(config: ExperimentConfig, fs: FeatureSet, fold_results: list[dict], predictions: pd.DataFrame) -> dict:
    return {
        "name": config.name,
        "folds": fold_results,
        "budget": summarize_budgets([r["budget"] for r in fold_results if "budget" in r]),
        **fold_figures(fold_results, predictions),
        **calibration_summary(fold_results, predictions, fs.class_names),
        "speaker_norm": config.features.speaker_norm,
        **({"adapt_clips": config.features.adapt_clips, "enrolment": config.features.enrolment,
            "train_draws": config.features.train_draws,
            "enrolment_estimators": {r["fold"]: r.get("enrolment_estimator") for r in fold_results},
            "enrolment_clips": {s: c for r in fold_results for s, c in r["enrolment_clips"]["test"].items()}}
           if config.features.speaker_norm == "inductive" else {}),
        "skipped_takes": fs.skipped,
        "face_detection": fs.face_report,
        "data_fingerprint": fs.fingerprint,
        "std_note": "sample standard deviation (ddof=1) over folds",
        "config": config.model_dump(mode="json"),
    }


def run_cross_validation(config: ExperimentConfig, data_dir: Path, run_dir: Path, cache_dir: Path,
                         progress: bool = True, only_folds: list[int] | None = None,
                         enrolment_pool: EnrolmentPool | None = None) -> dict:
    """``enrolment_pool``: which clips an inductive test speaker may enrol with (a stress test's hook). A config with
    ``selection`` cross-validates each candidate and chooses per fold (protocol/selection.py). Runs on the threads its
    model is worth (core/threads.py)."""
    with thread_budget(compute_bound(config.model.encoders)):
        return _cross_validate(config, data_dir, run_dir, cache_dir, progress, only_folds, enrolment_pool)


def _cross_validate(config, data_dir, run_dir, cache_dir, progress, only_folds, enrolment_pool) -> dict:
    if config.selection is not None:
        if distributed.world_size() > 1:
            raise ConfigError("selection.candidates is not supported under torchrun; run each candidate on its own")
        with logging_to(run_dir):
            summary = run_selection(config, Path(run_dir), lambda candidate, out: run_cross_validation(
                candidate, data_dir, out, cache_dir, progress, only_folds, enrolment_pool))
            return with_condition_summary(config, Path(run_dir), summary)
    if not distributed.is_main():  # another torchrun rank: trains each fold with rank 0 and writes nothing
        return _follow_cross_validation(config, Path(data_dir), FeatureCache(cache_dir), only_folds,
                                                   enrolment_pool)
    with logging_to(run_dir):
        return _run(config, Path(data_dir), run_dir, FeatureCache(cache_dir), progress, only_folds, enrolment_pool)


def _run(config, data_dir, run_dir, cache, progress, only_folds, enrolment_pool=None) -> dict:
    started = time.perf_counter()
    start_run(run_dir, dump_config(config), recorded_config)
    log.info("run %s: config %s, data %s", run_dir, config.name, data_dir)

    fs = build_features(config.data, config.features, data_dir, cache, progress)
    record_fingerprint(run_dir, data_record(fs, data_dir))
    if fs.face_report:
        r = fs.face_report
        log.info("faces: %d of %d analysed frames without a face; %d of %d sampled frames left out of their clips",
                 r["frames_without_face"], r["frames_analysed"], r["sampled_frames_without_face"], r["sampled_frames"])

    inputs = prepare_inputs(fs, config, enrolment_pool)
    folds = dataset_folds(fs.meta, config.protocol.n_folds, config.protocol.val_fraction, config.seed)
    if only_folds:
        folds = [f for f in folds if f.index in only_folds]
    conditions = test_condition_copies(config, fs, data_dir, cache, progress)
    augment = training_copies(config, fs, data_dir, cache, progress)
    results, tables = [], []
    for fold in folds:
        fold_dir = run_dir / "folds" / f"fold_{fold.index}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        done = fold_dir / "result.json"
        if distributed.from_main(done.is_file()):  # other torchrun ranks skip the folds rank 0 skips
            result = json.loads(done.read_text())
            log.info("fold %d already done (accuracy %.4f)", fold.index, result["accuracy"])
        else:
            log.info("fold %d: test %s, val %s", fold.index, listed(fold.test_actors), listed(fold.val_actors))
            result = run_fold(config, fs, inputs, fold, fold_dir, conditions, augment)
            log.info("fold %d: accuracy %.4f, UA %.4f, macro-F1 %.4f, %s (best epoch %d of %d, %.1fs)", fold.index,
                     result["accuracy"], result["ua"], result["macro_f1"], rounded(result["modality_accuracy"]), result["best_epoch"],
                     result["epochs_run"], result["seconds"])
        results.append(result)
        tables.append(pd.read_csv(fold_dir / "predictions.csv", dtype={"clip": str, "take": str, "actor": str,
                                                                        "corpus": str}))
    predictions = pd.concat(tables, ignore_index=True)
    summary = summarize(config, fs, results, predictions)
    peer = (peer_summary([run_dir / "folds" / f"fold_{r['fold']}" for r in results], results, predictions, config.seed)
            if config.protocol.linear_peer else None)
    if peer is not None:
        summary["linear_peer"] = peer
    summary["seconds"] = time.perf_counter() - started
    atomic_write_text(run_dir / "predictions.csv", predictions.to_csv(index=False))
    write_json(run_dir / "results.json", summary)
    return with_condition_summary(config, run_dir, summary)


def with_condition_summary(config: ExperimentConfig, run_dir: Path, summary: dict) -> dict:
    """The summary with ``test_conditions`` (clean beside each condition, pooled over the scored folds, each fold's
    model the chosen candidate's under selection), written to results.json; unchanged without conditions."""
    names = list(config.protocol.test_conditions)
    if not names:
        return summary
    fold_dirs = [run_dir / "folds" / f"fold_{r['fold']}" for r in summary["folds"]]
    predictions = pd.read_csv(run_dir / "predictions.csv", dtype={"clip": str, "take": str, "actor": str, "corpus": str})
    summary = {**summary, "test_conditions": condition_summary(fold_dirs, predictions, names, config.seed)}
    for line in condition_lines(summary["test_conditions"]):
        log.info("%s", line)
    write_json(run_dir / "results.json", summary)
    return summary


def _follow_cross_validation(config, data_dir, cache, only_folds: list[int] | None, enrolment_pool=None) -> dict:
    """What a rank other than 0 does in ``emofuse cv``: the same features and folds, and for every fold that
    rank 0 trains (it says which) the same training, in step with it; rank 0 scores, writes and returns."""
    fs = build_features(config.data, config.features, data_dir, cache, progress=False)
    inputs = prepare_inputs(fs, config, enrolment_pool)
    augment = training_copies(config, fs, data_dir, cache, progress=False)
    folds = dataset_folds(fs.meta, config.protocol.n_folds, config.protocol.val_fraction, config.seed)
    for fold in folds:
        if only_folds and fold.index not in only_folds:
            continue
        if not distributed.from_main(None):  # rank 0 finds no finished result for this fold: train it together
            fit = train_fold(config, fs, inputs, fold, None, augment=augment)[1]
            if config.protocol.refit:
                train_fold(config, fs, inputs, scored_fold(config, fold), None, final_epoch=fit.best_epoch,
                           augment=augment)
    return {}
