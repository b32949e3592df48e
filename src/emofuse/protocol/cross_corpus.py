"""Scoring a finished `emofuse cv` run on another corpus (`emofuse evaluate RUN_DIR --data OTHER_MANIFEST`).

The run's deployed model (the ensemble of its fold models, as `emofuse predict` uses it) predicts every row of the
other manifest; features are extracted as the run's config says and cached. Each speaker of the other corpus is
normalised as the run's setting says (``features.speaker_norm``, protocol/enrolment.py): ``none``, each clip on its
own; ``transductive``, with all of the speaker's clips; ``inductive``, with ``adapt_clips`` enrolment clips drawn per
speaker with the run's seed, which are then not scored (``enrolment.csv``), or with a typical training speaker's
statistics when ``adapt_clips`` is 0. A speaker with too few clips for that (fewer than two, or no clip left to score
after enrolment) gets a typical training speaker's statistics, and the result lists them.

Labels are mapped by name: the other corpus's label ``x`` is the run's class ``x`` (``--label-map x=y`` maps it to
``y`` instead). Rows whose label maps to no class of the run are predicted but not scored, and reported. Scores:
accuracy, unweighted average recall (UAR, the usual cross-corpus figure) and macro-F1 over the scored rows, with
the model deciding among all its classes, and again deciding among the shared classes only (a model trained on
classes the other corpus lacks cannot be right on them, and the restricted decision removes that handicap). How far
its confidence is from its accuracy on the other corpus (ECE, NLL, Brier score; ``calibration``) is given for the
models' raw probabilities and, for a run with temperatures (``protocol.calibrate``), with them.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

from emofuse.config.schema import FeaturesConfig
from emofuse.core.errors import DataError
from emofuse.reporting import plots
from emofuse.protocol.calibration import other_corpus_calibration
from emofuse.protocol.enrolment import draw_enrolment
from emofuse.features.cache import FeatureCache
from emofuse.datasets.manifest_set import build_manifest_features
from emofuse.inference.predict import Predictor
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text, write_json
from emofuse.inference.run_record import run_data_record

log = logging.getLogger(__name__)


def parse_label_map(text: str | None) -> dict[str, str]:
    """``"calm=neutral,surprise=surprised"`` -> {calm: neutral, surprise: surprised} (other corpus -> run class)."""
    mapping: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in (text or "").split(","))):
        if pair.count("=") != 1 or not all(side.strip() for side in pair.split("=")):
            raise ConfigError(f"--label-map {text!r}: {pair!r} is not of the form other_label=run_class")
        other, run_class = (side.strip() for side in pair.split("="))
        if other in mapping:
            raise ConfigError(f"--label-map {text!r}: {other!r} is mapped twice")
        mapping[other] = run_class
    return mapping


def map_labels(other_labels, run_classes, explicit: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(other label -> run class, other labels that map to none), by name unless ``explicit`` says otherwise."""
    unknown = {o: c for o, c in explicit.items() if c not in run_classes}
    if unknown:
        raise ConfigError(f"--label-map maps to {sorted(set(unknown.values()))}, which the run does not have "
                          f"(its classes: {', '.join(run_classes)})")
    mapping, unmapped = {}, []
    for label in other_labels:
        target = explicit.get(label, label)
        if target in run_classes:
            mapping[label] = target
        else:
            unmapped.append(label)
    return mapping, unmapped


