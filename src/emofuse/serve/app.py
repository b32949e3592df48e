"""The web app: a page to try the model, and a JSON API (Starlette).

- ``GET /``: the page (upload a recording or record one; probabilities, missing modalities, timeline);
- ``POST /api/predict``: multipart field ``file``; answers the JSON object ``emofuse predict --json``
  prints for that file (``file`` is the uploaded file's name); the query parameters ``classes=angry,happy,...`` and
  ``min_confidence=P`` do what predict's ``--classes`` and ``--min-confidence`` do;
- ``POST /api/analyze``: the same upload; answers ``{"prediction": <as /api/predict>, "timeline": ...}``;
- ``GET /api/health``, ``GET /api/model``.

Every refusal is JSON ``{"error": sentence naming the problem, "problem": code}`` with a 4xx status
(503 when busy). Each upload lives in its own private directory (mode 0700) inside the server's
private temporary directory and is deleted before the answer is sent.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from emofuse.core.registry import ConfigError
from emofuse.inference.predict import confidence_level
from emofuse.serve import timeline as timelines
from emofuse.serve.errors import RequestError
from emofuse.serve.queue import PredictionQueue
from emofuse.serve.uploads import Upload, inspect_media, receive_upload

log = logging.getLogger(__name__)

# The page loads nothing from elsewhere; the browser is told so (and to run no inline script).
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                                 b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass
class Settings:
    max_upload_mb: float = 100.0
    max_queue: int = 4  # requests that may wait while one prediction runs

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (a plain ASGI middleware)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def model_info(predictor, settings: Settings) -> dict:
    config = predictor.config
    fingerprint = predictor.run_dir / "data_fingerprint.json"
    return {
        "config": config.name,
        "run_dir": predictor.run_dir.name,
        "classes": list(predictor.class_names),
        "modalities": list(predictor.modalities),
        "fusion": predictor.fusion_name,
        "folds": [f.index for f in predictor.folds],
        "speaker_norm": config.features.speaker_norm,
        "audio_features": config.features.audio.name if predictor.extractor is not None else None,
        "visual_input": config.data.visual.kind if "visual" in predictor.modalities else None,
        "data_fingerprint": json.loads(fingerprint.read_text()) if fingerprint.is_file() else None,
        "max_upload_mb": settings.max_upload_mb,
        "timeline": timelines.settings(),
    }


def _public(entry: dict, upload: Upload) -> dict:
    """The entry as the client should see it: the stored path replaced by the name the client sent."""
    stored = str(upload.path)

    def clean(value):
        if isinstance(value, str):
            return value.replace(stored, upload.name)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {**clean(entry), "file": upload.name}


def create_app(predictor, settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    info = model_info(predictor, settings)
    sample_rate = predictor.extractor.sample_rate if predictor.extractor is not None else None

    def answer_options(request: Request) -> dict:
        """predict's ``classes`` and ``min_confidence`` from the query string, checked before the upload is read."""
        query, options = request.query_params, {}
        try:
            if "classes" in query:
                options["classes"] = [c.strip() for c in query["classes"].split(",") if c.strip()]
                predictor.class_indices(options["classes"])
            if "min_confidence" in query:
                options["min_confidence"] = float(query["min_confidence"])
                confidence_level(options["min_confidence"], "min_confidence")
        except (ConfigError, ValueError) as err:
            raise RequestError(400, "bad_query", f"{request.url.path}: {err}") from None
        return options

    def predict_file(upload: Upload, with_timeline: bool, options: dict) -> dict:
        """Worker-thread part: check the media, predict it alone, optionally the timeline."""
        wave = inspect_media(upload, sample_rate)
        (entry,) = predictor.predict([upload.path], **options)
        entry = _public(entry, upload)
        if entry.get("error"):
            raise RequestError(422, "no_prediction", f"{upload.name}: no prediction: {entry['error']}", entry=entry)
        if not with_timeline:
            return entry
        return {"prediction": entry, "timeline": timelines.timeline(predictor, wave, sample_rate)}

    async def answer_upload(request: Request, with_timeline: bool) -> JSONResponse:
        options = answer_options(request)
        queue: PredictionQueue = request.app.state.queue
        async with queue.admission():
            workdir = Path(tempfile.mkdtemp(prefix="request-", dir=request.app.state.upload_root))  # mode 0700
            try:
                upload = await receive_upload(request, workdir, settings.max_upload_bytes)
                return JSONResponse(await queue.run(predict_file, upload, with_timeline, options))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    async def predict(request: Request) -> JSONResponse:
        return await answer_upload(request, with_timeline=False)

    async def analyze(request: Request) -> JSONResponse:
        return await answer_upload(request, with_timeline=True)

    async def health(request: Request) -> JSONResponse:
        queue: PredictionQueue = request.app.state.queue
        return JSONResponse({"status": "ok", "busy": queue.running, "admitted": queue.admitted, "max_queue": queue.max_waiting})

    async def model(request: Request) -> JSONResponse:
        return JSONResponse(info)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(resources.files("emofuse.serve").joinpath("static/index.html").read_text())

    async def refused(request: Request, err: RequestError) -> JSONResponse:
        log.info("%s %s refused (%d %s): %s", request.method, request.url.path, err.status, err.problem, err.message)
        headers = {"Retry-After": str(err.details["retry_after_s"])} if "retry_after_s" in err.details else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{request.method} {request.url.path}: {err.detail}", "problem": f"http_{err.status_code}"},
                            status_code=err.status_code, headers=getattr(err, "headers", None))

    async def failed(request: Request, err: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(err).__name__}: {err})", "problem": "internal"}, status_code=500)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        app.state.queue = PredictionQueue(settings.max_queue)
        app.state.upload_root = tempfile.mkdtemp(prefix="emofuse-serve-")  # mode 0700: only this user can read uploads
        try:
            yield
        finally:
            shutil.rmtree(app.state.upload_root, ignore_errors=True)

    routes = [
        Route("/", page),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/analyze", analyze, methods=["POST"]),
        Route("/api/health", health),
        Route("/api/model", model),
        Mount("/static", StaticFiles(packages=[("emofuse.serve", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={RequestError: refused, HTTPException: http_error, Exception: failed})
    app.add_middleware(SecurityHeaders)
    return app
