"""Undoing what a transaction made, newest first: one stack for the master and the launchers.

The shape of :class:`contextlib.ExitStack`, with what a cloud client needs on top:
each step has a name, a failing step never hides the original error (it becomes a
note on it), and a second Ctrl-C during the undo stops it and says what was not done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["UndoStack"]

log = logging.getLogger(__name__)


class UndoStack:
    """Steps to undo, pushed as things are made and run newest first on failure.

    Args:
        what: what the transaction is (``"the launch"``, ``"master.create"``), for notes.
        report: called with ``(step name)`` before each step runs (e.g. a progress line);
            an exception it raises is logged and ignored.
    """

    def __init__(self, what: str, report: Callable[[str], None] | None = None) -> None:
        self.what = what
        self._report = report
        self._steps: list[tuple[str, Callable[[], object], str | None]] = []

    def push(self, name: str, action: Callable[[], object], *, unless_failed: str | None = None) -> None:
        """Register how to undo something just made (or about to be: push before the request
        whose answer may be lost).

        Args:
            name: completes "could not ..." in notes (``"delete server x"``).
            action: the undo.
            unless_failed: skip this step if the step of that name failed (a record kept
                so that what could not be deleted can still be found).
        """
        self._steps.append((name, action, unless_failed))

    def discard(self, name: str | Callable[[str], bool]) -> None:
        """Forget the steps of that name, or whose name the predicate accepts (no longer ours to undo)."""
        matches = name if callable(name) else (lambda step: step == name)
        self._steps = [step for step in self._steps if not matches(step[0])]

    @property
    def names(self) -> list[str]:
        """The registered steps, oldest first."""
        return [step[0] for step in self._steps]

    def unwind(self, error: BaseException) -> list[str]:
        """Run every step, newest first, on behalf of ``error``.

        A step that fails is logged and added to ``error``'s notes; the others still
        run. A ``KeyboardInterrupt`` (a second Ctrl-C) stops the undo: the steps not
        done are noted on both exceptions and the interrupt is raised.

        Args:
            error: the exception that made the transaction fail; it is never replaced.

        Returns:
            The names of the steps that failed.

        Raises:
            KeyboardInterrupt: the undo itself was interrupted.
        """
        failed: list[str] = []
        steps, self._steps = list(reversed(self._steps)), []
        for index, (name, action, unless_failed) in enumerate(steps):
            if unless_failed is not None and unless_failed in failed:
                log.warning("not %s: %s failed", name, unless_failed)
                continue
            try:
                if self._report is not None:
                    try:
                        self._report(name)
                    except Exception as exc:  # a failing progress callback must not stop the undo
                        log.debug("progress callback failed: %s", exc)
                action()
            except Exception as exc:
                failed.append(name)
                log.warning("could not %s after %s failed: %s", name, self.what, exc)
                error.add_note(f"while undoing {self.what}, could not {name}: {exc}")
            except BaseException as interrupt:
                left = "; ".join(step[0] for step in steps[index:])
                log.warning("undo of %s interrupted; not done: %s", self.what, left)
                note = f"the undo of {self.what} was interrupted; not done: {left}"
                error.add_note(note)
                if interrupt is not error:
                    interrupt.add_note(note)
                raise
        return failed
