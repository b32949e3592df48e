"""The table `emofuse predict` prints."""

from __future__ import annotations

from pathlib import Path

from emofuse.inference.speech import NO_SPEECH


def print_predictions(entries: list[dict], class_names) -> None:
    """A rich table: one row per file with its fused probabilities over ``class_names`` (the classes answered among);
    an answer below the confidence level reads "uncertain (happy 0.41)"; missing modalities and errors below it
    (a file's row uses every modality of the run that is not listed as missing for it). Speaker-group warnings are
    not repeated here: predict has logged them."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from emofuse.core.console import table_width

    table = Table(title="emotion probabilities, fused over the modalities used", box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1),
                  pad_edge=False)
    table.add_column("file", overflow="fold")
    table.add_column("pred", no_wrap=True)
    for c in class_names:
        table.add_column(c[:3], justify="right", min_width=4, no_wrap=True)
    notes: dict[str, list[str]] = {}  # one note per distinct problem, with the files it concerns
    for e in entries:
        name = Path(e["file"]).name
        if e["probs"] is None and "no_speech" in e:  # no speech, no emotion: not an error
            table.add_row(name, NO_SPEECH, *[""] * len(class_names))
            notes.setdefault(e["no_speech"], []).append(name)
            continue
        if e["probs"] is None:
            table.add_row(name, "error", *[""] * len(class_names))
            notes.setdefault(f"error: {e['error']}", []).append(name)
        else:
            pred = f"uncertain ({e['pred']} {e['probs'][e['pred']]:.2f})" if e.get("uncertain") else e["pred"]
            table.add_row(name, pred, *[f"{e['probs'][c]:.2f}" for c in class_names])
        for m, reason in e["missing"].items():
            notes.setdefault(f"{m} missing: {reason}", []).append(name)
    console = Console(width=table_width(table))
    console.print(table)
    for note, names in notes.items():
        console.print(f"{note} ({len(names)} file{'s' * (len(names) > 1)}: {', '.join(names)})", markup=False, highlight=False)