def _scores(target: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, UAR (mean recall over the classes present) and macro-F1 over them; predictions of other classes
    count as errors (scikit-learn warns about them, which is the point here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        uar = balanced_accuracy_score(target, pred)
    return {"accuracy": float((target == pred).mean()), "uar": float(uar),
            "macro_f1": float(f1_score(target, pred, labels=sorted(set(target)), average="macro", zero_division=0))}


def speaker_groups(meta: pd.DataFrame, features: FeaturesConfig, seed: int) -> tuple[list[str | None], np.ndarray | None]:
    """Per row, the speaker whose statistics normalise it (None: a typical training speaker's), and under inductive
    normalisation which rows are enrolment clips (their speaker's statistics, not scored). A speaker with no clip to
    spare for enrolment is left to the typical training speaker, all of its clips scored."""
    speakers = meta["actor"].astype(str).to_numpy()
    if not features.per_speaker or (features.speaker_norm == "inductive" and features.adapt_clips == 0):
        return [None] * len(meta), None
    if features.speaker_norm == "transductive":
        return speakers.tolist(), None
    k = features.adapt_clips
    enough = meta.groupby("actor")["clip"].transform("size").to_numpy() > k
    enrolled = np.zeros(len(meta), bool)
    if enough.any():
        enrolled[enough] = draw_enrolment(meta[enough], k, seed)
    return [s if ok else None for s, ok in zip(speakers, enough)], enrolled


def evaluate_on_manifest(run_dir: str | Path, manifest: str | Path, out_dir: str | Path, cache_dir: str | Path,
                         label_map: dict[str, str] | None = None, split: str | None = None,
                         on_incomplete: str | None = None, modalities: list[str] | None = None,
                         enrolment_clips: int | None = None, progress: bool = True) -> dict:
    """``modalities`` scores with some of the run's modalities only (a run trained on RAVDESS's action-unit table, say,
    on another corpus's audio): its decision fusion averages the branches it has. ``enrolment_clips`` enrols each
    speaker of an inductive run with that many clips instead of the run's own number (0: every file on its own)."""
    started = time.perf_counter()
    run_dir, manifest, out_dir = Path(run_dir), Path(manifest), Path(out_dir)
    predictor = Predictor(run_dir)
    config, classes = predictor.config, list(predictor.class_names)
    if enrolment_clips is not None:
        if config.features.speaker_norm != "inductive" or enrolment_clips < 0:
            raise ConfigError(f"--enrolment-clips {enrolment_clips}: a number of clips (0 or more) for a run whose "
                              f"speakers enrol (speaker_norm inductive; {run_dir} has {config.features.speaker_norm})")
        config = config.model_copy(update={"features": config.features.model_copy(
            update={"adapt_clips": enrolment_clips})})
    modalities = modalities or list(config.data.modalities)
    if not set(modalities) <= set(config.data.modalities):
        raise ConfigError(f"--modalities {modalities}: the run has {config.data.modalities}")
    dims = {m: int(d) for m, d in run_data_record(run_dir)["feature_dims"].items()}
    data = config.data.model_copy(update={"dataset": "manifest", "path": str(manifest), "modalities": modalities,
                                          "on_incomplete": on_incomplete or config.data.on_incomplete})
    fs = build_manifest_features(manifest, data, config.features, FeatureCache(cache_dir), progress, training=False,
                                 expected_dims=dims, split=split)
    for m, d in fs.input_dims.items():
        if d != dims[m]:
            raise DataError(manifest, f"{m} features have dimension {d}, the run's model takes {dims[m]}")
    mapping, unmapped = map_labels(fs.class_names, classes, label_map or {})
    if not mapping:
        raise ConfigError(f"no label of {manifest} ({', '.join(fs.class_names)}) is a class of the run "
                          f"({', '.join(classes)}); map them with --label-map other=run,...")

    left_out = {m: "not evaluated (--modalities)" for m in config.data.modalities if m not in modalities}
    extracted = [({m: fs.features[m][i] for m in fs.features}, left_out, {}) for i in range(len(fs.meta))]
    speaker_of, enrolled = speaker_groups(fs.meta, config.features, config.seed)
    entries = predictor.predict_extracted(list(fs.meta["clip"]), extracted, speaker_of, enrolled=enrolled)
    errors = {e["error"] for e in entries if "error" in e}
    if errors:
        raise ConfigError(f"{run_dir}: {'; '.join(sorted(errors))}")
    scored_rows = np.flatnonzero(~enrolled) if enrolled is not None else np.arange(len(entries))
    meta, entries = fs.meta.iloc[scored_rows].reset_index(drop=True), [entries[i] for i in scored_rows]
    probs = np.array([[e["probs"][c] for c in classes] for e in entries])
    answers = {"uncalibrated": probs}
    if predictor.has_temperatures:  # the deployed answers are scaled: the models' own probabilities beside them
        predictor.calibrated = False
        said = logging.getLogger(Predictor.__module__)  # its speaker-group warnings were logged by the first pass
        said.disabled = True
        try:
            raw = predictor.predict_extracted(list(fs.meta["clip"]), extracted, speaker_of, enrolled=enrolled)
        finally:
            said.disabled = False
            predictor.calibrated = True
        answers = {"uncalibrated": np.array([[raw[i]["probs"][c] for c in classes] for i in scored_rows]),
                   "calibrated": probs}
    shared = sorted(set(mapping.values()), key=classes.index)
    shared_idx = [classes.index(c) for c in shared]
    table = pd.DataFrame({"id": meta["clip"], "speaker": meta["actor"], "label": meta["emotion"],
                          "target": meta["emotion"].map(mapping).fillna(""), "pred": [e["pred"] for e in entries],
                          "pred_shared": [shared[k] for k in probs[:, shared_idx].argmax(1)]})
    for k, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, k]
    if config.features.per_speaker:
        table["speaker_stats"] = [",".join(f"{m}:{s}" for m, s in sorted(e["speaker_stats"].items())) for e in entries]

    scored = table[table["target"] != ""]
    target = scored["target"].to_numpy()
    counts = confusion_matrix(target, scored["pred"], labels=classes)
    confusion = pd.DataFrame(counts, index=pd.Index(classes, name="true"), columns=classes)
    confusion = confusion.loc[[c for c in classes if c in set(target)]]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "predictions.csv", table.to_csv(index=False))
    atomic_write_text(out_dir / "confusion.csv", confusion.to_csv())
    if enrolled is not None:
        atomic_write_text(out_dir / "enrolment.csv", fs.meta.loc[enrolled, ["actor", "clip", "emotion"]]
                          .rename(columns={"actor": "speaker", "clip": "id", "emotion": "label"}).to_csv(index=False))
    plots.plot_confusion(scored.assign(label=scored["target"], pred=scored["pred_shared"]), shared,
                         f"{config.name} on {manifest.stem}, among the {len(shared)} shared classes",
                         out_dir / "confusion_shared.png")
    per_speaker = fs.meta.groupby("actor").size()
    own_statistics = config.features.per_speaker and not (config.features.speaker_norm == "inductive"
                                                          and config.features.adapt_clips == 0)
    few = sorted({str(s) for s, e in zip(meta["actor"], entries) if "typical" in e["speaker_stats"].values()}) \
        if own_statistics else []
    result = {
        "run": str(run_dir), "data": str(manifest), "split": split, "modalities": modalities, "run_classes": classes,
        "label_map": mapping, "unmapped_labels": {u: int((meta["emotion"] == u).sum()) for u in unmapped},
        "classes_absent": [c for c in classes if c not in shared],
        "n": len(table), "n_scored": len(scored), "n_speakers": int(len(per_speaker)),
        "all_classes": _scores(target, scored["pred"].to_numpy()),
        "shared_classes": _scores(target, scored["pred_shared"].to_numpy()),
        "recall": {c: float((scored.loc[scored["target"] == c, "pred"] == c).mean()) for c in shared},
        "calibration": {how: other_corpus_calibration(p[(table["target"] != "").to_numpy()], target, classes, shared)
                        for how, p in answers.items()},
        "speaker_norm": config.features.speaker_norm,
        **({"adapt_clips": config.features.adapt_clips, "n_enrolment": int(enrolled.sum()) if enrolled is not None else 0}
           if config.features.speaker_norm == "inductive" else {}),
        "speakers_with_training_statistics": few,
        "skipped": fs.skipped, "face_detection": fs.face_report, "data_fingerprint": fs.fingerprint,
        "seconds": time.perf_counter() - started,
    }
    if few:
        log.warning("speaker normalisation: %d speaker(s) with too few clips got a typical training speaker's "
                    "statistics instead of their own: %s", len(few), ", ".join(few))
    write_json(out_dir / "evaluation.json", result)
    return result


