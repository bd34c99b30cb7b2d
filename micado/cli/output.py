"""What the ``micado`` command prints: results as text or JSON, tables, progress, questions."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from micado import exceptions as errors

__all__ = ["Out", "printer", "table", "ProgressLine", "confirm"]

#: How a command prints its result: ``out(data, text)`` prints ``data`` as JSON with
#: ``--json``, else ``text``.
Out = Callable[[Any, str], None]


def printer(*, as_json: bool) -> Out:
    """The ``out`` that commands print their result with.

    Args:
        as_json: print the data as indented JSON (``--json``) instead of the text.
    """

    def out(data: Any, text: str) -> None:
        print(json.dumps(data, indent=2, default=str) if as_json else text)

    return out


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """``rows`` under ``headers`` in columns as wide as their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in (headers, *rows))


class ProgressLine:
    """Progress of a long call: one live line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.live = stream.isatty()

    def __call__(self, stage: str, message: str) -> None:
        elapsed = time.monotonic() - self.start
        line = f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {stage}: {message}"
        if self.live:
            width = 118
            self.stream.write("\r" + line[:width].ljust(width))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        """End the live line (a terminal's cursor goes to the next line); nothing otherwise."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def confirm(question: str, *, assume_yes: bool) -> None:
    """Ask ``question`` on the terminal; anything but y/yes cancels.

    Nothing is asked with ``assume_yes`` or when standard input is not a terminal
    (scripts, CI): the answer is then yes.

    Raises:
        MicadoException: the user did not answer yes.
    """
    if assume_yes or not sys.stdin.isatty():
        return
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise errors.MicadoException("cancelled: nothing was changed")
