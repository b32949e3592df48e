"""``emofuse serve``: a local web app to try a finished ``emofuse cv`` run on recordings (see ``app``)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from emofuse.core.registry import ConfigError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, max_upload_mb: float = 100.0,
          max_queue: int = 4) -> None:
    """Load the run's models once and serve the page and the API until interrupted."""
    try:
        import uvicorn

        from emofuse.serve.app import Settings, create_app
    except ImportError as err:
        raise ConfigError(f"emofuse serve needs the 'serve' extra ({err.name} is not installed): "
                          "pip install 'emofuse[serve]'") from None
    from emofuse.inference.predict import Predictor

    if max_upload_mb <= 0:
        raise ConfigError("--max-upload-mb must be positive")
    if max_queue < 0:
        raise ConfigError("--max-queue must be 0 or more")
    if not is_loopback(host):
        print(f"emofuse serve: WARNING: listening on {host}, not on this machine only: anyone who can reach it can upload "
              "files and use the model; there is no authentication and no TLS", file=sys.stderr)
    predictor = Predictor(run_dir)
    app = create_app(predictor, Settings(max_upload_mb=max_upload_mb, max_queue=max_queue))
    shown = f"[{host}]" if ":" in host else host
    print(f"emofuse serve: {predictor.config.name} ({len(predictor.folds)} fold models) on http://{shown}:{port}/ "
          f"(uploads up to {max_upload_mb:g} MB, {max_queue} waiting at most; Ctrl+C stops)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
