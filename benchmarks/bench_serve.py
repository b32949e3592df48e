"""A bounded burst of concurrent requests against a local `emofuse serve`: latency percentiles and errors.

    python benchmarks/bench_serve.py [--run RUN_DIR | --url http://127.0.0.1:PORT] [--requests 24] [--concurrency 8]
                                     [--max-queue 4] [--endpoint predict|analyze] [--files F ...]

Without --url, a server is started on a free loopback port for RUN_DIR (without --run, a run of
configs/ravdess_mars.yaml, 6 folds and 2 epochs, is trained on the packaged sample first: the cost
of a prediction depends on the model's architecture, not on how well it was trained) and stopped at
the end. The target must be a loopback address: this is not a load-testing tool for other machines.
--requests uploads (the CREMA-D clips in turn) go out with at most --concurrency in flight; the
server runs one prediction at a time and refuses requests beyond --max-queue waiting with 503.
Printed: answers by status, latency percentiles of the answered (200) requests and of the refused
(503) ones, throughput, and whether the server still answers /api/health afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

from emofuse.serve import is_loopback

REPO = Path(__file__).resolve().parents[1]
CREMA = REPO.parent / "shared" / "data" / "crema-d"
MAX_REQUESTS, MAX_CONCURRENCY = 1000, 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run_dir: Path, max_queue: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "emofuse", "serve", str(run_dir), "--port", str(port),
                               "--max-queue", str(max_queue)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode} before answering")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the server did not answer /api/health within 180 s")


async def burst(url: str, endpoint: str, files: list[Path], n: int, concurrency: int) -> list[tuple[int | str, float]]:
    payloads = [(f.name, f.read_bytes()) for f in files]
    gate = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, i: int) -> tuple[int | str, float]:
        name, data = payloads[i % len(payloads)]
        async with gate:
            started = time.perf_counter()
            try:
                response = await client.post(f"{url}/api/{endpoint}", files={"file": (name, data, "application/octet-stream")})
                status: int | str = response.status_code
            except httpx.HTTPError as err:
                status = type(err).__name__
            return status, time.perf_counter() - started

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        return await asyncio.gather(*(one(client, i) for i in range(n)))


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    p = np.percentile(values, [50, 90, 99])
    return f"n={len(values)}  p50 {p[0]:.3f} s  p90 {p[1]:.3f} s  p99 {p[2]:.3f} s  max {max(values):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None, help="cv run directory to serve (default: train a small one)")
    parser.add_argument("--url", default=None, help="a server already running on this machine (loopback only)")
    parser.add_argument("--requests", type=int, default=24, help=f"requests in the burst (at most {MAX_REQUESTS})")
    parser.add_argument("--concurrency", type=int, default=8, help=f"requests in flight at once (at most {MAX_CONCURRENCY})")
    parser.add_argument("--max-queue", type=int, default=4, help="the started server's --max-queue (default 4)")
    parser.add_argument("--endpoint", choices=["predict", "analyze"], default="predict")
    parser.add_argument("--files", type=Path, nargs="+", default=None, help="files to upload (default: the CREMA-D clips)")
    args = parser.parse_args()
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise SystemExit(f"--requests must be 1..{MAX_REQUESTS} and --concurrency 1..{MAX_CONCURRENCY}")
    files = args.files or sorted(p for p in CREMA.glob("*") if p.suffix in (".flv", ".mp3"))
    if not files:
        raise SystemExit(f"no files to upload: give --files (the default CREMA-D clips are not in {CREMA})")

    server = None
    if args.url:
        host = urlparse(args.url).hostname or ""
        if not is_loopback(host):
            raise SystemExit(f"{args.url}: not a loopback address; this benchmark only sends bursts to this machine")
        url = args.url.rstrip("/")
    else:
        run = args.run
        if run is None:
            sys.path.insert(0, str(REPO / "benchmarks"))
            from bench_predict import train_sample_run

            print("training a small run of configs/ravdess_mars.yaml on the packaged sample ...", flush=True)
            run = train_sample_run(Path(tempfile.mkdtemp(prefix="bench-serve-")))
        started = time.perf_counter()
        server, url = start_server(run, args.max_queue)
        print(f"server up in {time.perf_counter() - started:.1f} s at {url} (--max-queue {args.max_queue})")
    try:
        warm = httpx.post(f"{url}/api/predict", files={"file": (files[0].name, files[0].read_bytes())}, timeout=600)
        print(f"warm-up request: {warm.status_code}")
        started = time.perf_counter()
        results = asyncio.run(burst(url, args.endpoint, files, args.requests, args.concurrency))
        wall = time.perf_counter() - started
        counts = Counter(status for status, _ in results)
        answered = [t for s, t in results if s == 200]
        print(f"burst: {args.requests} POST /api/{args.endpoint} ({len(files)} files in turn), {args.concurrency} in flight, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print("answers: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items(), key=lambda kv: str(kv[0]))))
        print(f"latency of 200s: {percentiles(answered)}")
        print(f"latency of 503s: {percentiles([t for s, t in results if s == 503])}")
        print(f"throughput: {len(answered) / wall:.2f} predictions/s over {wall:.2f} s")
        errors = {s: n for s, n in counts.items() if s not in (200, 503)}
        print(f"errors (neither 200 nor 503): {sum(errors.values())} {errors or ''}".rstrip())
        health = httpx.get(f"{url}/api/health", timeout=10)
        print(f"after the burst: /api/health {health.status_code} {health.json()}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
