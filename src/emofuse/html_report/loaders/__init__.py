"""One module per kind of run directory; importing it registers the kind (see ``emofuse.html_report.kinds``)."""

from emofuse.html_report.loaders import compare, cv, robustness, sweep  # noqa: F401
