"""Does segmentation find the utterances? Recordings of one speaker's labelled takes joined with pauses, per speaker.

    python benchmarks/bench_segmentation.py [--corpus ravdess nemo] [--per-speaker N] [--model NAME]

For every speaker of RAVDESS (24 actors, 60 takes each) and nEMO (9 speakers; `emofuse manifest nemo`), that speaker's
takes (all, or the first --per-speaker) are joined with 1-2 s pauses of digital silence into one recording
(benchmarks/long_recordings.py), which `Predictor` segments by speech (default settings: 1-10 s segments). Figures:

- the share of takes that come back as exactly one segment (one segment overlaps the take, and it overlaps no other
  take); target >= 95 %;
- per-segment accuracy (each take gets the prediction of the segment that overlaps it most; none: wrong) against the
  accuracy of predicting each take as its own file, on the same takes; target: within 2 points.

Labels are the manifest's common vocabulary; takes whose label the model has no class for are left out of both
accuracies (counted and printed). The default bundled model was trained on every RAVDESS actor, so its RAVDESS
accuracies are training-set figures; the comparison between segment and file is what this measures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from long_recordings import SHARED, Take, build, manifest_takes, ravdess_takes

from emofuse import zoo
from emofuse.data.audio_stream import audio_blocks
from emofuse.inference.predict import Predictor
from emofuse.inference.segments import segment_recording

ONE_SEGMENT_TARGET, ACCURACY_GAP_TARGET = 0.95, 0.02


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def score(spans: list[tuple[Take, float, float]], segments: list[dict]) -> tuple[list[bool], list[str | None]]:
    """Per take: whether it came back as exactly one segment, and the prediction of the segment overlapping it most."""
    covers = [[i for i, s in enumerate(segments) if overlap((a, b), (s["start"], s["end"])) > 0] for _, a, b in spans]
    owners = [[k for k, (_, a, b) in enumerate(spans) if overlap((a, b), (s["start"], s["end"])) > 0] for s in segments]
    one = [len(c) == 1 and len(owners[c[0]]) == 1 for c in covers]
    preds = [max(((overlap((a, b), (segments[i]["start"], segments[i]["end"])), segments[i]["pred"]) for i in c),
                 default=(0, None))[1] for c, (_, a, b) in zip(covers, spans)]
    return one, preds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", nargs="+", choices=["ravdess", "nemo"], default=["ravdess", "nemo"])
    p.add_argument("--per-speaker", type=int, default=None, help="at most this many takes per speaker (default: all)")
    p.add_argument("--model", default=None, help="a bundled model (default: emofuse's default one)")
    args = p.parse_args()
    predictor = Predictor(zoo.model_dir(args.model), speech_gate=True)
    print(f"model: {args.model or zoo.DEFAULT}; classes {', '.join(predictor.class_names)}")
    started, load = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpora = {}
        if "ravdess" in args.corpus:
            corpora["RAVDESS"] = ravdess_takes()
        if "nemo" in args.corpus:
            manifest = tmp / "nemo.csv"
            with manifest.open("w") as f:
                subprocess.run(["emofuse", "manifest", "nemo", str(SHARED / "nemo")], stdout=f,
                               stderr=subprocess.DEVNULL, check=True)
            corpora["nEMO"] = manifest_takes(manifest)
        for corpus, takes in corpora.items():
            by_speaker: dict[str, list[Take]] = {}
            for t in takes:
                by_speaker.setdefault(t.speaker, []).append(t)
            ones, seg_right, file_right, scored, unlabelled = [], 0, 0, 0, 0
            for speaker, own in sorted(by_speaker.items()):
                own = own[:args.per_speaker]
                path = tmp / f"{speaker}.flac"
                spans = build(own, path, pauses=(1.0, 2.0))
                result = segment_recording(predictor, lambda rate: audio_blocks(path, rate), str(path))
                one, preds = score(spans, result["segments"])
                alone = [e["pred"] for e in predictor.predict([t.path for t, _, _ in spans])]
                ones += one
                for (take, _, _), seg, file in zip(spans, preds, alone):
                    if take.label not in predictor.class_names:
                        unlabelled += 1
                        continue
                    scored += 1
                    seg_right += seg == take.label
                    file_right += file == take.label
            share, seg_acc, file_acc = sum(ones) / len(ones), seg_right / scored, file_right / scored
            gap = seg_acc - file_acc
            print(f"{corpus}: {len(by_speaker)} speakers, {len(ones)} takes")
            print(f"  one segment per take: {100 * share:.1f} % (target >= {100 * ONE_SEGMENT_TARGET:.0f} %): "
                  f"{'met' if share >= ONE_SEGMENT_TARGET else 'NOT met'}")
            print(f"  accuracy per segment {100 * seg_acc:.1f} %, each take as its own file {100 * file_acc:.1f} %, "
                  f"difference {100 * gap:+.1f} points (target within {100 * ACCURACY_GAP_TARGET:.0f}): "
                  f"{'met' if abs(gap) <= ACCURACY_GAP_TARGET else 'NOT met'}"
                  + (f"; {unlabelled} takes of classes the model lacks left out" if unlabelled else ""))
    print(f"conditions: {os.cpu_count()} CPUs, load average {load:.2f} at the start, "
          f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
