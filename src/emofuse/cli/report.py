"""`emofuse report`: an HTML report of a run directory.

Each command imports what it needs when it runs, so that `emofuse --help` and argument errors stay quick."""

from __future__ import annotations

from pathlib import Path

from emofuse.cli.commands import command


def parser_report(rp) -> None:
    rp.add_argument("run_dir", type=Path, help="run directory written by emofuse cv, compare or sweep")
    rp.add_argument("--out", type=Path, default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    rp.add_argument("--kind", default=None, help="kind of run, when the directory's files do not tell it")
    rp.set_defaults(overrides=[])


@command("report", "reports", parser_report, help="one self-contained HTML report of a cv, compare or sweep run directory",
         description="Render RUN_DIR as one HTML file: the results tables, per-fold figures, confusion "
                     "matrices, Mars weight and training-loss plots, the config and the data fingerprint. "
                     "Figures are embedded, so the file opens anywhere without a network. The kind of run "
                     "is told by its files (results.json: cv; comparison.json: compare; sweep.json: sweep).")
def cmd_report(args) -> int:
    from emofuse.reporting.html_report import write_report

    print(f"report in {write_report(args.run_dir, args.out, args.kind)}")
    return 0
