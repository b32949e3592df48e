"""`emofuse serve`: the API against `emofuse predict --json`, bad input, private uploads, the timeline, the queue."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from starlette.testclient import TestClient

from emofuse.cli import main
from emofuse.data.audio import load_audio
from emofuse.inference.predict import Predictor
from emofuse.serve import is_loopback
from emofuse.serve.app import Settings, create_app

from test_media import CREMA, requires_crema, write_video
from web_fixtures import live_server, long_recording, sample_run

CLIPS = sorted(p for p in CREMA.glob("*") if p.suffix in (".flv", ".mp3"))
FLV = CREMA / "1001_DFA_ANG_XX.flv"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return sample_run(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(run_dir):
    return Predictor(run_dir)


@pytest.fixture
def client(predictor):
    with TestClient(create_app(predictor)) as client:
        yield client


def upload(client, path: Path | None = None, data: bytes | None = None, name: str | None = None,
           content_type: str = "application/octet-stream", endpoint: str = "predict"):
    data = path.read_bytes() if data is None else data
    return client.post(f"/api/{endpoint}", files={"file": (name or path.name, data, content_type)})


def assert_same_entry(api: dict, cli: dict, name: str) -> None:
    assert api["file"] == name and sorted(api) == sorted(cli)
    assert api["pred"] == cli["pred"] and api["modalities"] == cli["modalities"] and api["missing"] == cli["missing"]
    assert api.get("speaker_stats") == cli.get("speaker_stats") and api.get("warnings") == cli.get("warnings")
    assert api.get("speaker", "absent") == cli.get("speaker", "absent")
    assert api["probs"] == pytest.approx(cli["probs"], abs=1e-6)
    assert api["modality_probs"].keys() == cli["modality_probs"].keys()
    for m in cli["modality_probs"]:
        assert api["modality_probs"][m] == pytest.approx(cli["modality_probs"][m], abs=1e-6)


@pytest.mark.slow
@requires_crema
def test_predict_answers_what_emofuse_predict_prints(client, run_dir, capsys):
    assert len(CLIPS) == 12  # six flv clips of one actor, six mp3 clips of another
    preds = set()
    for clip in CLIPS:
        response = upload(client, clip, content_type="audio/mpeg" if clip.suffix == ".mp3" else "video/x-flv")
        assert response.status_code == 200, response.text
        assert main(["predict", str(run_dir), str(clip), "--json"]) == 0
        (cli,) = json.loads(capsys.readouterr().out)
        assert_same_entry(response.json(), cli, clip.name)
        preds.add(tuple(response.json()["probs"].values()))
    assert len(preds) == len(CLIPS)  # every clip gets its own answer


def test_model_and_health(client, run_dir, predictor):
    info = client.get("/api/model").json()
    assert info["config"] == json.loads((run_dir / "results.json").read_text())["name"] == "ravdess_mars_egemaps"
    assert info["classes"] == list(predictor.class_names) and info["modalities"] == ["audio", "visual"]
    assert info["folds"] == [1, 2, 3, 4, 5, 6] and info["speaker_norm"] == "transductive"  # ravdess_ce_egemaps.yaml's true (an alias)
    assert info["data_fingerprint"] == json.loads((run_dir / "data_fingerprint.json").read_text())
    assert client.get("/api/health").json() == {"status": "ok", "busy": False, "admitted": 0, "max_queue": 4}
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200


def truncated(path: Path, out: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


@requires_crema
def test_bad_input_gets_a_named_4xx_and_the_server_keeps_serving(client, predictor, tmp_path):
    tone = (0.2 * np.sin(np.arange(48000) / 5)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", tone, 16000)
    sf.write(tmp_path / "tone.flac", tone, 16000)
    cases = [  # (what is sent, status, problem, words of the message)
        (dict(data=b"", name="empty.wav"), 422, "empty_file", "empty.wav: empty file"),
        (dict(data=b"these are my notes, not a recording\n" * 20, name="notes.wav", content_type="audio/wav"),
         422, "not_media", "notes.wav: not an audio or video file"),
        (dict(path=truncated(FLV, tmp_path / "cut.flv")), 422, "truncated", "cut.flv: truncated: the container announces 2.23 s"),
        (dict(path=truncated(tmp_path / "tone.wav", tmp_path / "cut.wav")), 422, "truncated", "cut.wav: truncated: the WAV header"),
        (dict(path=truncated(tmp_path / "tone.flac", tmp_path / "cut.flac")), 422, "corrupt", "corrupt or truncated"),
        (dict(path=write_video(tmp_path / "silent.mp4", np.full((10, 64, 64, 3), 50, np.uint8)), content_type="video/mp4"),
         422, "no_prediction", "silent.mp4: no prediction: no usable modality"),
        (dict(path=FLV, content_type="text/plain"), 415, "content_type", "content type 'text/plain' is not audio/*"),
        (dict(path=FLV, name="../../etc/clip.flv"), 400, "bad_file_name", "'../../etc/clip.flv' is not a plain file name"),
        (dict(path=FLV, name="..\\clip.flv"), 400, "bad_file_name", "is not a plain file name"),
    ]
    for sent, status, problem, words in cases:
        response = upload(client, **sent)
        assert response.status_code == status, (sent, response.text)
        body = response.json()
        assert body["problem"] == problem and words in body["error"], body
        if problem == "no_prediction":  # the entry `emofuse predict` would print, with the reasons
            assert body["entry"]["missing"]["audio"] == "silent.mp4: no audio stream in the file"
        assert str(tmp_path) not in body["error"] and "request-" not in body["error"]  # no server paths leak
        assert client.get("/api/health").status_code == 200
    response = client.post("/api/predict", json={"file": "clip.flv"})
    assert response.status_code == 415 and "send multipart/form-data" in response.json()["error"]
    response = client.post("/api/predict", files={"recording": ("clip.flv", b"abc")})
    assert response.status_code == 400 and response.json()["problem"] == "missing_file"
    assert client.get("/api/nothing").json()["problem"] == "http_404"
    assert client.get("/api/predict").status_code == 405
    assert upload(client, FLV).status_code == 200  # still serving
    assert not any(Path(client.app.state.upload_root).iterdir())  # and nothing left behind


@requires_crema
def test_uploads_over_the_limit_are_refused(predictor):
    size = FLV.stat().st_size
    # a declared length far over the limit is refused before reading; one just over it while streaming
    for limit in (size / 4, size - 1000):
        with TestClient(create_app(predictor, Settings(max_upload_mb=limit / 2**20))) as client:
            response = upload(client, FLV)
            assert response.status_code == 413 and response.json()["problem"] == "too_large"
            assert "--max-upload-mb" in response.json()["error"]
            assert not any(Path(client.app.state.upload_root).iterdir())
    with TestClient(create_app(predictor, Settings(max_upload_mb=(size + 10) / 2**20))) as client:
        assert upload(client, FLV).status_code == 200


@requires_crema
def test_uploads_sit_in_a_private_directory_until_answered(client, predictor, monkeypatch):
    seen = []
    real_predict = predictor.predict

    def spy(files, *args, **kwargs):
        path = Path(files[0])
        seen.append((path, stat.S_IMODE(path.parent.stat().st_mode), stat.S_IMODE(Path(path.parent.parent).stat().st_mode),
                     path.is_file()))
        return real_predict(files, *args, **kwargs)

    monkeypatch.setattr(predictor, "predict", spy)
    assert upload(client, FLV).status_code == 200
    ((path, request_mode, root_mode, existed),) = seen
    assert existed and request_mode == root_mode == 0o700 and path.suffix == ".flv"
    assert path.parent.parent == Path(client.app.state.upload_root)
    assert not path.exists() and not path.parent.exists()
    root = Path(client.app.state.upload_root)
    client.__exit__(None, None, None)  # the server stops: its directory goes too
    assert not root.exists()


@requires_crema
def test_an_internal_failure_is_a_json_500_and_the_server_goes_on(predictor, monkeypatch):
    real_predict = predictor.predict

    def fail_once(files, *args, **kwargs):
        monkeypatch.setattr(predictor, "predict", real_predict)
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(predictor, "predict", fail_once)
    with TestClient(create_app(predictor), raise_server_exceptions=False) as client:
        response = upload(client, FLV)
        assert response.status_code == 500
        assert response.json() == {"error": "internal error (RuntimeError: the model fell over)", "problem": "internal"}
        assert upload(client, FLV).status_code == 200
        assert not any(Path(client.app.state.upload_root).iterdir())


@requires_crema
def test_timeline_segments_are_predictions_of_their_speech(client, predictor, tmp_path):
    recording = long_recording(tmp_path / "long.wav")
    response = upload(client, recording, endpoint="analyze", content_type="audio/wav")
    assert response.status_code == 200, response.text
    answer = response.json()
    whole = upload(client, recording).json()
    assert answer["prediction"] == whole
    timeline = answer["timeline"]
    wave = load_audio(recording, 16000)
    assert timeline["duration_s"] == pytest.approx(len(wave) / 16000, abs=1e-3)
    segments = timeline["segments"]
    assert len(segments) >= 2 and all(1.0 <= s["end"] - s["start"] <= 10.0 for s in segments)
    assert all(a["end"] <= b["start"] for a, b in zip(segments, segments[1:]))
    assert sum(timeline["summary"].values()) == pytest.approx(1, abs=1e-3)
    for s in segments:  # recomputed here: the segment's samples, predicted on their own
        sf.write(tmp_path / "segment.wav", wave[round(s["start"] * 16000):round(s["end"] * 16000)], 16000, subtype="FLOAT")
        (expected,) = predictor.predict([tmp_path / "segment.wav"])
        assert s["pred"] == expected["pred"] and s["probs"] == pytest.approx(expected["probs"], abs=1e-5)
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(8 * 16000, np.float32), 16000)
    quiet = upload(client, silence, endpoint="analyze").json()["timeline"]
    assert quiet["segments"][0]["label"] == "no speech" and quiet["no_speech"].startswith("no speech")
    short = upload(client, FLV, endpoint="analyze").json()
    assert short["timeline"]["skipped"] == "recording shorter than 6 s" and short["prediction"]["file"] == FLV.name


@requires_crema
def test_one_prediction_at_a_time_and_503_beyond_the_queue(predictor, monkeypatch):
    release, lock = threading.Event(), threading.Lock()
    running, most = [0], [0]
    real_predict = predictor.predict

    def slow(files, *args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            assert release.wait(60)
            return real_predict(files, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(predictor, "predict", slow)
    app = create_app(predictor, Settings(max_queue=1))
    data = FLV.read_bytes()

    async def scenario():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                post = lambda: client.post("/api/predict", files={"file": (FLV.name, data)})  # noqa: E731
                tasks = [asyncio.create_task(post()) for _ in range(4)]
                done, _ = await asyncio.wait(tasks, timeout=60, return_when=asyncio.FIRST_COMPLETED)
                refused = [t.result() for t in done]
                health = (await client.get("/api/health")).json()
                release.set()
                answers = await asyncio.gather(*tasks)
                after = await client.post("/api/predict", files={"file": (FLV.name, data)})
                return refused, health, answers, after, (await client.get("/api/health")).json()

    refused, health, answers, after, health_after = asyncio.run(scenario())
    assert refused and all(r.status_code == 503 for r in refused)
    assert refused[0].json()["problem"] == "busy" and refused[0].headers["retry-after"] == "1"
    assert health["busy"] and health["admitted"] == 2  # one running, one waiting
    assert sorted(r.status_code for r in answers) == [200, 200, 503, 503]
    assert most[0] == 1  # never two predictions at once
    assert after.status_code == 200 and health_after["admitted"] == 0 and not health_after["busy"]


def test_serve_command_binds_localhost_and_warns_otherwise(run_dir, monkeypatch, capsys):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert main(["serve", str(run_dir)]) == 0
    assert calls[-1]["host"] == "127.0.0.1" and calls[-1]["port"] == 8000
    assert "WARNING" not in capsys.readouterr().err
    assert main(["serve", str(run_dir), "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert calls[-1]["host"] == "0.0.0.0" and calls[-1]["port"] == 9000
    assert "WARNING: listening on 0.0.0.0, not on this machine only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse refuses it, before the run is loaded
        main(["serve", str(run_dir), "--max-upload-mb", "0"])
    assert exit_.value.code == 2 and "--max-upload-mb: 0 is not a positive number" in capsys.readouterr().err
    assert all(map(is_loopback, ["127.0.0.1", "::1", "localhost", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.20", "example.org"]))


@pytest.mark.slow
@requires_crema
def test_live_server(run_dir, tmp_path):
    """The real process: uvicorn, a large upload refused with a readable 413, then a prediction as the CLI's."""
    with live_server(run_dir, "--max-upload-mb", "0.5", log=tmp_path / "serve.log") as url:
        big = httpx.post(f"{url}/api/predict", files={"file": ("big.wav", bytes(2 * 2**20))}, timeout=60)
        assert big.status_code == 413 and big.json()["problem"] == "too_large"
        response = httpx.post(f"{url}/api/predict", files={"file": (FLV.name, FLV.read_bytes(), "video/x-flv")}, timeout=120)
        assert response.status_code == 200 and response.json()["file"] == FLV.name
        with TestClient(create_app(Predictor(run_dir))) as client:
            assert_same_entry(response.json(), upload(client, FLV).json(), FLV.name)
    assert "Uvicorn running on http://127.0.0.1" in (tmp_path / "serve.log").read_text()


def test_every_endpoint_is_in_the_help_and_on_the_page(predictor, capsys):
    """Before: /api/analyze, the timeline endpoint the page itself calls, was in neither."""
    app = create_app(predictor, Settings())
    endpoints = [(sorted(r.methods - {"HEAD"})[0], r.path) for r in app.routes if r.path.startswith("/api/")]
    assert len(endpoints) >= 4
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    page = " ".join((Path(__file__).parents[1] / "src/emofuse/serve/static/index.html").read_text().split())
    for method, path in endpoints:
        assert f"{method} {path}" in help_text
        assert f"<code>{method} {path}</code>" in page
    assert "pip install 'emofuse[serve]'" in help_text
