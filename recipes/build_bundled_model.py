"""Build a bundled model (src/emofuse/zoo/NAME): cross-validate its recipe, fit it on every speaker, write its card.

    python recipes/build_bundled_model.py ravdess-speech --config configs/ravdess_speech.yaml \
        --data ../shared/data/ravdess --crema-d ../shared/data/crema-d --work runs/zoo

1. ``emofuse cv`` of the config (WORK/cv): the estimates for a new speaker and the epoch count;
2. ``emofuse fit`` on every speaker up to the median of the folds' selected epochs (WORK/model);
3. the cv run's fold models rescored with 0, 5 and 10 enrolment clips per test speaker (protocol/rescore.py),
   pooled accuracy with a 95 % cluster-bootstrap interval over the test speakers;
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

import torch

from emofuse.config.loading import load_config
from emofuse.data.corpora.crema_d import crema_d
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.protocol.final_fit import fit_final
from emofuse.protocol.rescore import accuracy_with_interval, predictions_at_k
from emofuse.features.cache import default_cache_dir
from emofuse.inference.predict import Predictor
from emofuse.core.runs import write_json
from emofuse.zoo import WEIGHTS, _root, weights_sha256

REPO = Path(__file__).resolve().parents[1]
MODEL_FILES = ("config.yaml", "data_fingerprint.json", "versions.json", "folds/fold_0/best.pt",
               "folds/fold_0/standardizer.json", "folds/fold_0/result.json")
ENROLMENT_CLIPS = (0, 5, 10)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--config", type=Path, default=Path("configs/ravdess_speech.yaml"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ravdess"))
    parser.add_argument("--crema-d", type=Path, default=Path("../shared/data/crema-d"))
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--work", type=Path, default=Path("runs/zoo"))
    args = parser.parse_args()
    config = load_config(args.config)
    work = args.work / args.name
    cv = run_cross_validation(config, args.data, work / "cv", args.cache, progress=False)
    fit = fit_final(config, args.data, work / "model", args.cache, cv_run=work / "cv", progress=False)
    estimates = {f"k={k}": accuracy_with_interval(predictions_at_k(work / "cv", k, args.data, args.cache))
                 for k in ENROLMENT_CLIPS}
    target = _root() / args.name
    for name in MODEL_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "model" / name, target / name)
    card = {
        "name": args.name,
        "task": "categorical emotion from speech",
        "classes": json.loads((work / "model" / "data_fingerprint.json").read_text())["class_names"],
        "modalities": list(config.data.modalities),
        "features": config.features.audio.model_dump(mode="json"),
        "recipe": str(args.config.resolve().relative_to(REPO)) if args.config.resolve().is_relative_to(REPO) else str(args.config),
        "training_data": {
            "corpus": "RAVDESS (speech, audio only)", "speakers": len(fit["train_actors"]), "clips": fit["n_train"],
            "licence": "CC BY-NC-SA 4.0",
            "licence_note": "RAVDESS (Livingstone & Russo, 2018) is licensed CC BY-NC-SA 4.0; a model trained on it "
                            "inherits the licence: non-commercial use only, with attribution, shared alike",
            "data_fingerprint": json.loads((work / "model" / "data_fingerprint.json").read_text())["sha256"],
        },
        "epoch": fit["epoch"], "epoch_from": fit["epoch_from"],
        "enrolment_estimator": fit.get("enrolment_estimator"),
        "estimates": {
            "protocol": f"{config.protocol.n_folds}-fold cross-validation by speaker of the recipe (seed {config.seed}); "
                        "each fold's epoch and enrolment estimator chosen on its own validation speakers; the fold "
                        "models scored on their test speakers with k enrolment clips each (k = 0: a file on its own, "
                        "what `emofuse predict FILE` does; k > 0: `emofuse predict --speaker NAME` with k files)",
            "nesting": "the recipe's features (Whisper tiny.en hidden states 1-3) were chosen during development "
                       "looking at cross-validated accuracy over all folds: not strictly nested",
            **estimates,
            "fold_accuracy_at_recipe_k": [f["accuracy"] for f in cv["folds"]],
        },
        "cross_corpus": cross_corpus(work / "model", args.crema_d) if args.crema_d.is_dir() else None,
        "limits": [
            "acted North-American English speech, two neutral sentences, 24 professional actors: expect lower accuracy "
            "on spontaneous speech, other languages, noisy or far-field recordings",
            "8 classes (neutral, calm, happy, sad, angry, fearful, disgust, surprised); 'calm' has no counterpart in "
            "most corpora",
            "audio only: the face in a video is not used",
        ],
        "reproduce": f"python recipes/build_bundled_model.py {args.name} --config {args.config} --data {args.data}",
        "built_with": {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                       "machine": platform.machine(), "python": platform.python_version()},
        "weights_sha256": weights_sha256(target),
        "weights_file": str(WEIGHTS),
    }
    write_json(target / "card.json", card)
    print(json.dumps({k: card[k] for k in ("name", "epoch", "estimates", "cross_corpus")}, indent=2, default=str)[:3000])


if __name__ == "__main__":
    main()
