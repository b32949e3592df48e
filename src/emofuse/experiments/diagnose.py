"""The noisy-versus-hard diagnostic: `emofuse diagnose RUN_DIR...`.

Mars down-weights the clips a branch gets badly wrong, which protects against mislabelled clips only if those
are what it gets wrong. With planted label noise the flipped clips are known, so each candidate detector is
scored on the training clips of every fold: the Mars weight of the last epoch, and the cartography coordinates
of the whole trajectory (protocol/cartography.py). On clean data the same coordinates name the clips every
branch finds hardest, which a user can listen to and watch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

from emofuse.core.errors import DataError
from emofuse.reporting import plots
from emofuse.protocol.cartography import Dynamics
from emofuse.metrics.intervals import t_interval
from emofuse.losses import LOSSES
from emofuse.core.runs import atomic_write_text, write_json

log = logging.getLogger(__name__)

# Higher score = more suspect. The Mars weight and the confidence and correctness say "suspect" when low;
# variability is kept as it is (an AUROC under 0.5 says flipped clips vary less than clean ones).
SCORES = ("mars_weight", "confidence", "correctness", "variability")


def run_config(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise DataError(run_dir, "not an `emofuse cv` run directory (no config.yaml)")
    return yaml.safe_load(path.read_text())


def mars_setting(config: dict, modalities: list[str]) -> tuple[dict[str, float], bool]:
    """The run's gamma per branch and whether it normalises; gamma 1 (the paper's default) for other losses, whose
    weights then say what Mars would have given the clips."""
    loss = config.get("loss") or {}
    params = LOSSES.get(loss.get("name", "cross_entropy")).reweighting(loss.get("params"))
    gamma = params.get("gamma", 1.0)
    gammas = {m: float(gamma[m] if isinstance(gamma, dict) else gamma) for m in modalities}
    return gammas, bool(params.get("normalize", False))


def fold_dynamics(run_dir: Path) -> list[tuple[int, Dynamics]]:
    folds = sorted((int(p.parent.name.split("_")[1]), p) for p in (run_dir / "folds").glob("fold_*/dynamics.npz"))
    if not folds:
        raise DataError(run_dir, "no folds/fold_k/dynamics.npz: run it with train.record_dynamics on (auto records them "
                                 "for clip-level features)")
    return [(fold, Dynamics.load(path)) for fold, path in folds]


def branches(coords: pd.DataFrame) -> list[str]:
    return [c[len("confidence_"):] for c in coords.columns if c.startswith("confidence_")]


def suspicion(coords: pd.DataFrame, modalities: list[str], gammas: dict[str, float], normalize: bool) -> pd.DataFrame:
    """Per clip, every score for every branch and for the branches together (``mean``: over the branches the clip
    has; a branch whose modality the clip lacks scores NaN)."""
    out = pd.DataFrame(index=coords.index)
    weights = {}
    for m in modalities:
        w = np.exp(-gammas[m] * (1 - coords[f"p_last_{m}"].to_numpy()))
        weights[m] = w / np.nanmean(w) if normalize else w
        out[f"mars_weight/{m}"] = -weights[m]
        out[f"confidence/{m}"] = -coords[f"confidence_{m}"]
        out[f"correctness/{m}"] = -coords[f"correctness_{m}"]
        out[f"variability/{m}"] = coords[f"variability_{m}"]
    for score in SCORES:
        out[f"{score}/mean"] = out[[f"{score}/{m}" for m in modalities]].mean(axis=1)
    return out


def separation(run_dir: Path, folds: list[tuple[int, Dynamics]] | None = None) -> pd.DataFrame:
    """AUROC and precision at the planted rate of every score, per fold with flipped training clips (precision at
    the planted rate flags as many clips as were flipped, so it equals the recall there). ``folds``: the run's
    ``fold_dynamics``, where the caller has them already."""
    config = run_config(run_dir)
    rows = []
    for fold, dyn in folds if folds is not None else fold_dynamics(run_dir):
        flipped = dyn.flipped
        if not flipped.any() or flipped.all():
            continue
        gammas, normalize = mars_setting(config, dyn.modalities)
        scores = suspicion(dyn.coordinates(), dyn.modalities, gammas, normalize)
        for column in scores.columns:
            score, branch = column.split("/")
            values = scores[column].to_numpy()
            scored = np.isfinite(values)  # the clips that have this branch's modality
            planted = flipped[scored]
            if not planted.any() or planted.all():
                continue
            k = int(planted.sum())
            top = np.argsort(-values[scored], kind="stable")[:k]
            rows.append({"run": str(run_dir), "method": config.get("name"), "seed": config.get("seed"), "fold": fold,
                         "score": score, "branch": branch, "n_flipped": k, "n_clean": int((~planted).sum()),
                         "auroc": roc_auc_score(planted, values[scored]), "precision_at_rate": float(planted[top].mean())})
    return pd.DataFrame(rows)


def summarize_separation(per_fold: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Mean AUROC and precision per score and branch, averaged over seeds within a fold, with a 95 % t-interval
    over the folds (the independent units)."""
    by = [*(by or []), "score", "branch"]
    fold_means = per_fold.groupby([*by, "fold"], sort=False)[["auroc", "precision_at_rate"]].mean().reset_index()
    rows = []
    for key, group in fold_means.groupby(by, sort=False):
        mean, low, high = t_interval(group["auroc"].to_numpy())
        rows.append({**dict(zip(by, key)), "n_folds": len(group), "auroc_mean": mean, "auroc_ci_low": low,
                     "auroc_ci_high": high, "precision_at_rate_mean": group["precision_at_rate"].mean()})
    return pd.DataFrame(rows)


