"""What the server answers when a request cannot be served: an HTTP status, a short code and a sentence."""

from __future__ import annotations


class RequestError(Exception):
    """A request the server refuses; the message names the problem (and the file, where there is one)."""

    def __init__(self, status: int, problem: str, message: str, **details):
        super().__init__(message)
        self.status = status
        self.problem = problem  # a stable code for programs: empty_file, not_media, truncated, too_large, ...
        self.message = message
        self.details = details

    def body(self) -> dict:
        return {"error": self.message, "problem": self.problem, **self.details}
