"""`emofuse compare` directories: comparison.json/.csv, runs.csv, plots/ and one cv run per (method, seed)."""

from __future__ import annotations

from pathlib import Path

from emofuse.reporting.html_report import figures
from emofuse.reporting.html_report.files import read_csv, read_json, read_optional_json, read_text
from emofuse.reporting.html_report.kinds import run_kind

# what each of compare's plots shows, by file-name prefix (plots/<prefix><method>.png)
PLOT_CAPTIONS = {
    "accuracy": ("Test accuracy per (seed, fold)", "Every (seed, fold) run of each method; the black line is the mean."),
    "confusion_": ("Confusion matrix: {}", "Pooled over the test clips of every fold and seed; rows normalised."),
    "mars_weights_": ("Mars weight per branch: {}", "Mean per-sample loss weight per epoch, mean ± std over folds and seeds."),
    "train_loss_histograms": ("Training-loss histograms", "Per-sample cross-entropy of each branch on the training clips, "
                                                          "last epoch, per method (average fusion, CE or Mars loss)."),
}


def _plot_figure(path: Path) -> figures.Figure:
    for prefix, (title, caption) in PLOT_CAPTIONS.items():
        if path.stem == prefix or (prefix.endswith("_") and path.stem.startswith(prefix)):
            return figures.Figure(title.format(path.stem[len(prefix):]), figures.file_uri(path), caption)
    return figures.Figure(path.stem, figures.file_uri(path))


@run_kind("compare", title="comparison of methods under one protocol", markers=("comparison.json", "runs.csv"))
def load_compare(run_dir: Path) -> dict:
    summary = read_json(run_dir / "comparison.json")
    runs = read_csv(run_dir / "runs.csv")
    table = summary["table"]  # pandas wrote NaN (the reference's own statistics) as null
    branches = [c[len("accuracy_"):-len("_mean")] for c in (table[0] if table else {})
                if c.startswith("accuracy_") and c.endswith("_mean") and c != "accuracy_mean"]
    listed = [run_dir / p for p in summary.get("plots", [])]
    plots = [_plot_figure(p) for p in listed if p.is_file()]
    methods = []
    for method in summary["methods"]:
        first = sorted((run_dir / method).glob("seed_*"), key=lambda d: int(d.name[5:]))
        first = first[0] if first else run_dir / method / "seed_0"
        methods.append({"name": method, "config_yaml": read_text(first / "config.yaml", ""),
                        "fingerprint": read_optional_json(first / "data_fingerprint.json") or {},
                        "versions": read_optional_json(first / "versions.json") or {}})
    digests = {m["fingerprint"].get("sha256") for m in methods}
    run_columns = [c for c in ("method", "seed", "fold", "accuracy", "macro_f1", "val_accuracy", "best_epoch", "epochs_run",
                               "stop_reason")
                   if c in runs.columns] + [c for c in runs.columns if c.startswith("accuracy_")]
    return {
        "name": ", ".join(summary["methods"]),
        "summary": summary,
        "table": table,
        "branches": branches,
        "peers": any(row.get("delta_vs_peer") is not None for row in table),  # runs with a linear peer
        "runs": runs[run_columns].to_dict("records"),
        "run_columns": run_columns,
        "figures": plots,
        "missing_plots": [str(p.relative_to(run_dir)) for p in listed if not p.is_file()],
        "methods": methods,
        "fingerprint": methods[0]["fingerprint"] if methods else {},
        "same_data": len(digests) == 1,
        "versions": methods[0]["versions"] if methods else {},
    }