def audio_file(run_dir: Path, config: dict, clip: str, actor: str) -> str:
    """Where the clip's audio is, if the run's data directory is still there ('' otherwise)."""
    fingerprint = run_dir / "data_fingerprint.json"
    if not fingerprint.is_file():
        return ""
    root = Path(json.loads(fingerprint.read_text())["data_dir"]) / (config.get("data") or {}).get("audio_dir", "audio16k")
    folder = root / f"Actor_{int(actor):02d}" if str(actor).isdigit() else root
    found = sorted(folder.glob(f"{clip}.*")) if folder.is_dir() else []
    return str(found[0].resolve()) if found else ""


def hardest_clips(coords: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Every training clip, hardest first: confidence and correctness per branch averaged over the folds (and runs)
    where it was a training clip, its rank per branch (1 = lowest confidence), and ``worst_rank``, the largest of
    its ranks: a clip near the top is hard for every branch, not just one. Files are looked up in ``run_dir``'s data."""
    modalities = branches(coords)
    value_columns = [f"{c}_{m}" for m in modalities for c in ("confidence", "variability", "correctness")]
    table = coords.groupby("clip", sort=False).agg(
        actor=("actor", "first"), emotion=("true_label", "first"), flipped=("flipped", "any"), n_folds=("clip", "size"),
        **{c: (c, "mean") for c in value_columns}).reset_index()
    for m in modalities:
        table[f"rank_{m}"] = table[f"confidence_{m}"].rank(method="min").astype("Int64")  # none where a clip lacks m
    table["worst_rank"] = table[[f"rank_{m}" for m in modalities]].max(axis=1)
    table = table.sort_values(["worst_rank", *[f"confidence_{m}" for m in modalities]], kind="stable").reset_index(drop=True)
    config = run_config(run_dir)
    table["file"] = ""
    top = table.index[:200]  # file look-ups for the clips anyone will listen to
    table.loc[top, "file"] = [audio_file(run_dir, config, c, a) for c, a in zip(table.loc[top, "clip"], table.loc[top, "actor"])]
    return table


def separation_markdown(summary: pd.DataFrame, keys: list[str]) -> str:
    head = [*keys, "score", "branch", "AUROC [95 % CI over folds]", "precision = recall at the planted rate"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dict("records"):
        lines.append("| " + " | ".join([*(str(r[k]) for k in keys), r["score"], r["branch"],
                                        f"{r['auroc_mean']:.3f} [{r['auroc_ci_low']:.3f}, {r['auroc_ci_high']:.3f}]",
                                        f"{r['precision_at_rate_mean']:.3f}"]) + " |")
    return "\n".join(lines) + "\n"


def hardest_markdown(table: pd.DataFrame, modalities: list[str], top: int) -> str:
    noisy = bool(table["flipped"].any())  # with planted noise, say which of the hardest clips were flipped
    head = ["clip", "emotion", *(["flipped"] if noisy else []), *[f"confidence {m}" for m in modalities], "worst rank", "file"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.head(top).to_dict("records"):
        lines.append("| " + " | ".join([f"`{r['clip']}`", r["emotion"], *(["yes" if r["flipped"] else ""] if noisy else []),
                                        *[f"{r[f'confidence_{m}']:.3f}" for m in modalities], str(r["worst_rank"]),
                                        r["file"]]) + " |")
    return "\n".join(lines) + "\n"


def diagnose(run_dirs: list[Path], out: Path, top: int = 20) -> dict:
    """Write separation.csv / .md (with planted label noise), cartography.png, hardest_clips.csv / .md to ``out``."""
    run_dirs = [Path(d) for d in run_dirs]
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"runs": [str(d) for d in run_dirs]}
    dynamics = {}  # read once, for the separation and the map
    for d in run_dirs:
        run_config(d)  # a directory that is no cv run is named as such before its dynamics are looked for
        dynamics[d] = fold_dynamics(d)
    per_fold = pd.concat([separation(d, dynamics[d]) for d in run_dirs], ignore_index=True)
    text = ""
    if len(per_fold):
        atomic_write_text(out / "separation_folds.csv", per_fold.to_csv(index=False))
        table = summarize_separation(per_fold, ["method"])
        atomic_write_text(out / "separation.csv", table.to_csv(index=False))
        text = separation_markdown(table, ["method"])
        atomic_write_text(out / "separation.md", text + "\nOne fold's training clips per AUROC; mean over seeds within a "
                          "fold, Student-t interval over the folds. Scores: low Mars weight of the last epoch, low "
                          "confidence, low correctness, high variability.\n")
        summary["separation"] = json.loads(table.to_json(orient="records"))
    else:
        log.info("no flipped training clips in %s: no separation to measure", [str(d) for d in run_dirs])
    coords = pd.concat([dyn.coordinates() for folds in dynamics.values() for _, dyn in folds], ignore_index=True)
    modalities = branches(coords)
    figure = plots.plot_cartography(coords, modalities, out / "cartography.png")
    hardest = hardest_clips(coords, run_dirs[0])
    atomic_write_text(out / "hardest_clips.csv", hardest.to_csv(index=False))
    atomic_write_text(out / "hardest_clips.md", hardest_markdown(hardest, modalities, top))
    summary.update({"plots": [str(figure)], "hardest": hardest.head(top)["clip"].tolist(), "separation_md": text})
    write_json(out / "diagnosis.json", summary)
    return summary
