"""A results file that a batch appends to as it goes and a rerun resumes: JSON Lines or CSV, one line per recording.

Each chunk of results is appended, flushed and synced to disk before the next is started, so an interrupted batch
(Ctrl-C, a killed job, a full disk) leaves every finished chunk on disk and at most one partial last line. Opening the
file again reads what it holds: the ids with a prediction are done and skipped by the rerun; a partial or unreadable
line and the lines of files that failed (a missing file may have come back since) are dropped, the file rewritten
whole without them (atomically), and those recordings predicted again, so the finished file holds each id once.
A JSON list cannot be appended to: it is written whole at the end (with what an earlier run wrote), so an interrupted
run keeps nothing; JSON Lines is the format for long batches.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from emofuse.core.atomic import atomic_write_text
from emofuse.core.errors import DataError
from emofuse.inference.formats import csv_text, jsonl_text, result_id

log = logging.getLogger(__name__)


class ResultsFile:
    """``path`` in ``fmt`` (json, jsonl or csv), resumed if it exists. ``columns``: the CSV header; ``classes``: the
    classes a result's probabilities must name, so that a rerun with another model or --classes is refused rather than
    mixed in."""

    def __init__(self, path: Path, fmt: str, columns: Sequence[str], classes: Sequence[str]):
        self.path, self.fmt, self.columns, self.classes = Path(path), fmt, list(columns), set(classes)
        self.done: set[str] = set()  # ids with a prediction in the file
        self.kept: list[dict] = []  # a JSON list's earlier results, written again at the end
        self.dropped = 0  # partial, unreadable or failed lines removed on opening
        if self.path.exists():
            self._resume()

    def _resume(self) -> None:
        data = self.path.read_bytes()
        body, _, partial = data.rpartition(b"\n")  # an interrupted append leaves a last line without its newline
        lines = body.decode("utf-8", errors="replace").split("\n") if body else []
        if self.fmt == "json":
            self._resume_json(data)
            return
        if self.fmt == "csv" and lines:
            header, lines = next(csv.reader([lines[0]])), lines[1:]
            if header != self.columns:
                raise DataError(self.path, f"holds the columns {header[:6]}..., this run writes {self.columns[:6]}... "
                                           "(another model, --classes or --top-k); write to another --out file")
        keep = []
        for line in lines:
            entry = self._parse(line)
            if entry is None:
                self.dropped += 1
            else:
                keep.append(line)
                self.done.add(result_id(entry))
        self.dropped += bool(partial)
        if self.dropped:
            log.info("%s: %d partial or failed line(s) removed; their recordings are predicted again", self.path, self.dropped)
            head = csv_text([], self.columns, header=True) if self.fmt == "csv" else ""
            atomic_write_text(self.path, head + "".join(line + "\n" for line in keep))

    def _parse(self, line: str) -> dict | None:
        """A line holding an answer, a class or "no speech" (its fields by name); None for a line to drop: partial,
        unreadable, or the error of a failed file. A CSV's classes were checked with its header, a JSON line's are checked here."""
        try:
            if self.fmt == "csv":
                row = next(csv.reader([line]))
                entry = dict(zip(self.columns, row)) if len(row) == len(self.columns) else {}
            else:
                entry = json.loads(line)
                if entry.get("probs") and set(entry["probs"]) != self.classes:
                    raise DataError(self.path, f"holds predictions over {sorted(entry['probs'])}, this run predicts "
                                               f"{sorted(self.classes)} (another model or --classes); write to another "
                                               "--out file")
        except (ValueError, StopIteration) as err:
            if isinstance(err, DataError):
                raise
            return None
        answered = entry.get("pred") or entry.get("no_speech") if isinstance(entry, dict) else None
        if not answered or not (entry.get("id") or entry.get("file")) or entry.get("error"):
            return None
        return entry

    def _resume_json(self, data: bytes) -> None:
        try:
            earlier = json.loads(data)
        except ValueError as err:
            raise DataError(self.path, f"not a JSON list ({err}); delete it or write to another --out file") from None
        if not isinstance(earlier, list):
            raise DataError(self.path, "not a JSON list of results; delete it or write to another --out file")
        for entry in earlier:
            if isinstance(entry, dict) and self._parse(json.dumps(entry)) is not None:
                self.kept.append(entry)
                self.done.add(result_id(entry))
            else:
                self.dropped += 1

    def append(self, results: Sequence[dict]) -> None:
        """Add one chunk's results; on disk (flushed and synced) when this returns, except a JSON list's."""
        if self.fmt == "json":
            self.kept += results
            return
        header = self.fmt == "csv" and (not self.path.exists() or self.path.stat().st_size == 0)
        text = csv_text(results, self.columns, header) if self.fmt == "csv" else jsonl_text(results)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        """A JSON list is written now, whole; the appended formats are already on disk."""
        if self.fmt == "json":
            atomic_write_text(self.path, json.dumps(self.kept, indent=2, ensure_ascii=False) + "\n")

