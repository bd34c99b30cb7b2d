"""Progress reporting for long operations, and the one helper every wait goes through."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from micado.exceptions import MicadoTimeout

#: A progress callback receives a stage name (``"launch"``, ``"ssh"``, ``"ansible"``...)
#: and a short human-readable message.
ProgressCallback = Callable[[str, str], None]

T = TypeVar("T")


def silent(stage: str, message: str) -> None:
    """A progress callback that reports nothing."""


def console(stage: str, message: str) -> None:
    """A progress callback that prints one line per event on standard error."""
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


def as_callback(progress: ProgressCallback | bool | None) -> ProgressCallback:
    """Turn the ``progress`` argument of public calls into a callback.

    Args:
        progress: a callable, ``True`` for console lines (in a Jupyter notebook: one
            line updated in place, see :mod:`micado.notebook`), or ``None``/``False``
            for silence.
    """
    if progress is True:
        from micado.notebook import NotebookProgress, in_notebook

        return NotebookProgress() if in_notebook() else console
    if not progress:
        return silent
    if not callable(progress):
        from micado.exceptions import InvalidArgument

        raise InvalidArgument(f"progress must be a callable, True or None, not {progress!r}")
    return progress


@runtime_checkable
class StepCounter(Protocol):
    """A progress display that counts the steps of a run ("step n of m"), as the notebook line does."""

    def expect_steps(self, steps: Sequence[str]) -> None:
        """Take the names of the run's steps, in order."""


def expect_steps(callback: ProgressCallback, steps: Sequence[str]) -> None:
    """Name the steps of a run, in order, to the progress callback that will report it.

    The run (``master.create``, ``master.deploy``) knows its steps; a display that
    counts them (a :class:`StepCounter`, such as :class:`micado.notebook.NotebookProgress`)
    takes them, every other callback is left alone.

    Args:
        callback: the run's progress callback.
        steps: the stage names of its steps, in order.
    """
    if isinstance(callback, StepCounter):
        callback.expect_steps(steps)


def wait_until(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    stage: str = "wait",
    progress: ProgressCallback = silent,
    interval: float = 0.05,
    max_interval: float = 2.0,
    report_every: float = 5.0,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Call ``check`` until it returns something other than ``None``, or time runs out.

    The delay between calls starts at ``interval`` and grows by half up to
    ``max_interval``: a change is seen at most about half the time waited so far late
    (doubling would allow as much as that time: a server ACTIVE after 0.2 s is seen at
    0.24 s, not 0.35 s). The deadline is measured on the monotonic clock. ``check`` may
    raise to abort.

    Args:
        check: returns the awaited value, or ``None`` for "not yet".
        what: what is awaited, for progress and the timeout message.
        timeout: seconds before giving up.
        stage: the stage name passed to ``progress``.
        progress: receives a message about every ``report_every`` seconds.
        on_timeout: gives the timeout's message instead of the generic one (it may say
            what was seen last, e.g. the last status or error).

    Returns:
        The first value ``check`` returned that is not ``None``.

    Raises:
        MicadoTimeout: ``check`` kept returning ``None`` for ``timeout`` seconds.
    """
    start = time.monotonic()
    deadline = start + timeout
    delay = interval
    last_report = start
    while True:
        result = check()
        if result is not None:
            return result
        now = time.monotonic()
        if now >= deadline:
            message = on_timeout() if on_timeout is not None else f"timed out after {timeout:g} s waiting for {what}"
            raise MicadoTimeout(message, what=what, timeout=timeout)
        if now - last_report >= report_every:
            progress(stage, f"still waiting for {what} ({now - start:.0f} s of {timeout:g} s)")
            last_report = now
        time.sleep(min(delay, max(deadline - now, 0.0)))
        delay = min(delay * 1.5, max_interval)
