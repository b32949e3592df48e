"""Build a bundled model (src/emofuse/zoo/NAME): cross-validate its recipe, fit it on every speaker, write its card.

    python recipes/build_bundled_model.py speech --config configs/speech.yaml \
        --corpus ravdess=../shared/data/ravdess/audio16k --corpus nemo=../shared/data/nemo --work runs/zoo
    python recipes/build_bundled_model.py ravdess-speech --config configs/ravdess_speech.yaml \
        --data ../shared/data/ravdess --work runs/zoo

A manifest config is given its corpora (``--corpus NAME=DIR``, names as `emofuse manifest` knows them), whose
manifests are written and merged into WORK/data/manifest.csv; a RAVDESS config its folder (``--data``).
1. ``emofuse cv`` of the config (WORK/cv): the estimates for a new speaker and the epoch count;
2. ``emofuse fit`` on every speaker up to the median of the folds' selected epochs (WORK/model);
3. the cv run's fold models rescored with 0, 5 and 10 enrolment clips per test speaker (protocol/rescore.py),
   pooled accuracy with a 95 % cluster-bootstrap interval over the test speakers, per corpus where several;
4. the fitted model on the CREMA-D clips given (cross-corpus: another corpus, other speakers, other sentences);
5. the model directory's files and card.json copied into the package.
Every step reuses a finished one, so a rerun only rewrites the card. The same command on the same machine and
torch build gives the same weights: tests/test_zoo.py checks the bundled file against a retrain.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

import pandas as pd
import torch

from emofuse.api import locate_data
from emofuse.config.loading import load_config
from emofuse.core.runs import write_json
from emofuse.data.corpora import CORPORA
from emofuse.data.corpora.base import corpora_manifest
from emofuse.data.corpora.crema_d import crema_d
from emofuse.features.cache import default_cache_dir
from emofuse.inference.predict import Predictor
from emofuse.protocol.cross_corpus import evaluate_on_manifest
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.protocol.final_fit import fit_final
from emofuse.protocol.rescore import accuracy_with_interval, predictions_at_k
from emofuse.zoo import WEIGHTS, _root, weights_sha256

REPO = Path(__file__).resolve().parents[1]
MODEL_FILES = ("config.yaml", "data_fingerprint.json", "versions.json", "folds/fold_0/best.pt",
               "folds/fold_0/standardizer.json", "folds/fold_0/result.json")
ENROLMENT_CLIPS = (0, 5, 10)
LICENCES = {"ravdess": "RAVDESS (Livingstone & Russo, 2018): CC BY-NC-SA 4.0",
            "nemo": "nEMO (Christop, 2024): CC BY-NC-SA 4.0"}
LICENCE_NOTE = ("a model trained on CC BY-NC-SA 4.0 data inherits the licence: non-commercial use only, with "
                "attribution, shared alike")
# What a card says that no run measures: how the recipe was arrived at and what its data cannot cover.
ABOUT = {
    "ravdess-speech": {
        "corpus": "RAVDESS (speech, audio only)",
        "nesting": "the recipe's features (Whisper tiny.en hidden states 1-3) were chosen during development looking "
                   "at cross-validated accuracy over all folds: not strictly nested",
        "limits": ["acted North-American English speech, two neutral sentences, 24 professional actors: expect lower "
                   "accuracy on spontaneous speech, other languages, noisy or far-field recordings",
                   "8 classes (neutral, calm, happy, sad, angry, fearful, disgust, surprised); 'calm' has no "
                   "counterpart in most corpora",
                   "audio only: the face in a video is not used"]},
    "speech": {
        "corpus": "RAVDESS (English) and nEMO (Polish), speech, audio only",
        "nesting": "the recipe (Whisper base hidden states 2-4, the network's size and regularisation, training on "
                   "0- and 10-clip statistics, augmented recording conditions) was chosen during development on cross-validated and leave-one-corpus-out accuracy of these two corpora: not "
                   "strictly nested; the leave-one-corpus-out figures are the fairer guide to other corpora",
        "limits": ["acted speech of 33 actors in two languages (English, Polish), studio recordings with simulated "
                   "noise, level changes, telephone band and rooms added in training: expect lower accuracy on spontaneous "
                   "speech, other languages and real far-field or noisy recordings (recording_conditions gives the "
                   "simulated ones)",
                   "8 classes; calm and disgust are learned from RAVDESS only: restrict the answer to the classes you "
                   "need with `emofuse predict --classes`",
                   "enrolment (`emofuse predict --speaker`) helps on acted corpora; with few or one-sided clips the "
                   "shrinkage estimator keeps the answer close to a file on its own",
                   "audio only: the face in a video is not used"]},
}


def cross_corpus(model_dir: Path, root: Path) -> dict:
    rows = crema_d(root).rows
    predictor = Predictor(model_dir)
    entries = predictor.predict([r["audio"] or r["video"] for r in rows])
    scored = [(r["id"], r["label"], e.get("pred")) for r, e in zip(rows, entries)]
    correct = sum(label == pred for _, label, pred in scored)
    return {"corpus": "CREMA-D", "n_clips": len(scored), "n_speakers": len({r["speaker"] for r in rows}),
            "correct": correct, "accuracy": correct / len(scored) if scored else None,
            "note": "a handful of clips: a smoke check of another corpus, not an estimate",
            "clips": [{"id": i, "label": label, "pred": pred} for i, label, pred in scored]}


def per_corpus(predictions: pd.DataFrame) -> dict:
    """Pooled accuracy with its interval, over all clips and, where the run has several corpora, per corpus."""
    out = accuracy_with_interval(predictions)
    if "corpus" in predictions:
        out["per_corpus"] = {str(c): accuracy_with_interval(t) for c, t in predictions.groupby("corpus")}
    return out


def recording_conditions(cv: dict, config) -> dict | None:
    """The cross-validation's test speakers scored again under each fixed condition of ``protocol.test_conditions``
    (at the recipe's enrolment clips), and what the model trained on (``features.augment``)."""
    if "test_conditions" not in cv:
        return None
    augment = config.features.augment
    return {"enrolment_clips": config.features.adapt_clips if config.features.speaker_norm == "inductive" else 0,
            "conditions": {name: config.protocol.test_conditions[name].model_dump(mode="json")
                           for name in config.protocol.test_conditions},
            "scores": cv["test_conditions"]["conditions"], "interval": cv["test_conditions"]["interval"],
            "trained_on": augment.model_dump(mode="json") if augment is not None else None}


def leave_one_corpus_out(config, corpora: dict[str, Path], work: Path, cache: Path) -> list[dict]:
    """The recipe cross-validated on the other corpora, its fold models (the ensemble `emofuse predict` uses) scored
    on every speaker of the held-out corpus, a file on its own and with 10 enrolment clips, among the classes both
    have; intervals over the held-out speakers."""
    rows = []
    for held_out, root in corpora.items():
        rest = {name: path for name, path in corpora.items() if name != held_out}
        manifest = corpora_manifest(rest, work / f"without_{held_out}" / "data")
        run = work / f"without_{held_out}" / "cv"
        run_cross_validation(locate_data(config, manifest)[0], manifest, run, cache, progress=False)
        target = corpora_manifest({held_out: root}, work / f"only_{held_out}")
        row = {"held_out": held_out, "trained_on": sorted(rest)}
        for k in (0, 10):
            out = work / f"without_{held_out}" / f"k{k}"
            result = evaluate_on_manifest(run, target, out, cache, enrolment_clips=k, progress=False)
            table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
            table = table[table["target"] != ""]
            scored = pd.DataFrame({"seed": 0, "clip": table["id"], "fold": 0, "actor": table["speaker"],
                                   "label": table["target"], "pred": table["pred_shared"]})
            row[f"k={k}"] = {**accuracy_with_interval(scored), "ua": result["shared_classes"]["uar"],
                             "classes": sorted(set(result["label_map"].values()))}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(ABOUT))
    parser.add_argument("--config", type=Path, default=Path("configs/ravdess_speech.yaml"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ravdess"), help="a RAVDESS config's folder")
    parser.add_argument("--corpus", action="append", default=[], metavar="NAME=DIR",
                        help="a manifest config's corpora, as `emofuse manifest NAME DIR` reads them")
    parser.add_argument("--crema-d", type=Path, default=Path("../shared/data/crema-d"))
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--work", type=Path, default=Path("runs/zoo"))
    args = parser.parse_args()
    config = load_config(args.config)
    work = args.work / args.name
    corpora = {name: Path(path) for name, path in (item.split("=", 1) for item in args.corpus)}
    unknown = sorted(set(corpora) - set(CORPORA.names()))
    if unknown or (config.data.dataset == "manifest") != bool(corpora):
        parser.error(f"a manifest config takes --corpus NAME=DIR (NAME one of {', '.join(CORPORA.names())}), a RAVDESS "
                     f"config --data DIR{f'; unknown: {unknown}' if unknown else ''}")
    config, data = locate_data(config, corpora_manifest(corpora, work / "data") if corpora else args.data)
    cv = run_cross_validation(config, data, work / "cv", args.cache, progress=False)
    fit = fit_final(config, data, work / "model", args.cache, cv_run=work / "cv", progress=False)
    estimates = {f"k={k}": per_corpus(predictions_at_k(work / "cv", k, data, args.cache)) for k in ENROLMENT_CLIPS}
    target = _root() / args.name
    for name in MODEL_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "model" / name, target / name)
    fingerprint = json.loads((work / "model" / "data_fingerprint.json").read_text())
    names = list(corpora) or ["ravdess"]  # in the order given: the manifest's, which a retrain must repeat
    about = ABOUT[args.name]
    source = " ".join(f"--corpus {item}" for item in args.corpus) or f"--data {args.data}"
    card = {
        "name": args.name,
        "task": "categorical emotion from speech",
        "classes": fingerprint["class_names"],
        "modalities": list(config.data.modalities),
        "features": config.features.audio.model_dump(mode="json"),
        "recipe": str(args.config.resolve().relative_to(REPO)) if args.config.resolve().is_relative_to(REPO) else str(args.config),
        "training_data": {
            "corpus": about["corpus"], "corpora": names, "speakers": len(fit["train_actors"]), "clips": fit["n_train"],
            "licence": "CC BY-NC-SA 4.0", "licence_note": f"{'; '.join(LICENCES[n] for n in names)}; {LICENCE_NOTE}",
            "data_fingerprint": fingerprint["sha256"],
        },
        "epoch": fit["epoch"], "epoch_from": fit["epoch_from"],
        "enrolment_estimator": fit.get("enrolment_estimator"),
        "estimates": {
            "protocol": f"{config.protocol.n_folds}-fold cross-validation by speaker of the recipe (seed {config.seed}"
                        f"{', folds within each corpus' if len(names) > 1 else ''}); each fold's epoch and enrolment "
                        "estimator chosen on its own validation speakers; the fold models scored on their test "
                        "speakers with k enrolment clips each (k = 0: a file on its own, what `emofuse predict FILE` "
                        "does; k > 0: `emofuse predict --speaker NAME` with k files), each corpus among its own classes",
            "nesting": about["nesting"],
            **estimates,
            "fold_accuracy_at_recipe_k": [f["accuracy"] for f in cv["folds"]],
        },
        "recording_conditions": recording_conditions(cv, config),
        "leave_one_corpus_out": leave_one_corpus_out(config, corpora, work / "loco", args.cache)
        if len(corpora) > 1 else None,
        "cross_corpus": cross_corpus(work / "model", args.crema_d) if args.crema_d.is_dir() else None,
        "limits": about["limits"],
        "reproduce": f"python recipes/build_bundled_model.py {args.name} --config {args.config} {source}",
        "built_with": {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                       "machine": platform.machine(), "python": platform.python_version()},
        "weights_sha256": weights_sha256(target),
        "weights_file": str(WEIGHTS),
    }
    write_json(target / "card.json", card)
    print(json.dumps({k: card[k] for k in ("name", "epoch", "estimates", "leave_one_corpus_out", "cross_corpus")},
                     indent=2, default=str)[:4000])


if __name__ == "__main__":
    main()
