"""One argument of ``create()`` or ``deploy()``: declared once, read by the checks, the docs and the CLI.

:class:`Argument` is the declaration a launcher makes of its own ``create()`` arguments
(:attr:`micado.launcher.base.Launcher.options`), and the metadata of each field of
:class:`micado.master.spec.CreateSpec`: its one-line help (the command-line option's),
its longer description (the API docs'), its default and its kind (what values it takes,
checked by :func:`problem`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micado.exceptions import InvalidArgument

__all__ = ["Argument", "problem", "KINDS"]

#: The kinds of argument, and what each takes.
KINDS = {
    "text": "a non-empty string",
    "secret": "a non-empty string, never shown",
    "url": "an http(s) URL",
    "login": "a user name or host for ssh (no leading '-', white space or control characters)",
    "port": "a TCP port number",
    "seconds": "a positive number of seconds",
    "source": "a path or an http(s) URL",
    "file": "the path of an existing file",
    "settings": "a mapping of setting names to values",
    "choice": "one of the listed choices",
}


@dataclass(frozen=True)
class Argument:
    """The declaration of one argument.

    Attributes:
        name: the keyword (``auth_url``); the option is ``--auth-url``.
        help: one line, the command-line option's help.
        default: the value when it is not given (``None``: not given).
        kind: what it takes, a key of :data:`KINDS`.
        choices: for ``kind="choice"``, the values it takes.
        required: a launcher's own argument that ``create()`` cannot do without.
        cli: whether ``micado master create`` has an option for it.
        doc: the longer description for the API docs (default: :attr:`help`).
        launch: for a launcher's own argument: it goes to the
            :class:`~micado.launcher.base.LaunchSpec` field of that name, not to
            :meth:`~micado.launcher.base.Launcher.from_arguments`.
    """

    name: str
    help: str
    default: Any = None
    kind: str = "text"
    choices: tuple[str, ...] = ()
    required: bool = False
    cli: bool = True
    doc: str = ""
    launch: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgument(f"argument {self.name}: unknown kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        if (self.kind == "choice") != bool(self.choices):
            raise InvalidArgument(f"argument {self.name}: give choices with kind='choice', and only then")

    @property
    def description(self) -> str:
        """The text for the API docs."""
        return self.doc or self.help

    @property
    def value_type(self) -> type:
        """The Python type of a value given on the command line."""
        return int if self.kind == "port" else float if self.kind == "seconds" else str

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this argument (the name left out), or ``None``."""
        return problem(self.kind, value, self.choices)


def problem(kind: str, value: Any, choices: tuple[str, ...] = ()) -> str | None:
    """What is wrong with ``value`` for an argument of ``kind``, or ``None``."""
    from micado import checks

    if kind in ("text", "secret", "url", "login"):
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty string"
        if kind == "login":
            found = checks.command_word_problem(value)
            return None if found is None else f"{found}: {value!r}"
        if kind == "url":
            try:
                checks.http_url("", value, "")
            except InvalidArgument:
                return f"must be an http(s) URL, not {value!r}"
        return None
    if kind == "choice":
        return None if value in choices else f"must be one of {', '.join(choices)}, not {value!r}"
    if kind == "port":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
        return None if ok else f"must be a TCP port number (1-65535), not {value!r}"
    if kind == "seconds":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
        return None if ok else f"must be a positive number of seconds, not {value!r}"
    if kind in ("source", "file"):
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            return "must be a path" + (" or an http(s) URL" if kind == "source" else "")
        if kind == "file" and not Path(value).expanduser().is_file():
            return f"{value}: " + ("is a folder" if Path(value).expanduser().is_dir() else "no such file")
        return None
    if kind == "settings":
        return None if isinstance(value, Mapping) else "must be a mapping of setting names to values"
    raise AssertionError(f"unknown argument kind {kind}")
