"""Receiving one uploaded recording (multipart field ``file``) into a private directory, and checking it.

The body is parsed as it streams in (python-multipart) and the file part is written straight to
disk, so an upload never sits in memory and one over the size limit is refused as soon as it
crosses it. A file is then checked before the model sees it, by the check ``emofuse predict`` makes
(``emofuse.data.media_check.check_media``: empty, not media, truncated, corrupt), so both refuse the same
files in the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from emofuse.data.media import BadMedia
from emofuse.data.media_check import check_media
from emofuse.serve.errors import RequestError

FIELD = "file"
ACCEPTED_TYPES = ("audio/", "video/", "application/octet-stream")  # octet-stream: what a browser sends when it does not know
FORM_OVERHEAD = 64 * 1024  # multipart framing and small fields allowed on top of the file's own bytes


@dataclass
class Upload:
    path: Path  # where the bytes are, inside the request's private directory
    name: str  # the file name the client gave (checked to be a plain name)
    content_type: str
    size: int


def check_file_name(name: str) -> str:
    """The client's file name, refused when it is anything but a plain name (a path, '..', control characters)."""
    if (not name or "/" in name or "\\" in name or name in (".", "..") or len(name) > 255
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise RequestError(400, "bad_file_name", f"file name {name!r} is not a plain file name (no '/', '\\', '..' "
                                                 "or control characters); send the name without a directory")
    return name


def check_content_type(content_type: str, name: str) -> None:
    if not content_type.lower().startswith(ACCEPTED_TYPES):
        raise RequestError(415, "content_type", f"{name}: content type {content_type!r} is not audio/*, video/* or "
                                                "application/octet-stream")


def stored_name(name: str) -> str:
    """The name the upload is stored under: fixed, with the client's extension kept (it decides the decoder)."""
    suffix = Path(name).suffix.lower()
    return "upload" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else "")


class _FilePart:
    """Collects the parts of a multipart body: the one ``file`` part goes to disk, small fields are dropped."""

    def __init__(self, directory: Path, max_bytes: int):
        self.directory, self.max_bytes = directory, max_bytes
        self.upload: Upload | None = None
        self._out = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._field, self._value = b"", b""
        self._other_bytes = 0
        self._is_file = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field, "on_header_value": self._header_value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers, self._is_file = [], False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._field.lower(), self._value))
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        headers = dict(self._headers)
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        if disposition.get(b"name", b"").decode("latin-1") != FIELD:
            return
        if self.upload is not None:
            raise RequestError(400, "several_files", f"more than one '{FIELD}' field; send one recording per request")
        name = check_file_name(disposition.get(b"filename", b"upload").decode("utf-8", "replace"))
        content_type = headers.get(b"content-type", b"application/octet-stream").decode("latin-1").strip()
        check_content_type(content_type, name)
        self.upload = Upload(self.directory / stored_name(name), name, content_type, 0)
        self._out = open(self.upload.path, "xb")  # noqa: SIM115  (closed in _end or close())
        self._is_file = True

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file:
            self._other_bytes += end - start
            if self._other_bytes > FORM_OVERHEAD:
                raise RequestError(413, "too_large", f"form fields other than '{FIELD}' exceed {FORM_OVERHEAD} bytes")
            return
        self.upload.size += end - start
        if self.upload.size > self.max_bytes:
            raise RequestError(413, "too_large", f"{self.upload.name}: larger than the server's limit of "
                                                 f"{self.max_bytes / 2**20:g} MB (--max-upload-mb)")
        self._out.write(data[start:end])

    def _end(self) -> None:
        if self._is_file:
            self._out.close()
            self._is_file = False

    def close(self) -> None:
        if self._out is not None and not self._out.closed:
            self._out.close()


async def receive_upload(request, directory: Path, max_bytes: int) -> Upload:
    """Stream the request's multipart body; the ``file`` part lands in ``directory`` (which the caller deletes)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        shown = content_type.decode("latin-1") or "missing"
        raise RequestError(415, "content_type", f"request content type is {shown}; send multipart/form-data with the "
                                                f"recording in the field '{FIELD}'")
    if b"boundary" not in params:
        raise RequestError(400, "bad_multipart", "multipart/form-data without a boundary")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise RequestError(413, "too_large", f"request of {int(declared) / 2**20:.1f} MB is larger than the server's limit "
                                             f"of {max_bytes / 2**20:g} MB (--max-upload-mb)")
    part = _FilePart(directory, max_bytes)
    parser = MultipartParser(params[b"boundary"], part.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as err:
        raise RequestError(400, "bad_multipart", f"malformed multipart body ({err})") from None
    finally:
        part.close()
    if part.upload is None:
        raise RequestError(400, "missing_file", f"no multipart field '{FIELD}' holding a file")
    return part.upload


def inspect_media(upload: Upload, sample_rate: int | None) -> np.ndarray | None:
    """``check_media`` on the upload, its refusal a 422 that names the file as the client did (no server path)."""
    try:
        return check_media(upload.path, sample_rate, upload.name)
    except BadMedia as err:
        raise RequestError(422, err.kind, str(err)) from None
