"""Reading the YAML files of the MiCADO dir, bounded, with errors that never quote their contents.

The credentials file and the store are written by hand or by other programs, so a
damaged or hostile one must fail fast with a clear message instead of hanging,
exhausting the memory or raising ``RecursionError``:

* :func:`read_limited` refuses a file over a size cap without reading it all (and,
  on request, a symbolic link);
* :func:`safe_load` refuses a text over :data:`MAX_YAML_BYTES`, then walks the
  parser's events, which takes time linear in the text and no recursion, and refuses
  more than :data:`MAX_NODES` values, nesting deeper than :data:`MAX_DEPTH` and
  aliases that expand to more than :data:`MAX_ALIAS_NODES` nodes ("billion laughs":
  nine aliases of nine aliases... are a few hundred bytes that expand to billions of
  values). Only then is the text turned into Python values.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "safe_dump",
    "MAX_YAML_BYTES", "MAX_NODES", "MAX_DEPTH", "MAX_ALIAS_NODES", "YamlSyntaxError", "Refused", "read_limited",
    "safe_load", "depth_of",
]

# ruamel.yaml in pure Python (its C part is not among our dependencies) is slow: about
# 4 s a MiB, and 25 us a value (a flow list of 240 KB takes 8 s). These two caps bound a
# hostile file to about 1.5 s. MiCADO's credentials file is under 4 KB and 100 values;
# a 0.9 store takes about 400 bytes and 25 values per master.

#: Bytes of YAML read at most.
MAX_YAML_BYTES = 256 << 10
#: Values (scalars, lists, mappings; aliases counted expanded) in a document at most.
MAX_NODES = 10_000
#: Levels of nesting a document may have (the credentials file needs 4, the store 5 plus
#: whatever a record's ``extra`` holds).
MAX_DEPTH = 64
#: Nodes that aliases may add to a document once expanded. MiCADO's own credentials format
#: uses one alias, of a mapping of two keys (5 nodes).
MAX_ALIAS_NODES = 100


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


class Refused(YamlSyntaxError):
    """The file is refused by a limit: too large, a symbolic link, too deep, aliases expanding too far."""


def read_limited(path: Path, limit: int, *, follow_symlinks: bool = True) -> str:
    """Return the UTF-8 text of ``path``, refusing it if it is larger than ``limit`` bytes.

    At most ``limit + 1`` bytes are read, whatever the size of the file.

    Args:
        path: the file.
        limit: the most bytes accepted.
        follow_symlinks: ``False`` refuses ``path`` if it is a symbolic link (a file that
            is replaced on write must not be one: the link would be replaced by a file).

    Returns:
        The text.

    Raises:
        Refused: the file is larger than ``limit``, or a symbolic link not to be followed.
        OSError: the file cannot be opened or read (``FileNotFoundError`` if it is missing).
        UnicodeDecodeError: the file is not UTF-8.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks and path.is_symlink():
            raise Refused("it is a symbolic link, which micado-client does not follow") from None
        raise
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"it is larger than {limit} bytes")
    return data.decode("utf-8")


def _check_events(events: Iterable[Any], max_nodes: int, max_depth: int, max_alias_nodes: int) -> None:
    """Refuse a document of too many nodes, nested too deep, or whose aliases add too many nodes.

    Raises:
        Refused: with the place of the offending node.
    """
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent

    sizes: dict[str, int] = {}  # anchor -> nodes in the anchored node, once it is complete
    opened: list[tuple[str | None, list[int]]] = []  # collections being read: anchor, nodes so far
    nodes = added = 0  # nodes so far, and those of them that aliases added
    for event in events:
        anchor, size = None, 0  # a node that is complete: its anchor and nodes
        if isinstance(event, CollectionStartEvent):
            if len(opened) == max_depth:
                raise _refused(event, f"it is nested more than {max_depth} levels deep")
            opened.append((event.anchor, [1]))
            nodes += 1
        elif isinstance(event, CollectionEndEvent):
            anchor, (size,) = opened.pop()
        elif isinstance(event, ScalarEvent):
            anchor, size = event.anchor, 1
            nodes += 1
        elif isinstance(event, AliasEvent):
            if event.anchor not in sizes:  # not defined, or an alias inside its own anchor
                raise _refused(event, f"the alias *{event.anchor} refers to no complete node before it")
            size = sizes[event.anchor]
            added += size
            nodes += size
            if added > max_alias_nodes:
                raise _refused(event, f"its aliases expand to more than {max_alias_nodes} nodes")
        if nodes > max_nodes:
            raise _refused(event, f"it holds more than {max_nodes} values")
        if anchor is not None:
            sizes[anchor] = size
        if size and opened:
            opened[-1][1][0] += size


def _refused(event: Any, problem: str) -> Refused:
    mark = event.start_mark
    return Refused(problem, mark.line + 1, mark.column + 1) if mark is not None else Refused(problem)


def safe_load(text: str) -> Any:
    """Parse YAML with ruamel.yaml's safe loader (plain data only, no object construction).

    Args:
        text: the document.

    Returns:
        The plain Python value (``None`` for an empty document).

    Raises:
        Refused: the text is larger than :data:`MAX_YAML_BYTES`, holds more than
            :data:`MAX_NODES` values, is nested deeper than
            :data:`MAX_DEPTH`, or its aliases expand to more than
            :data:`MAX_ALIAS_NODES` nodes or refer to the node that holds them.
        YamlSyntaxError: the text is not valid YAML, or holds a value that cannot be
            converted (a number of thousands of digits, a date that does not exist); the
            parser's own message is not kept because it quotes the offending line (and,
            for a duplicate key, both values), which may hold a password.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise Refused(f"it is larger than {MAX_YAML_BYTES} bytes, the most read as YAML")
    yaml = YAML(typ="safe", pure=True)
    try:
        _check_events(yaml.parse(text), MAX_NODES, MAX_DEPTH, MAX_ALIAS_NODES)
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem
        if isinstance(exc, DuplicateKeyError):
            problem = "a key appears twice in one mapping"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise YamlSyntaxError(problem or "syntax error", line, column) from None
    except YAMLError as exc:
        raise YamlSyntaxError(type(exc).__name__) from None
    except (ValueError, OverflowError):
        raise YamlSyntaxError(
            "a value cannot be converted (e.g. a number of thousands of digits, or a date that "
            "does not exist)"
        ) from None


def safe_dump(data: Any) -> str:
    """Plain data as block-style YAML (the safe dumper: no Python tags)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def depth_of(value: Any) -> int:
    """Levels of nesting of lists and dicts in ``value`` (0 for a scalar), without recursion.

    For values that do not come through :func:`safe_load` (JSON, a caller's data), to hold
    them to :data:`MAX_DEPTH` too.
    """
    depth = 0
    level = [value]
    while True:
        containers = [item for item in level if isinstance(item, (dict, list))]
        if not containers:
            return depth
        depth += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
