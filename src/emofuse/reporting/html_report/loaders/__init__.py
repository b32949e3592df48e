"""One module per kind of run directory; importing it registers the kind (see ``emofuse.reporting.html_report.kinds``)."""

from emofuse.reporting.html_report.loaders import compare, cv, robustness, sweep  # noqa: F401
