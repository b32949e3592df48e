"""Errors for bad input: each names the file (or key) and what is wrong with it."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
