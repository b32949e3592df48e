"""Real-time factor of `emofuse predict` (processing time / media duration) on real CREMA-D clips, by stage.

    python benchmarks/bench_predict.py [--run RUN_DIR] [--files F ...] [--repeats 3]

Stages: decode (audio, PyAV), audio features (the run's extractor), model (every fold's network, their
probabilities averaged), and the face pipeline on the video (decode at its 10 frames/s analysis rate,
Haar detection, tracking, 112 x 112 crops, HOG), which is what a visual branch fed from video costs.
The RAVDESS configs' visual branch reads OpenFace CSVs, so `predict` itself does not run it; with a run
trained on video (configs/ravdess_mars_video.yaml) it does, and its own `faces` stage is printed too.
Without --run, a run of configs/ravdess_mars.yaml (6 folds, 2 epochs) is trained on the packaged sample
first: the model's cost depends on its architecture, not on how well it was trained. Each figure is
the median over --repeats passes after one warm-up pass; start-up (imports, loading the folds) is
printed apart. Figures are printed, not asserted: compare them with the target (RTF under 0.2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from emofuse.data.media import decode_video, probe
from emofuse.features.visual import FacePipeline
from emofuse.predict import Predictor

REPO = Path(__file__).resolve().parents[1]
CREMA = REPO.parent / "shared" / "data" / "crema-d"


def train_sample_run(out: Path) -> Path:
    from emofuse.config import load_config
    from emofuse.evaluation.cross_validation import run_cross_validation
    from emofuse.sample import sample_dir

    config = load_config(REPO / "configs" / "ravdess_mars.yaml",
                         ["train.epochs=2", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=1"])
    run_cross_validation(config, sample_dir(), out / "run", out / "cache", progress=False)
    return out / "run"


def one_pass(predictor: Predictor, faces: FacePipeline, files: list[Path]) -> dict[str, float]:
    timings: dict[str, float] = {}
    predictor.predict(files, timings=timings)
    started = time.perf_counter()
    videos = [decode_video(f, faces.params.fps, faces.params.max_frames) for f in files if probe(f).has_video]
    timings["video decode"] = time.perf_counter() - started
    started = time.perf_counter()
    reports = [faces.analyze(v).report for v in videos]
    timings["face pipeline"] = time.perf_counter() - started
    timings["frames"] = sum(r["frames"] for r in reports)
    timings["detected"] = sum(r["detected"] for r in reports)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None, help="a finished `emofuse cv` run (default: train one on the sample)")
    parser.add_argument("--files", type=Path, nargs="+", default=sorted(CREMA.glob("*.flv")))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs (shared with other jobs), torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_sample_run(Path(tmp))
        started = time.perf_counter()
        predictor = Predictor(run)
        faces = FacePipeline()
        print(f"start-up: loading {len(predictor.folds)} fold models of {predictor.config.name}: "
              f"{time.perf_counter() - started:.2f} s (once per process, not counted below)")
        media_s = sum(probe(f).duration for f in args.files)
        one_pass(predictor, faces, args.files)  # warm-up: lazy imports, extractor and detector set-up
        passes = [one_pass(predictor, faces, args.files) for _ in range(args.repeats)]
    median = {k: statistics.median(p[k] for p in passes) for k in passes[0]}
    print(f"{len(args.files)} files, {media_s:.2f} s of media; face found on {median['detected']:.0f} of "
          f"{median['frames']:.0f} analysed frames; median of {args.repeats} passes")
    rows = [("decode (audio)", median["decode"]), ("audio features", median["features"]), ("model", median["model"])]
    if "faces" in median:  # a run whose visual branch was trained on video: predict runs its face extractor
        rows.append(("faces (predict's video extractor)", median["faces"]))
    deployed = sum(s for _, s in rows)
    rows += [("video decode (10 fps)", median["video decode"]), ("face pipeline", median["face pipeline"])]
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:7.3f} s   RTF {seconds / media_s:.4f}")
    with_faces = deployed + median["video decode"] + median["face pipeline"]
    print(f"predict as run (decode + audio features + model): {deployed:.3f} s, RTF {deployed / media_s:.4f}")
    print(f"with the face pipeline on the video as well:      {with_faces:.3f} s, RTF {with_faces / media_s:.4f}")
    print("target: RTF under 0.2")


if __name__ == "__main__":
    main()