def print_evaluation(result: dict, out_dir: Path) -> None:
    mapping = ", ".join(f"{o} -> {c}" if o != c else o for o, c in result["label_map"].items())
    print(f"labels scored ({result['n_scored']} of {result['n']} rows, {result['n_speakers']} speakers): {mapping}")
    if result["unmapped_labels"]:
        listing = ", ".join(f"{u} ({n} rows)" for u, n in result["unmapped_labels"].items())
        print(f"not scored (no class of the run; map with --label-map): {listing}")
    if result["classes_absent"]:
        print(f"run classes the data lacks: {', '.join(result['classes_absent'])}")
    for name, key in (("deciding among all classes", "all_classes"), ("among the shared classes", "shared_classes")):
        s = result[key]
        print(f"{name}: accuracy {s['accuracy']:.4f}, UAR {s['uar']:.4f}, macro-F1 {s['macro_f1']:.4f}")
    c = result["calibration"]
    if "calibrated" in c:
        print(f"calibration error (ECE, all classes): {c['uncalibrated']['all_classes']['ece']:.4f} uncalibrated, "
              f"{c['calibrated']['all_classes']['ece']:.4f} with the run's temperatures (what predict answers)")
    else:
        print(f"calibration error (ECE, all classes): {c['uncalibrated']['all_classes']['ece']:.4f} (the run has no "
              "temperatures)")
    if result.get("n_enrolment"):
        print(f"enrolment clips (inductive speaker normalisation, not scored): {result['n_enrolment']}, in "
              f"{out_dir}/enrolment.csv")
    if result["speakers_with_training_statistics"]:
        print(f"speakers normalised with a typical training speaker's statistics (too few clips): "
              f"{', '.join(result['speakers_with_training_statistics'])}")
    print(f"predictions in {out_dir}/predictions.csv, confusion matrix in {out_dir}/confusion.csv; {out_dir}/evaluation.json")
