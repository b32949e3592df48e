"""What the end-to-end video path costs: face-clip extraction per video and 3D ResNeXt training steps.

    python benchmarks/bench_video.py [--config configs/ravdess_mars_video.yaml] [--files F ...] [--steps 2]

(a) The config's video extractor (face detection and tracking at its analysis rate, crops at its clip length
    and size) on real CREMA-D videos: seconds per video, real-time factor, bytes per cached clip, frames with a
    face, and what the 1,440 RAVDESS speech takes would take and hold at that rate (one process;
    `features.workers` divides it).
(b) Training steps (forward, backward, AdamW) of the config's visual encoder on random clips of the config's
    shape, at batch sizes 1 and 4, on CPU (and CUDA when present): median seconds per step after a warm-up step.
(c) The bundled fer expression model (`face_features` with `expression`, 20 frames, mean over frames) on each
    video: its top class and probabilities, and the seconds per video.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from emofuse.config.loading import load_config
from emofuse.data.media import probe
from emofuse.features import VIDEO_EXTRACTORS
from emofuse.models import create_model

REPO = Path(__file__).resolve().parents[1]
CREMA = REPO.parent / "shared" / "data" / "crema-d"
RAVDESS_TAKES, RAVDESS_SECONDS = 1440, 3.7  # speech takes; their mean duration (the 1,440 FLACs in ../shared/data: 3.70 s)


def extraction(config, files: list[Path]) -> None:
    extractor = VIDEO_EXTRACTORS.create(config.features.visual.name, config.features.visual.params)
    extractor.extract_file(files[0])  # warm-up: detector set-up
    seconds, nbytes, media, analysed, without_face = [], [], 0.0, 0, 0
    for f in files:
        started = time.perf_counter()
        clip, record = extractor.extract_file(f)
        seconds.append(time.perf_counter() - started)
        nbytes.append(clip.nbytes)
        media += probe(f).duration
        analysed, without_face = analysed + record["frames"], without_face + record["without_face"]
    per_video = statistics.mean(seconds)
    print(f"(a) {extractor.registry_name} {dict(config.features.visual.params)} on {len(files)} CREMA-D videos "
          f"({media:.1f} s of media)")
    print(f"    {per_video:.3f} s per video, RTF {sum(seconds) / media:.3f}; {statistics.mean(nbytes) / 1e6:.2f} MB per "
          f"cached clip; {analysed - without_face} of {analysed} analysed frames with a face")
    rtf = sum(seconds) / media
    print(f"    RAVDESS speech ({RAVDESS_TAKES} takes of ~{RAVDESS_SECONDS} s) at that rate: "
          f"{RAVDESS_TAKES * RAVDESS_SECONDS * rtf / 60:.0f} min in one process, "
          f"{RAVDESS_TAKES * statistics.mean(nbytes) / 1e9:.1f} GB of cache")


def training_steps(config, device: str, steps: int) -> None:
    params = config.features.visual.params
    frames, size = params.get("frames", 16), params.get("size", 112)
    visual_only = config.model.model_copy(update={"encoders": {"visual": config.model.encoders["visual"]}})
    model = create_model(visual_only, {"visual": 3}, {"visual": True}, 8).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for batch in (1, 4):
        x = torch.randn(batch, frames, 3, size, size, device=device)
        y = torch.randint(0, 8, (batch,), device=device)
        times = []
        for i in range(steps + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                logits = model({"visual": x}).branch_logits["visual"]
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if device == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(f"(b) {device}: batch {batch} of {frames} x {size}x{size} clips: {median:.2f} s per training step, "
              f"{median / batch:.2f} s per clip")


def expressions(files: list[Path]) -> None:
    from emofuse.features.visual.expression import LABELS

    extractor = VIDEO_EXTRACTORS.create("face_features", {"frames": 20, "descriptors": ["expression"], "pool": True})
    extractor.extract_file(files[0])  # warm-up: interpreter set-up
    for f in files:
        started = time.perf_counter()
        mean, _ = extractor.extract_file(f)
        probs = " ".join(f"{label} {p:.2f}" for label, p in zip(LABELS, mean))
        print(f"(c) {f.name}: {LABELS[int(mean.argmax())]} ({probs}); {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "ravdess_mars_video.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--files", type=Path, nargs="+", default=sorted(CREMA.glob("*.flv")))
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per batch size (default 2)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    config = load_config(args.config, args.overrides)
    extraction(config, args.files)
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        training_steps(config, device, args.steps)
    expressions(args.files)


if __name__ == "__main__":
    main()
