"""The page and a report in a real browser: Debian's chromium driven by Selenium (headless).

Skipped, with the reason, where chromium, chromedriver or selenium is missing; CI installs them
(.ci/run) and sets EMOFUSE_REQUIRE_BROWSER=1, which turns the skip into a failure. Screenshots are
saved as test artefacts under $EMOFUSE_TEST_ARTIFACTS (default: the test's temporary directory).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from emofuse.reporting.html_report import write_report

from test_media import CREMA, requires_crema
from web_fixtures import live_server, long_recording, sample_run

CHROMIUM = Path(os.environ.get("EMOFUSE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("EMOFUSE_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1200,1600",
         # a synthetic microphone (a beep) that the page may use without asking
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            return f"{path} is missing (apt-get install chromium chromium-driver; Debian package {package})"
    return None


MISSING = _missing()
if MISSING and os.environ.get("EMOFUSE_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"EMOFUSE_REQUIRE_BROWSER=1 but the browser test cannot run: {MISSING}")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"browser test: {MISSING}")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("EMOFUSE_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="emofuse-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return sample_run(tmp_path_factory)


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    with live_server(run_dir, log=tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def wait_for_answer(driver, timeout: float = 120) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element("tag name", "body").get_attribute("data-state") in ("done", "error"))
    return driver.find_element("tag name", "body").get_attribute("data-state")


def open_page(driver, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: by_id(d, "model-name").text not in ("", "…"))


def upload_in_page(driver, path: Path) -> str:
    driver.execute_script("document.body.dataset.state = ''")
    by_id(driver, "file").send_keys(str(path))
    by_id(driver, "submit").click()
    return wait_for_answer(driver)


def api_predict(url: str, path: Path) -> dict:
    response = httpx.post(f"{url}/api/predict", files={"file": (path.name, path.read_bytes())}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
@requires_crema
def test_page_shows_the_apis_prediction_for_a_crema_d_clip(browser, server, artifacts):
    clip = CREMA / "1001_DFA_HAP_XX.flv"
    open_page(browser, server)
    assert by_id(browser, "model-name").text == "ravdess_mars_egemaps"
    assert upload_in_page(browser, clip) == "done", by_id(browser, "error").text
    expected = api_predict(server, clip)
    assert by_id(browser, "pred").text == expected["pred"]
    assert by_id(browser, "result-file").text == clip.name
    shown = {r.find_element("tag name", "td").text: r.find_elements("tag name", "td")[1].text
             for r in by_id(browser, "modality-table").find_elements("css selector", "tbody tr")}
    assert shown == {c: f"{p:.3f}" for c, p in expected["probs"].items()}
    missing = by_id(browser, "missing").find_elements("tag name", "li")
    assert [li.get_attribute("data-modality") for li in missing] == list(expected["missing"]) == ["visual"]
    assert "OpenFace" in missing[0].text
    assert expected["speaker_stats"] == {"audio": "typical"}  # a file on its own, as `emofuse predict FILE` has it
    assert by_id(browser, "speaker-stats").text == "Speaker normalisation: audio with a typical training speaker's statistics."
    assert by_id(browser, "timeline-note").text == "No timeline: recording shorter than 6 s."
    browser.save_screenshot(str(artifacts / "serve_prediction.png"))


@pytest.mark.slow
@requires_crema
def test_page_draws_a_timeline_for_a_long_recording(browser, server, artifacts, tmp_path):
    recording = long_recording(tmp_path / "six_clips.wav")
    open_page(browser, server)
    assert upload_in_page(browser, recording) == "done", by_id(browser, "error").text
    analyzed = httpx.post(f"{server}/api/analyze", files={"file": (recording.name, recording.read_bytes())}, timeout=300).json()
    segments = analyzed["timeline"]["segments"]
    cells = by_id(browser, "timeline").find_elements("css selector", "rect.segment")
    assert [c.get_attribute("data-pred") for c in cells] == [s["pred"] for s in segments] and segments
    assert len(by_id(browser, "timeline").find_elements("css selector", "polyline")) == 8
    assert by_id(browser, "pred").text == analyzed["prediction"]["pred"]
    browser.execute_script("document.getElementById('timeline-section').scrollIntoView()")
    browser.save_screenshot(str(artifacts / "serve_timeline.png"))


@pytest.mark.slow
def test_page_records_from_the_microphone(browser, server):
    open_page(browser, server)
    browser.execute_script("document.body.dataset.state = ''")
    by_id(browser, "record").click()
    time.sleep(3)
    assert by_id(browser, "record").text == "Stop"
    by_id(browser, "record").click()
    assert wait_for_answer(browser) == "done", by_id(browser, "error").text
    assert by_id(browser, "result-file").text.startswith("recording.")
    assert by_id(browser, "pred").text in by_id(browser, "model-classes").text


def test_page_shows_a_refusal(browser, server, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not a recording\n" * 10)
    open_page(browser, server)
    assert upload_in_page(browser, bad) == "error"
    assert "notes.wav: not an audio or video file" in by_id(browser, "error").text
    assert not by_id(browser, "result").is_displayed()
    assert httpx.get(f"{server}/api/health").json()["status"] == "ok"


def test_report_opens_with_its_tables_and_figures(browser, run_dir, artifacts, tmp_path):
    report = write_report(run_dir, tmp_path / "report.html")
    browser.get(report.as_uri())
    assert browser.title == "speaker-independent cross-validation: ravdess_mars_egemaps"
    rows = lambda table: browser.find_elements("css selector", f"table#{table} tbody tr")  # noqa: E731
    assert len(rows("folds")) == 6 and len(rows("classes")) == 8
    assert browser.find_element("css selector", "table#summary").text.startswith("test accuracy (fused)")
    images = browser.find_elements("tag name", "img")
    assert len(images) == 5
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", i) for i in images)
    browser.save_screenshot(str(artifacts / "report.png"))
