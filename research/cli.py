"""What every command line does with a failure it can name: one `error:` line and a non-zero
exit, the traceback only when HYDRA_FULL_ERROR=1 asks for it. Anything else is a bug, and its
traceback is the report."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

from research.data.schema import BadInput
from research.errors import IncompatibleConfig
from research.io import os_error_line


def error_line(err: BaseException) -> str | None:
    """The line for a bad input, a refused setting or a failed file operation; None otherwise."""
    if isinstance(err, (BadInput, IncompatibleConfig)):
        return str(err)
    if isinstance(err, OSError):  # a missing or damaged path, a full disk, a file where a folder is needed
        return os_error_line(err)
    return None


def fail(err: BaseException, line: str | None = None) -> None:
    """Exit with one `error:` line (`line`, or the error's own)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    sys.exit(f"error: {line or err}")


def one_line_errors(main: Callable) -> Callable:
    """A command line's main function, its nameable failures each ending in one line."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except Exception as err:
            line = error_line(err)
            if line is None:
                raise
            fail(err, line)
    return wrapped
