"""``emofuse report``: one self-contained HTML file of a run directory (tables, figures, config, data fingerprint).

The page is rendered from Jinja2 templates shipped with the package; figures are PNGs embedded as
base64 data URIs and the stylesheet is inline, so the file opens anywhere without a network.
Which tables and figures a run gets depends on its kind (``cv``, ``compare``, ``sweep``, ...),
detected from the files in the directory (see :mod:`emofuse.reporting.html_report.kinds`).
"""

from __future__ import annotations

import math
from importlib import metadata
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, UndefinedError, select_autoescape

from emofuse.reporting.html_report import loaders  # noqa: F401  (registers the kinds)
from emofuse.reporting.html_report.kinds import RUN_KINDS, RunKind, detect_kind
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text

__all__ = ["RUN_KINDS", "RunKind", "render_report", "write_report"]


def num(value, digits: int = 4, signed: bool = False) -> str:
    """A number for a table cell: fixed decimals for floats, '–' for what is not there (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("emofuse.reporting.html_report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False)
    env.filters["num"] = num
    return env


def render_report(run_dir: str | Path, kind: str | None = None) -> str:
    """The report of ``run_dir`` as one HTML document."""
    run_dir = Path(run_dir)
    run_kind = detect_kind(run_dir, kind)
    loaded = run_kind.load(run_dir)
    template = _environment().get_template(run_kind.template)
    try:
        return template.render(**loaded, run=loaded, kind=run_kind, run_dir=str(run_dir),
                               emofuse_version=metadata.version("emofuse"))
    except UndefinedError as err:  # a file of the run lacks a key the report shows (e.g. written by an older emofuse)
        raise ConfigError(f"{run_dir}: cannot make the {run_kind.name} report, the run's files lack a value ({err.message})") from None


def write_report(run_dir: str | Path, out: str | Path | None = None, kind: str | None = None) -> Path:
    """Render the report and write it atomically (default: RUN_DIR/report.html)."""
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write_text(out, render_report(run_dir, kind))
    return out
