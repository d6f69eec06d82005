"""What every command line does with a failure it can name: one `error:` line and a non-zero
exit, the traceback only when HYDRA_FULL_ERROR=1 asks for it. Anything else is a bug, and its
traceback is the report."""

from __future__ import annotations

import functools
import os
import signal
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


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """SIGTERM (`kill`, a batch scheduler's stop) is handled as Ctrl-C: KeyboardInterrupt in the
    main thread instead of Python ending on the spot, so a command's clean-up runs (the training
    processes it started are ended, not left running unowned; Optuna marks the trial failed)."""
    signal.signal(signal.SIGTERM, _interrupt)


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
