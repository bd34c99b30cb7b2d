"""Safe YAML loading whose errors can be shown to users without leaking file contents."""

from __future__ import annotations

from typing import Any

__all__ = ["YamlSyntaxError", "safe_load"]


class YamlSyntaxError(Exception):
    """The text is not YAML. ``str()`` gives the problem and place, never the text itself.

    Attributes:
        line: 1-based line of the problem, when known.
        column: 1-based column of the problem, when known.
        problem: what the parser found wrong.
    """

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{problem}")


def safe_load(text: str) -> Any:
    """Parse YAML with ruamel.yaml's safe loader (plain data only, no object construction).

    Args:
        text: the document.

    Returns:
        The plain Python value (``None`` for an empty document).

    Raises:
        YamlSyntaxError: the text is not valid YAML; the parser's own message is not
            kept because it quotes the offending line (and, for a duplicate key, both
            values), which may hold a password.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem
        if isinstance(exc, DuplicateKeyError):
            problem = "a key appears twice in one mapping"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise YamlSyntaxError(problem or "syntax error", line, column) from None
    except YAMLError as exc:
        raise YamlSyntaxError(type(exc).__name__) from None
