"""Shared by the report, server and browser tests: a small real run, long recordings, a live `emofuse serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from emofuse.cli import main
from emofuse.data.audio import load_audio

from conftest import REPO
from test_media import CREMA

SAMPLE_RUN_ARGS = ["--set", "train.epochs=2", "--set", "train.early_stopping.min_epochs=0", "--no-progress"]


def sample_run(tmp_path_factory) -> Path:
    """`emofuse cv configs/ravdess_mars_egemaps.yaml` (6 folds, 2 epochs) on the packaged RAVDESS sample, trained once per
    test session: every module asks for the same directory, and a finished run is only read back."""
    out = tmp_path_factory.getbasetemp() / "web_sample_run"
    assert main(["cv", str(REPO / "configs" / "ravdess_mars_egemaps.yaml"), "--out", str(out), *SAMPLE_RUN_ARGS]) == 0
    return out


def long_recording(path: Path, sample_rate: int = 16000) -> Path:
    """The six CREMA-D flv clips' audio end to end (about 13 s), as a WAV."""
    waves = [load_audio(f, sample_rate) for f in sorted(CREMA.glob("*.flv"))]
    sf.write(path, np.concatenate(waves), sample_rate)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(run_dir: Path, *options: str, log: Path | None = None):
    """`emofuse serve RUN_DIR` in its own process on a free loopback port; yields its URL, stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "emofuse", "serve", str(run_dir), "--port", str(port), *options],
                              stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"emofuse serve exited with code {server.returncode}" + (
                f": {Path(log).read_text()}" if log else "")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "emofuse serve did not answer /api/health within 180 s"
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        if log:
            out.close()
