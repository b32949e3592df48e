"""What a user waits for: start-up of the command line, `emofuse predict FILE` from a cold start, the warm
real-time factor.

    python benchmarks/bench_cold_start.py [--model speech] [--file CLIP] [--repeats 5]

Mistakes: fresh processes run `emofuse cv` with an unknown config key and with a --data that does not exist; both
must be refused before anything heavy (torch) is imported. Cold: a fresh Python process runs `emofuse predict FILE`
with the bundled model (imports, loading the weights, decoding, features, prediction, printing). Each ``--repeats``
times; the median and range of the wall time. Warm: one loaded model predicts RAVDESS clips one call each; the
real-time factor is compute seconds over audio seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="bundled model (default: the default one)")
    parser.add_argument("--file", type=Path, default=SHARED / "crema-d" / "1002_DFA_ANG_XX.mp3")
    parser.add_argument("--clips", type=Path, default=SHARED / "ravdess" / "audio16k" / "Actor_01")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = str(REPO / "configs" / "ravdess_mars.yaml")
    commands = {
        "`emofuse cv` with an unknown config key (refused)": (["cv", config, "--set", "train.no_such=1", "--out", "x"], 2),
        "`emofuse cv` with a --data that does not exist (refused)": (["cv", config, "--data", "/no/such/dir", "--out", "x"], 2),
        f"cold `emofuse predict {args.file.name}`": (["predict", str(args.file), *(["--model", args.model] if args.model else [])], 0),
    }
    for what, (argv, code) in commands.items():
        walls = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "emofuse.cli", *argv], capture_output=True, text=True)
            walls.append(time.perf_counter() - started)
            if done.returncode != code:
                raise SystemExit(f"{what}: exit code {done.returncode}, expected {code}: {done.stderr[-500:]}")
        print(f"{what}: median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}, "
              f"{args.repeats} runs)")

    import soundfile as sf
    import torch

    import emofuse

    model = emofuse.load_model(args.model)
    clips = sorted(args.clips.glob("*.flac"))[:30]
    model.predict(clips[:1])  # the first call loads the extractor
    audio = sum(sf.info(str(c)).duration for c in clips)
    started = time.perf_counter()
    for clip in clips:
        model.predict([clip])
    compute = time.perf_counter() - started
    print(f"warm: {len(clips)} clips, {audio:.1f} s of audio in {compute:.2f} s: real-time factor {compute / audio:.4f}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
