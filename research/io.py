"""Atomic file output: a reader (another process, a later run, a table reusing cells) sees
either the old file or the whole new one, never half of one, and a failed write leaves no
temporary file behind."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; it replaces `path` when the block ends
    without an exception. Unique per process, since several writers may race."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, payload: dict) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=True))


OS_ERROR_IN_MESSAGE = re.compile(r"\(os error (\d+)\)")


def os_error(err: BaseException, path: Path) -> OSError | None:
    """The OSError behind a library's write failure, with `path` as its file, or None: polars
    (Rust) reports a full disk or a file-size limit as a ComputeError that ends "(os error 28)"."""
    number = OS_ERROR_IN_MESSAGE.search(str(err))
    return OSError(int(number.group(1)), os.strerror(int(number.group(1))), str(path)) if number else None


OS_ERRORS = {FileExistsError: "a file is where a directory is needed", NotADirectoryError:
             "a file is where a directory is needed", PermissionError: "permission denied"}  # else strerror


def os_error_line(err: OSError) -> str:
    """A failed file operation as the path and why (a full disk, a file where a folder is needed)."""
    return f"{err.filename}: {OS_ERRORS.get(type(err), err.strerror or err)}" if err.filename else str(err)
