"""Progress for notebooks: one line that updates in place (stage, step n of m, elapsed).

``progress=True`` picks it when running under a Jupyter kernel (found without
importing IPython: ``sys.modules`` is only looked at), else the console lines of
:func:`micado.progress.console`. With ipywidgets installed the line is an
``HTML`` widget; otherwise it is a display updated through IPython's
``display(..., display_id=True)``. Nothing here is imported by ``import micado``.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["NotebookProgress", "in_notebook"]


def in_notebook() -> bool:
    """Whether this runs under a Jupyter kernel (IPython's ZMQ shell), without importing IPython."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class NotebookProgress:
    """A ``callback(stage, message)`` that keeps one display line up to date.

    Args:
        steps: the stages in order, for "step n of m". Without them the line shows the
            stage alone, until the run that reports here names its steps
            (:meth:`expect_steps`; ``master.create`` does).
        display: a function ``(html_text) -> None`` that replaces the line; by default
            an ipywidgets ``HTML`` widget, or an IPython display handle.
    """

    def __init__(self, steps: Sequence[str] | None = None,
                 display: Callable[[str], None] | None = None) -> None:
        self.steps = tuple(steps or ())
        self.start = time.monotonic()
        self.stage = ""
        self._display = display if display is not None else _default_display()

    def expect_steps(self, steps: Sequence[str]) -> None:
        """Count "step n of m" over ``steps``, the run's, unless steps were given when this was made."""
        if not self.steps:
            self.steps = tuple(steps)

    def __call__(self, stage: str, message: str) -> None:
        if stage in self.steps:
            self.stage = stage
        elapsed = int(time.monotonic() - self.start)
        where = (f"step {self.steps.index(self.stage) + 1} of {len(self.steps)}: {self.stage}"
                 if self.stage else stage)
        if stage == "done":
            where = "done"
        line = (f"<code>[{elapsed // 60:02d}:{elapsed % 60:02d}]</code> <b>{html.escape(where)}</b> "
                f"{html.escape(message)}")
        self._display(line)


def _default_display() -> Callable[[str], None]:
    try:
        import ipywidgets  # type: ignore[import-not-found]  # optional
    except ImportError:
        ipywidgets = None
    from IPython.display import HTML, display  # type: ignore[import-not-found]  # a notebook has IPython

    if ipywidgets is not None:
        widget: Any = ipywidgets.HTML()
        display(widget)

        def show_widget(text: str) -> None:
            widget.value = text

        return show_widget
    handle: Any = display(HTML(""), display_id=True)

    def show(text: str) -> None:
        handle.update(HTML(text))

    return show
