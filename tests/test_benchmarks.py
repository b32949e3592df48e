"""The benchmarks that stand for the start-up and live-input goals run and print their figures (their timings are
read by people, not asserted: a loaded CI machine would fail them)."""

import subprocess
import sys

import pytest

from conftest import REPO, requires_shared_data


def run(script: str, *argv: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@requires_shared_data()
@pytest.mark.slow
def test_start_up_benchmark_prints_its_figures():
    out = run("bench_cold_start.py", "--repeats", "1")
    for what in ("unknown config key (refused): median", "does not exist (refused): median", "cold `emofuse predict",
                 "real-time factor"):
        assert what in out, out


@requires_shared_data()
@pytest.mark.slow
def test_stream_benchmark_prints_latency_and_real_time_factor():
    out = run("bench_stream.py", "--seconds", "8")
    assert "latency per window: median" in out and "real-time factor:" in out, out
