"""A folder of RAVDESS clips through `emofuse predict FOLDER --out results.jsonl`: files per second, peak memory, resume.

    python benchmarks/bench_folder.py [--files 1000] [--workers N] [--chunk N] [--interrupt-after 300] [--model NAME]

The folder holds --files symbolic links to RAVDESS speech clips (../shared/data/ravdess/audio16k, all actors), predicted
by the bundled default model (or --model) through the command line, as a user runs it. Three runs:

1. the whole folder into a new JSONL file: files/s over the whole command (start-up included) and over the batch alone
   (the command's own summary line), the peak memory of the command and its worker processes together (the sum of
   their proportional sets, PSS, read from /proc every 0.2 s: Linux), and of the largest single process (getrusage);
2. the same command into a second file, interrupted (SIGINT, as Ctrl-C) once --interrupt-after results are on disk;
3. that command again: it must skip what the file holds, predict the rest, and leave every clip exactly once with the
   answers of run 1.

The machine is shared: the load average before and after is printed with the figures; CPU time (the command and its
workers) beside the wall clock. Figures are printed, not asserted; the targets are >= 25 files/s and <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAVDESS = REPO.parent / "shared" / "data" / "ravdess" / "audio16k"


def make_folder(root: Path, count: int) -> Path:
    """``count`` links to RAVDESS clips, spread over every actor, in one sub-folder per actor."""
    clips = sorted(RAVDESS.glob("Actor_*/*.flac"))
    if len(clips) < count:
        raise SystemExit(f"{RAVDESS} holds {len(clips)} clips, fewer than --files {count}")
    chosen = [clips[i * len(clips) // count] for i in range(count)]
    folder = root / "clips"
    for clip in chosen:
        link = folder / clip.parent.name / clip.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(clip.resolve())
    return folder


def tree_memory(pid: int) -> tuple[int, int]:
    """Bytes resident in ``pid`` and all its descendants (from /proc): the sum of their resident sets (RSS, which counts
    the pages of a shared library once per process) and of their proportional sets (PSS: a shared page split among the
    processes that map it, so that the sum is the memory the job takes)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    rss = pss = 0
    for p in tree:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()[1:])
            rss += int(fields["Rss"].split()[0]) * 1024
            pss += int(fields["Pss"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            continue
    return rss, pss


def run(command: list[str], out: Path, interrupt_after: int | None = None) -> dict:
    """Run ``command``; its wall time, CPU time, peak tree memory, exit status and stderr. With ``interrupt_after``,
    SIGINT once ``out`` holds that many lines."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    peak_rss = peak_pss = 0
    first = None
    while process.poll() is None:
        rss, pss = tree_memory(process.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        lines = out.read_bytes().count(b"\n") if out.exists() else 0
        if lines and first is None:
            first = time.perf_counter() - started
        if interrupt_after is not None and lines >= interrupt_after:
            os.killpg(process.pid, signal.SIGINT)
            interrupt_after = None
        time.sleep(0.2)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_rss": peak_rss, "peak_pss": peak_pss, "first_result_s": first,
            "code": process.returncode,
            "stderr": process.stderr.read(), "largest_process": after.ru_maxrss * 1024}


def read_results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None, help="predict --workers (default: predict's own choice)")
    parser.add_argument("--chunk", type=int, default=None, help="predict --chunk (default: predict's own)")
    parser.add_argument("--interrupt-after", type=int, default=300, help="results on disk before the interruption")
    parser.add_argument("--model", default=None, help="a bundled model (default: emofuse.zoo.DEFAULT)")
    args = parser.parse_args()

    from emofuse import zoo
    from emofuse.inference.formats import result_id

    model = args.model or zoo.DEFAULT
    card = zoo.card(model)
    print(f"model {model}: {card['features']['name']} {card['features']['params'].get('model', '')}; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); load average before "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp), args.files)
        options = ["--model", model, *(["--workers", str(args.workers)] if args.workers else []),
                   *(["--chunk", str(args.chunk)] if args.chunk else [])]
        command = [sys.executable, "-m", "emofuse", "predict", str(folder), *options, "--out"]

        whole = Path(tmp) / "whole.jsonl"
        r = run([*command, str(whole)], whole)
        summary = r["stderr"].strip().splitlines()[-1] if r["stderr"].strip() else "(no summary)"
        results = read_results(whole)
        print(f"1. {args.files} clips, whole run: {r['wall']:.1f} s wall, {args.files / r['wall']:.1f} files/s "
              f"(start-up included; first result on disk after {r['first_result_s'] or 0:.1f} s); CPU {r['cpu']:.1f} s "
              f"in all processes, {1000 * r['cpu'] / args.files:.0f} ms a file; exit {r['code']}, {len(results)} results")
        print(f"   predict's summary: {summary}")
        print(f"   peak memory: {r['largest_process'] / 2**30:.2f} GB RSS of the largest single process (getrusage); "
              f"the command and its workers together {r['peak_pss'] / 2**30:.2f} GB PSS "
              f"({r['peak_rss'] / 2**30:.2f} GB summing their RSS, shared libraries counted once per process)")

        resumed = Path(tmp) / "resumed.jsonl"
        cut = run([*command, str(resumed)], resumed, interrupt_after=args.interrupt_after)
        held = resumed.read_bytes().count(b"\n")
        print(f"2. interrupted (SIGINT) after {args.interrupt_after} results: exit {cut['code']}, {held} whole lines on "
              f"disk after {cut['wall']:.1f} s")
        rest = run([*command, str(resumed)], resumed)
        again = read_results(resumed)
        ids = [result_id(e) for e in again]
        same = {result_id(e): e["probs"] for e in again} == {result_id(e): e["probs"] for e in results}
        print(f"3. rerun: {rest['wall']:.1f} s, exit {rest['code']}; {len(again)} results, {len(set(ids))} distinct ids, "
              f"answers {'identical to' if same else 'DIFFERENT from'} run 1; "
              f"{rest['stderr'].strip().splitlines()[-1] if rest['stderr'].strip() else ''}")
        ok = len(again) == len(set(ids)) == args.files and same
        print(f"resume: {'OK' if ok else 'FAILED'}; load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
