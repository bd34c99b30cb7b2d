"""How the ``micado`` command reports an error or a warning: one line, the CLI's advice, an exit code.

The library's messages are written for Python callers (``verify=...``, a template to
paste); :func:`describe` puts the few that advise Python into the command's words, and
:func:`report` is the one place an error becomes output and an exit code.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
import warnings
from pathlib import Path
from typing import TextIO

from micado import exceptions as errors

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_API", "EXIT_CONNECTION",
           "exit_code", "describe", "report", "show_warnings_as_lines"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_API, EXIT_CONNECTION = 0, 1, 2, 3, 4


def exit_code(error: BaseException) -> int:
    """The exit code for an error: 2 usage, 3 the API's answer, 4 connection, 1 anything else."""
    if isinstance(error, errors.MicadoAPIError):
        return EXIT_API
    if isinstance(error, (errors.InvalidArgument, errors.CredentialsError, errors.NotFound)):
        return EXIT_USAGE
    if isinstance(error, (errors.MicadoConnectionError, errors.MicadoTimeout)):
        return EXIT_CONNECTION
    return EXIT_FAILURE


def describe(error: BaseException) -> str:
    """The error's message in one line, with the command's advice where the library gives Python's.

    Args:
        error: what went wrong.

    Returns:
        The message, without the class name, line breaks or control characters (shown as ``\\x1b``).
    """
    if isinstance(error, errors.TLSError) and error.reason is not None:
        return (f"TLS failure talking to {error.url}: {error.reason}; give the master's certificate "
                "with --cert FILE, or --insecure to skip the check")
    text = str(error)
    if isinstance(error, errors.CredentialsError):
        missing = f"the cloud credentials file {error.path} does not exist"
        if error.path is not None and text.startswith(missing) and not Path(error.path).exists():
            return (f"the cloud credentials file {error.path} does not exist: run `micado init` to write a template"
                    " (OpenStack: or log in as a cloud of your clouds.yaml with --cloud NAME)")
        head = text.split("\n\n")[0]
        if head != text:  # the library goes on with a template to paste: point at ours instead
            text = re.sub(r"(?:\. |; )[^.;]*:$", "", head) + " (`micado init --print` shows the format)"
    return errors.server_text(" ".join(text.split()), limit=None)  # whatever a server put in it: never a control


def report(error: BaseException, *, as_json: bool, debug: bool, stream: TextIO | None = None) -> int:
    """Print ``error`` as the command does and return its exit code.

    One line, ``micado: error: <class>: <message>``, or with ``as_json`` one JSON object
    ``{"error": <class>, "message": ..., "exit_code": N}``; ``debug`` adds the traceback
    before it and changes nothing else.

    Args:
        error: what went wrong.
        as_json: print JSON instead of text.
        debug: print the traceback first.
        stream: where to print; standard error by default.

    Returns:
        The exit code (see :func:`exit_code`).
    """
    stream = stream or sys.stderr
    code = exit_code(error)
    if debug:  # the traceback quotes libraries' exceptions, and they may quote a server: no control characters
        lines = "".join(traceback.format_exception(error)).splitlines()
        stream.write("".join(errors.server_text(line, limit=None) + "\n" for line in lines))
    message = describe(error)
    if as_json:
        stream.write(json.dumps({"error": type(error).__name__, "message": message, "exit_code": code}) + "\n")
    else:
        stream.write(f"micado: error: {type(error).__name__}: {message}\n")
    stream.flush()
    return code


def show_warnings_as_lines() -> None:
    """Print every warning as ``micado: warning: <message>``, once, without the source line Python adds.

    Both kinds reach the terminal so: :func:`warnings.warn` and the WARNING (and higher)
    records of :mod:`logging` that no handler takes (the library's, and the cloud SDKs'
    that are not silenced). A line already printed is not printed again.
    """

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if category.__name__ == "MicadoInsecureWarning":  # its text advises Python's verify=
            message = "the master's TLS certificate is not checked (--insecure); give --cert FILE to check it"
        _print_once(str(message), file or sys.stderr)

    warnings.showwarning = show
    # What logging prints when no handler is configured (its "last resort": WARNING and
    # up, the bare message) becomes our line. Loggers a library silenced stay silent, and
    # --debug's handler takes every record instead.
    logging.lastResort = _WarningLines(logging.WARNING)


_printed: set[str] = set()


def _print_once(message: str, stream: TextIO) -> None:
    line = f"micado: warning: {' '.join(message.split())}\n"
    if line not in _printed:
        _printed.add(line)
        stream.write(line)
        stream.flush()


class _WarningLines(logging.Handler):
    """Log records as the command's warning lines (standard error at the time of the record)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _print_once(record.getMessage(), sys.stderr)
        except Exception:  # noqa: BLE001 - as logging.Handler does: a broken record never breaks the command
            self.handleError(record)
