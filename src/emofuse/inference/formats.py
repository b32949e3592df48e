"""The shapes `emofuse predict` writes its results in: a JSON list, JSON Lines, CSV (and the table, printing.py).

A JSON or JSONL result is the prediction entry as ``Predictor.predict`` makes it, led by its ``id`` where that differs
from its ``file`` (a ``wav.scp`` utterance id); ``--top-k K``
adds ``top_k``: the K most probable classes as ``[{"label": ..., "score": ...}, ...]``, highest first, as Hugging Face's
audio-classification pipeline returns them. A CSV row is flat, one column per value, so that a spreadsheet or
``pandas.read_csv`` takes it as it is: id, file, pred, score (the top probability), uncertain (empty where no confidence
level applies), label_1, score_1, ... (with --top-k), prob_<class> per class, modalities, missing and error. A recording
without speech has pred "no speech" in a CSV row (null, with its ``no_speech`` reason, in JSON) and no top-k classes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from emofuse.core.registry import ConfigError
from emofuse.inference.speech import NO_SPEECH

FORMATS = ("table", "json", "jsonl", "csv")
FILE_FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def output_format(fmt: str | None, out: Path | None) -> str:
    """The format asked for, else the one ``out``'s suffix names, else the table; a table is never written to a file."""
    if fmt is None and out is not None:
        fmt = FILE_FORMATS.get(out.suffix.lower())
        if fmt is None:
            raise ConfigError(f"--out {out}: cannot tell the format from the suffix '{out.suffix}'; name the file "
                              f"{', '.join(f'*{s}' for s in FILE_FORMATS)} or give --format json, jsonl or csv")
    fmt = fmt or "table"
    if fmt not in FORMATS:
        raise ConfigError(f"format '{fmt}': expected one of {', '.join(FORMATS)}")
    if fmt == "table" and out is not None:
        raise ConfigError(f"--out {out}: a table is for the console; write json, jsonl or csv to a file")
    return fmt


def top_k(probs: dict[str, float], k: int) -> list[dict]:
    """The ``k`` most probable classes (all of them when ``k`` exceeds their number, as Hugging Face does), highest first;
    ties keep the model's class order."""
    ranked = sorted(probs.items(), key=lambda item: -item[1])
    return [{"label": label, "score": score} for label, score in ranked[:k]]


def result_id(result: dict) -> str:
    """The id a result answers for: its ``id``, else (a file named by its path) its ``file``."""
    return result.get("id") or result["file"]


def result(entry: dict, item_id: str, k: int | None) -> dict:
    """A prediction entry as the outputs hold it: led by its id where that is not its file (a wav.scp utterance id;
    so that a file's entry stays the one ``--json`` has always printed), with its ``top_k`` list where K is asked for
    (empty for a file that got no prediction)."""
    out = {"id": item_id, **entry} if item_id != entry["file"] else dict(entry)
    if k is not None:
        out["top_k"] = top_k(entry["probs"], k) if entry["probs"] else []
    return out


def csv_columns(class_names: Sequence[str], k: int | None) -> list[str]:
    ranks = [c for i in range(1, min(k, len(class_names)) + 1) for c in (f"label_{i}", f"score_{i}")] if k else []
    return ["id", "file", "pred", "score", "uncertain", *ranks,
            *(f"prob_{c}" for c in class_names), "modalities", "missing", "error"]


def csv_row(entry: dict, columns: Sequence[str]) -> dict:
    """A result (``result``) as a CSV row over ``columns``: lists joined with '+', the missing modalities as
    ``modality: reason`` joined with '; ', line breaks made spaces so that every row is one line."""
    probs = entry["probs"] or {}
    pred = entry["pred"] or (NO_SPEECH if entry.get("no_speech") else "")
    row = {"id": result_id(entry), "file": entry["file"], "pred": pred,
           "score": max(probs.values()) if probs else "", "uncertain": entry.get("uncertain", ""),
           "modalities": "+".join(entry["modalities"]),
           "missing": "; ".join(f"{m}: {why}" for m, why in entry["missing"].items()), "error": entry.get("error", "")}
    row.update({f"prob_{c}": p for c, p in probs.items()})
    for i, ranked in enumerate(entry.get("top_k", []), 1):
        row[f"label_{i}"], row[f"score_{i}"] = ranked["label"], ranked["score"]
    return {c: " ".join(str(row.get(c, "")).split()) for c in columns}


def csv_text(rows: Sequence[dict], columns: Sequence[str], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(csv_row(r, columns) for r in rows)
    return buffer.getvalue()


def jsonl_text(rows: Sequence[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


class ConsoleResults:
    """Results on stdout: JSON Lines and CSV line by line as they come, a JSON list or the table once all are in."""

    done: frozenset[str] = frozenset()  # the console holds nothing from an earlier run

    def __init__(self, fmt: str, columns: Sequence[str], class_names: Sequence[str]):
        self.fmt, self.columns, self.class_names = fmt, list(columns), list(class_names)
        self.held: list[dict] = []
        self.header = True

    def append(self, results: Sequence[dict]) -> None:
        if self.fmt == "jsonl":
            print(jsonl_text(results), end="", flush=True)
        elif self.fmt == "csv":
            print(csv_text(results, self.columns, self.header), end="", flush=True)
            self.header = False
        else:
            self.held += results

    def close(self) -> None:
        if self.fmt == "json":
            print(json.dumps(self.held, indent=2))
        elif self.fmt == "table":
            from emofuse.inference.printing import print_predictions

            print_predictions(self.held, self.class_names)
