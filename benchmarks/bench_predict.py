"""Real-time factor of `emofuse predict` (processing time / media duration) on real CREMA-D clips, by stage.

    python benchmarks/bench_predict.py [--run RUN_DIR ...] [--files F ...] [--repeats 3]

Stages as predict times them: decode (audio, PyAV), audio features (the run's extractor), faces (a run whose
visual branch was trained on video: decode at the sampling rate, Haar detection and tracking, crops and
descriptors of the sampled frames) and model (every fold's network, their probabilities averaged).
Without --run, two runs are trained first (the model's cost depends on its architecture, not on how well it was
trained): configs/ravdess_mars_egemaps.yaml on the packaged sample (its visual branch takes OpenFace action units, so
predict runs the audio branch only) and configs/manifest_av.yaml (eGeMAPS + face features from the video: fer's expression
probabilities and HOG on 16 sampled frames) on a manifest of the six CREMA-D videos under four pseudo-speaker ids
(the clips of one actor; speakers are only needed for the folds). Each figure is the median over --repeats passes
after one warm-up pass; start-up (imports, loading the folds) is printed apart. Wall-clock time is what a user
waits; process CPU time (all threads) is printed beside it because this machine is shared: on a loaded machine
the wall clock counts time the process spent waiting for a core. The load average is printed with the figures.
Figures are printed, not asserted: compare them with the target (RTF at most 0.1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from emofuse.data.media import probe
from emofuse.inference.predict import Predictor

REPO = Path(__file__).resolve().parents[1]
CREMA = REPO.parent / "shared" / "data" / "crema-d"
TRAIN = ["train.epochs=2", "train.early_stopping.min_epochs=0", "protocol.n_folds=2", "features.workers=1"]


def train(config: str, data: Path, out: Path, extra: list[str]) -> Path:
    from emofuse.config.loading import load_config
    from emofuse.protocol.cross_validation import run_cross_validation

    cfg = load_config(REPO / "configs" / config, [*TRAIN, *extra])
    run_cross_validation(cfg, data, out / cfg.name, out / "cache", progress=False)
    return out / cfg.name


def crema_pseudo_speakers(out: Path) -> Path:
    """The six CREMA-D videos, each listed under four speaker ids."""
    rows = [{"id": f"p{s}_{v.stem}", "speaker": f"p{s}", "label": v.stem.split("_")[2].lower(), "video": str(v)}
            for s in range(1, 5) for v in sorted(CREMA.glob("*.flv"))]
    path = out / "crema_pseudo_speakers.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def one_pass(predictor: Predictor, files: list[Path]) -> dict[str, float]:
    timings: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    predictor.predict(files, timings=timings)
    timings["total"], timings["cpu"] = time.perf_counter() - wall, time.process_time() - cpu
    return timings


def report(run: Path, files: list[Path], repeats: int) -> None:
    started = time.perf_counter()
    predictor = Predictor(run)
    print(f"\n{run.name}: modalities {predictor.modalities}; loading {len(predictor.folds)} fold models took "
          f"{time.perf_counter() - started:.2f} s (once per process, not counted below)")
    media_s = sum(probe(f).duration for f in files)
    one_pass(predictor, files)  # warm-up: lazy imports, extractor and detector set-up
    load_before = os.getloadavg()[0]
    passes = [one_pass(predictor, files) for _ in range(repeats)]
    median = {k: statistics.median(p.get(k, 0.0) for p in passes) for k in passes[0]}
    print(f"{len(files)} files, {media_s:.2f} s of media; median of {repeats} passes; load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (1-minute, {os.cpu_count()} CPUs)")
    names = {"decode": "decode (audio)", "features": "audio features", "faces": "faces (video extractor)", "model": "model"}
    for key, name in names.items():
        if key in median:
            print(f"  {name:<24}  {median[key]:7.3f} s   RTF {median[key] / media_s:.4f}")
    print(f"  {'predict, wall clock':<24}  {median['total']:7.3f} s   RTF {median['total'] / media_s:.4f}")
    print(f"  {'predict, CPU time':<24}  {median['cpu']:7.3f} s   RTF {median['cpu'] / media_s:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, nargs="+", default=None, help="finished `emofuse cv` runs (default: train two)")
    parser.add_argument("--files", type=Path, nargs="+", default=sorted(CREMA.glob("*.flv")))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs (shared with other jobs), torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.run
        if runs is None:
            from emofuse.data.sample import sample_dir

            tmp = Path(tmp)
            runs = [train("ravdess_mars_egemaps.yaml", sample_dir(), tmp, ["loss.params.switch_epoch=1"]),
                    train("manifest_av.yaml", crema_pseudo_speakers(tmp), tmp, [])]
        for run in runs:
            report(run, args.files, args.repeats)
    print("target: RTF at most 0.1")


if __name__ == "__main__":
    main()
