"""The undo list of a launch: each step records how to undo itself; a failure undoes them all.

A launch registers an undo step *before* the request that makes something, so an
answer that never arrives (timeout, reset connection, Ctrl-C) still ends with the
thing found (by its marks) and removed. :meth:`Undo.run` undoes newest first, keeps
going when a step fails (the failure is logged and noted on the original error,
which stays the one raised), and stops on a second interrupt, noting what was not done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from micado.progress import ProgressCallback

__all__ = ["Undo"]

logger = logging.getLogger(__name__)


class Undo:
    """Undo steps of one transaction, run newest first.

    Args:
        stage: the progress stage the undo reports under (``"launch"``).
    """

    def __init__(self, stage: str = "launch") -> None:
        self.stage = stage
        self._steps: list[tuple[str, Callable[[], None]]] = []

    def add(self, what: str, action: Callable[[], None]) -> None:
        """Register a step; ``what`` completes "could not ..." in messages (``"delete server x"``)."""
        self._steps.append((what, action))

    def discard(self, what: str) -> None:
        """Forget the steps described as ``what`` (what they undo is no longer ours to undo)."""
        self._steps = [step for step in self._steps if step[0] != what]

    @property
    def pending(self) -> list[str]:
        """The descriptions of the registered steps, oldest first."""
        return [what for what, _ in self._steps]

    def run(self, error: BaseException, report: ProgressCallback) -> None:
        """Undo every step, newest first; a failing step is logged and noted on ``error``.

        A second interrupt (Ctrl-C) stops the undo; the steps not done are noted on
        both exceptions, so they can be cleaned up by hand.

        Args:
            error: the exception that ends the transaction (raised again by the caller).
            report: the progress callback; a failing callback does not stop the undo.
        """
        steps, self._steps = list(reversed(self._steps)), []
        for index, (what, action) in enumerate(steps):
            try:
                try:
                    report(self.stage, f"undoing: {what}")
                except Exception as exc:  # a failing progress callback must not stop the undo
                    logger.debug("progress callback failed: %s", exc)
                action()
            except Exception as exc:  # keep undoing; the original error stays the one raised
                logger.warning("could not %s after a failed %s: %s", what, self.stage, exc)
                error.add_note(f"while undoing the {self.stage}, could not {what}: {exc}")
            except BaseException as interrupt:
                left = "; ".join(step for step, _ in steps[index:])
                logger.warning("undo of a failed %s interrupted; not done: %s", self.stage, left)
                note = f"the undo of the {self.stage} was interrupted; not done: {left}"
                error.add_note(note)
                interrupt.add_note(note)
                raise
