"""`emofuse report`: self-contained HTML of cv, compare, sweep and robustness run directories, read back and checked."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser

import pandas as pd
import pytest
import yaml

from emofuse.cli import main
from emofuse.reporting.html_report import RUN_KINDS, render_report
from emofuse.reporting.html_report.kinds import RunKind, detect_kind
from emofuse.reporting.html_report.loaders.robustness import level_name
from emofuse.core.registry import ConfigError

from conftest import make_ravdess_fixture
from test_compare import TINY, write_config
from test_sweep import SPACE, SWEEP_TINY
from web_fixtures import sample_run


class Page(HTMLParser):
    """Tables (by id: rows of cell texts), images and every URL-bearing attribute of an HTML document."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.urls += [v for k, v in attrs.items() if k in ("src", "href", "action") and v]
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def body_rows(self, table_id: str) -> list[list[str]]:
        return [r for r in self.tables[table_id] if r and not self._is_header(r, table_id)]

    def _is_header(self, row, table_id):
        return row is self.tables[table_id][0] and table_id in self._headed

    _headed = {"folds", "classes", "comparison", "runs", "trials", "best-folds", "best-classes", "robustness-accuracy",
               "robustness-difference", "separation"}


def check_self_contained(html: str, page: Page) -> None:
    assert not [u for u in page.urls if not u.startswith(("#", "data:"))], "the report links to something outside itself"
    assert not {"script", "link", "iframe"} & page.tags
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    return sample_run(tmp_path_factory)


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    """A compare (Mars and CE, 1 seed) and a grid sweep on the synthetic RAVDESS-shaped fixture (3 folds)."""
    root = tmp_path_factory.mktemp("report_runs")
    data = make_ravdess_fixture(root / "ravdess")
    ce = write_config(root / "ce.yaml", "ce")
    mars = write_config(root / "mars.yaml", "mars", loss={"name": "mars", "params": {"switch_epoch": 1}})
    common = ["--data", str(data), "--cache", str(root / "cache"), "--no-progress"]
    assert main(["compare", str(mars), str(ce), "--out", str(root / "compare"), "--seeds", "1", *common]) == 0
    (root / "tiny.yaml").write_text(yaml.safe_dump(SWEEP_TINY))
    (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
    assert main(["sweep", str(root / "tiny.yaml"), "--space", str(root / "space.yaml"), "--out", str(root / "sweep"),
                 *common]) == 0
    return root / "compare", root / "sweep"


@pytest.fixture(scope="module")
def robustness_run(fixture_runs):
    """`emofuse robustness` of Mars and CE at 0 and 25 % symmetric label noise, on the data of ``fixture_runs``."""
    root = fixture_runs[0].parent
    assert main(["robustness", str(root / "mars.yaml"), str(root / "ce.yaml"), "--axis", "data.label_noise.rate",
                 "--values", "0", "0.25", "--seeds", "1", "--out", str(root / "robustness"), "--data", str(root / "ravdess"),
                 "--cache", str(root / "cache"), "--no-progress",
                 "--set", "train.record_dynamics=on"]) == 0  # the audio input is a frame sequence: dynamics on request
    return root / "robustness"


@pytest.fixture(scope="module")
def inductive_run(fixture_runs):
    """A cv run with inductive speaker normalisation on the fixture data of ``fixture_runs``."""
    root = fixture_runs[0].parent
    config = write_config(root / "inductive.yaml", "inductive",
                          features={**TINY["features"], "speaker_norm": "inductive", "adapt_clips": 4})
    assert main(["cv", str(config), "--data", str(root / "ravdess"), "--cache", str(root / "cache"),
                 "--out", str(root / "inductive"), "--no-progress"]) == 0
    return root / "inductive"


@pytest.mark.slow
def test_cv_report_holds_the_runs_numbers(cv_run, tmp_path, capsys):
    out = tmp_path / "cv.html"
    assert main(["report", str(cv_run), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    html = out.read_text()
    page = Page(html)
    check_self_contained(html, page)
    results = json.loads((cv_run / "results.json").read_text())
    folds = page.body_rows("folds")
    assert len(folds) == len(results["folds"]) == 6
    for row, fold in zip(folds, results["folds"]):
        assert row[0] == str(fold["fold"]) and row[4] == f"{fold['accuracy']:.4f}" and row[5] == f"{fold['ua']:.4f}"
        assert row[6] == f"{fold['macro_f1']:.4f}"
        assert row[7:9] == [f"{fold['modality_accuracy'][m]:.4f}" for m in ("audio", "visual")]
        assert row[9] == f"{fold['best_epoch']} / {fold['epochs_run']}"
    summary = dict(page.tables["summary"])
    assert summary["test accuracy (fused)"] == f"{results['accuracy_mean']:.4f} ± {results['accuracy_std']:.4f}"
    assert summary["UA (unweighted average recall)"] == f"{results['ua_mean']:.4f} ± {results['ua_std']:.4f}"
    assert summary["pooled UA (all test clips)"] == f"{results['pooled_ua']:.4f}"
    assert summary["speaker normalisation"] == "transductive"  # ravdess_ce_egemaps.yaml's true (an alias)
    assert "Each clip is a test clip exactly once;" in html
    # per class: recall is the share of each class's clips predicted as that class, from predictions.csv
    predictions = pd.read_csv(cv_run / "predictions.csv")
    classes = page.body_rows("classes")
    assert [r[0] for r in classes] == [c[5:] for c in predictions.columns if c.startswith("prob_")]
    for name, _precision, recall, _f1, clips in classes:
        mine = predictions[predictions["label"] == name]
        assert int(clips) == len(mine) and recall == f"{(mine['pred'] == name).mean():.4f}"
    # fold accuracy, confusion matrix, validation curves, Mars weights (a Mars run), training-loss histograms
    assert len(page.images) == 5
    assert "name: ravdess_mars_egemaps" in html and "switch_epoch: 10" in html  # the resolved config
    fingerprint = json.loads((cv_run / "data_fingerprint.json").read_text())
    assert dict(page.tables["fingerprint"])["sha256"] == fingerprint["sha256"]
    assert render_report(cv_run) == html  # the same run gives the same file


@pytest.mark.slow
def test_cv_report_of_an_inductive_run_counts_the_enrolment_clips(inductive_run):
    results = json.loads((inductive_run / "results.json").read_text())
    enrolled = sum(len(clips) for clips in results["enrolment_clips"].values())
    assert results["adapt_clips"] == 4 and enrolled == 6 * 4  # six actors, each held out once
    page = Page(render_report(inductive_run))
    summary = dict(page.tables["summary"])
    assert summary["speaker normalisation"] == ("inductive (4 enrolment clips per held-out speaker, never scored; "
                                                "24 in all)")
    assert summary["test clips"] == str(results["n_clips"]) == str(6 * 16 - enrolled)


def test_compare_report(fixture_runs, tmp_path):
    compare, _ = fixture_runs
    assert main(["report", str(compare)]) == 0  # default: RUN_DIR/report.html
    html = (compare / "report.html").read_text()
    page = Page(html)
    check_self_contained(html, page)
    table = pd.read_csv(compare / "comparison.csv")
    rows = page.body_rows("comparison")
    assert [r[0] for r in rows] == ["mars", "ce"]
    for row, ref in zip(rows, table.itertuples()):
        assert row[1] == f"{ref.accuracy_mean:.4f} ± {ref.accuracy_std:.4f}"
    for row, ref in zip(rows, table.itertuples()):
        assert row[2] == f"[{ref.ci_low:.3f}, {ref.ci_high:.3f}]"  # the speaker-bootstrap interval
    assert rows[0][-5:-2] == ["reference", "", ""]
    assert re.fullmatch(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]", rows[1][-5])
    assert rows[1][-4] == f"{table.p_fold[1]:.3f} ({table.p_fold_holm[1]:.3f})"
    for row, ref in zip(rows, table.itertuples()):  # each method beside its linear peer
        assert row[-2] == (f"{ref.peer_accuracy_pooled:.4f}; {100 * ref.delta_vs_peer:+.1f} "
                           f"[{100 * ref.delta_vs_peer_ci_low:+.1f}, {100 * ref.delta_vs_peer_ci_high:+.1f}]")
    assert len(page.body_rows("runs")) == len(pd.read_csv(compare / "runs.csv"))
    plots = json.loads((compare / "comparison.json").read_text())["plots"]
    assert len(page.images) == len(plots) == 5  # accuracy spread, 2 confusion matrices, Mars weights, loss histograms
    for method in ("mars", "ce"):  # each method's resolved config
        assert len(re.findall(rf"(?:^|>)name: {method}$", html, flags=re.M)) == 1


def test_sweep_report_includes_the_best_configurations_test_run(fixture_runs):
    _, sweep = fixture_runs
    html = render_report(sweep)
    page = Page(html)
    check_self_contained(html, page)
    trials = pd.read_csv(sweep / "trials.csv")
    assert len(page.body_rows("trials")) == len(trials)
    best = json.loads((sweep / "best" / "results.json").read_text())
    assert len(page.body_rows("best-folds")) == len(best["folds"])
    assert dict(page.tables["sweep"])["best validation accuracy"] == f"{trials['value'].max():.4f}"


def test_robustness_report_holds_the_table_per_level_the_plot_and_the_separation(robustness_run):
    assert detect_kind(robustness_run).name == "robustness"
    assert main(["report", str(robustness_run)]) == 0
    html = (robustness_run / "report.html").read_text()
    page = Page(html)
    check_self_contained(html, page)
    table = pd.read_csv(robustness_run / "robustness.csv")
    cell = {(r.method, r.value): r for r in table.itertuples()}
    assert page.tables["robustness-accuracy"][0] == ["method", "data.label_noise.rate = 0", "data.label_noise.rate = 0.25"]
    rows = page.body_rows("robustness-accuracy")
    assert [r[0] for r in rows] == ["mars", "ce"]
    for row in rows:
        for text, value in zip(row[1:], (0, 0.25)):
            c = cell[(row[0], value)]
            assert text == f"{c.accuracy_pooled:.4f} [{c.ci_low:.3f}, {c.ci_high:.3f}]"  # the speaker-bootstrap interval
    (row,) = page.body_rows("robustness-difference")  # the reference (the first config, mars) has no row
    assert row[0] == "ce"
    for text, value in zip(row[1:], (0, 0.25)):
        c = cell[("ce", value)]
        assert text == (f"{100 * c.delta_vs_reference:+.1f} [{100 * c.delta_ci_low:+.1f}, {100 * c.delta_ci_high:+.1f}], "
                        f"p {c.p_fold:.3f} ({c.p_fold_holm:.3f})")
    assert len(page.body_rows("runs")) == len(pd.read_csv(robustness_run / "runs.csv")) == 2 * 2 * 3
    (image,) = page.images  # robustness.png, embedded as it is
    assert base64.b64decode(image.split(",", 1)[1]) == (robustness_run / "robustness.png").read_bytes()
    separation = pd.read_csv(robustness_run / "separation.csv").query("branch == 'mean'")
    shown = page.body_rows("separation")
    assert len(shown) == len(separation) > 0 and {r[1] for r in shown} == {"0.25"}  # only the level with flipped clips
    assert [r[3] for r in shown] == [f"{r.auroc_mean:.3f} [{r.auroc_ci_low:.3f}, {r.auroc_ci_high:.3f}]"
                                     for r in separation.itertuples()]
    for method in ("mars", "ce"):  # each method's resolved config
        assert len(re.findall(rf"(?:^|>)name: {method}$", html, flags=re.M)) == 1
    assert level_name(float("inf")) == "inf" and level_name(0.0) == "0" and level_name("confusable") == "confusable"


def test_kind_is_told_by_the_files_and_can_be_chosen(cv_run, fixture_runs, tmp_path, capsys):
    compare, _ = fixture_runs
    assert detect_kind(cv_run).name == "cv" and detect_kind(compare).name == "compare"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"not a run directory a report can be made of \(looked for compare: comparison.json, runs.csv; cv: results.json"):
        detect_kind(tmp_path / "empty")
    both = tmp_path / "both"
    shutil.copytree(compare, both)
    for name in ("results.json", "predictions.csv", "folds"):
        (shutil.copytree if name == "folds" else shutil.copy)(cv_run / name, both / name)
    assert main(["report", str(both)]) == 2
    assert "several kinds of run (compare, cv)" in capsys.readouterr().err
    assert main(["report", str(both), "--kind", "cv", "--out", str(tmp_path / "r.html")]) == 0
    assert main(["report", str(both), "--kind", "ablation"]) == 2
    assert "unknown report kind 'ablation'" in capsys.readouterr().err


def test_a_new_kind_is_a_loader_and_a_template(cv_run, monkeypatch, tmp_path):
    (tmp_path / "ablation.json").write_text("{}")
    kind = RunKind("ablation", "ablation check", ("ablation.json",), "cv.html.j2",
                   lambda d: RUN_KINDS["cv"].load(cv_run))
    monkeypatch.setitem(RUN_KINDS, "ablation", kind)
    assert detect_kind(tmp_path) is kind
    assert "ablation check" in render_report(tmp_path)


@pytest.mark.slow
def test_bad_run_files_are_named_and_text_is_escaped(cv_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(cv_run, run)
    results = json.loads((run / "results.json").read_text())
    results["name"] = "<script>alert(1)</script>"
    results["speaker_norm"] = True  # as runs from before the speaker_norm modes wrote it
    (run / "results.json").write_text(json.dumps(results))
    html = render_report(run)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert dict(Page(html).tables["summary"])["speaker normalisation"] == "transductive"
    del results["accuracy_std"]
    (run / "results.json").write_text(json.dumps(results))
    with pytest.raises(ConfigError, match=r"the run's files lack a value \('dict object' has no attribute 'accuracy_std'\)"):
        render_report(run)
    (run / "folds" / "fold_2" / "history.csv").write_text("")
    assert main(["report", str(run)]) == 2
    assert f"{run}/folds/fold_2/history.csv: cannot be read as CSV" in capsys.readouterr().err
    (run / "results.json").write_text("{not json")
    assert main(["report", str(run)]) == 2
    assert f"{run}/results.json: cannot be read as JSON" in capsys.readouterr().err
