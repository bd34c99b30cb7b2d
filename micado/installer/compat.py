"""Making released ansible-micado playbooks run with the ansible-core installed with the library.

The published ansible-micado releases were written for the Ansible of their time. The
ansible-core that comes with the library (2.19) refuses several constructs they use, and
``ansible-playbook`` would only say so after a VM had been created and reached, or in
the middle of the play:

* the ``include:`` action (removed in ansible-core 2.16): in task lists, handler lists
  and, at the top of a playbook, for other playbooks;
* play (or task) ``vars:`` written as a list of one-key mappings (2.19 wants a mapping);
* template delimiters inside a conditional (``that: x >= {{ min_disk }}``): 2.19 says
  "Template delimiters are not supported in expressions";
* conditionals whose value is not a boolean (``when: tmp is defined and tmp`` with a
  string ``tmp``): 2.19 says "Conditionals must have a boolean result".

:func:`plan_rewrites` finds them in a tree of playbooks and works out, for each, the
generic rewrite that keeps the meaning the old Ansible gave it: ``include`` becomes
``import_tasks`` (or ``include_tasks`` when it loops or names its file with a template,
as the old ``include`` was then dynamic), ``import_playbook`` at the top of a playbook;
the list of ``vars`` becomes the mapping it stood for; ``{{ x }}`` inside an expression
becomes ``(x)``; an operand that is not already a boolean gets ``is truthy`` (Python's
truth value, which is what the old Ansible used). A conditional that is one template as
a whole (``that: "{{ item.that }}"``) is left alone: ansible-core 2.19 still evaluates it.

The edits are made on the text, at the places the YAML parser reports, so comments,
quoting and layout of everything else stay as they were. :meth:`RewritePlan.apply`
writes them into a master's working copy, never into the cached release. What no
rewrite covers is listed in ``RewritePlan.problems`` with file and line, and
:func:`check_playbooks` refuses the playbooks before the cloud is touched.

Pointing :envvar:`MICADO_ANSIBLE_PLAYBOOK` at another ``ansible-playbook`` (an older
Ansible) turns all of this off: that Ansible decides.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micado.exceptions import InstallError
# Which ansible-playbook runs is the runner's choice (with another one, nothing is planned here);
# both names stay importable from here, where the API reference listed them before.
from micado.installer.executable import ENV_ANSIBLE_PLAYBOOK, ansible_playbook_override

__all__ = [
    "ENV_ANSIBLE_PLAYBOOK",
    "Rewrite",
    "RewritePlan",
    "ansible_playbook_override",
    "ansible_core_version",
    "check_playbooks",
    "plan_rewrites",
    "playbook_files",
    "read_task_file",
    "rewrite_condition",
    "tag_included_tasks",
]

logger = logging.getLogger(__name__)

_INCLUDE_REMOVED = (2, 16)
_STRICT_TEMPLATING = (2, 19)
_TASK_LISTS = ("pre_tasks", "tasks", "post_tasks")
_BLOCK_LISTS = ("block", "rescue", "always")
_CONDITION_KEYS = ("when", "failed_when", "changed_when", "until")
_ASSERT_ACTIONS = ("assert", "ansible.builtin.assert", "ansible.legacy.assert")
_REMOVED_KEYWORDS = {
    "sudo": "the 'sudo' keyword was removed (use become)",
    "sudo_user": "the 'sudo_user' keyword was removed (use become_user)",
    "always_run": "the 'always_run' keyword was removed (use check_mode: false)",
}
#: Folders that hold no tasks or plays (templates, files, variables, credentials...).
_NOT_TASK_FOLDERS = frozenset(
    {"templates", "files", "defaults", "vars", "host_vars", "group_vars", "credentials", "meta",
     "inventory", "manifests", "demos", "tests", "library", "filter_plugins", ".github"}
)
#: Attributes of registered results and stat answers that are booleans already.
_RESULT_BOOLEANS = frozenset(
    {"exists", "changed", "failed", "skipped", "unreachable", "isdir", "isreg", "islnk", "isblk",
     "ischr", "isfifo", "issock", "readable", "writeable", "executable"}
)
_BARE_VALUE = re.compile(r"^[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*|\s*\[[^\[\]]*\])*$")
_EMBEDDED_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)
_YAML11_NON_STRINGS = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|~|null|Null|NULL|[-+]?[0-9][0-9_.]*)$"
)


def ansible_core_version() -> tuple[int, int]:
    """The (major, minor) version of the ansible-core installed with the library.

    Raises:
        InstallError: ansible-core is not installed in this environment.
    """
    try:
        from ansible.release import __version__
    except ImportError as exc:
        raise InstallError(
            "ansible-core is not installed in the Python environment of micado-client "
            f"({exc}); install micado-client's requirements, or set {ENV_ANSIBLE_PLAYBOOK} to an "
            "ansible-playbook program"
        ) from exc
    major, minor = (int(part) for part in __version__.split(".")[:2])
    return major, minor


@dataclass(frozen=True)
class Rewrite:
    """One change made to a playbook file so the installed ansible-core runs it.

    Attributes:
        file: the file, relative to the playbooks' root.
        line: the 1-based line of the original text.
        before: the original text of the changed part.
        after: what it becomes.
        why: the ansible-core change that makes it necessary.
    """

    file: str
    line: int
    before: str
    after: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {_one_line(self.before)} -> {_one_line(self.after)} ({self.why})"


@dataclass(frozen=True)
class RewritePlan:
    """The rewrites a tree of playbooks needs, and what no rewrite covers.

    Attributes:
        rewrites: every change, in file and line order.
        texts: the new text of each changed file, by path relative to the root.
        problems: ``file:line: what`` for each construct that stays unsupported.
        ansible_core: the ansible-core version planned for, ``None`` when another
            ``ansible-playbook`` was named (nothing is rewritten then).
    """

    rewrites: tuple[Rewrite, ...] = ()
    texts: dict[str, str] = field(default_factory=dict, repr=False)
    problems: tuple[str, ...] = ()
    ansible_core: tuple[int, int] | None = None

    def apply(self, root: Path) -> None:
        """Write the rewritten files into ``root`` (a copy of the planned tree), logging each change."""
        for relative, text in self.texts.items():
            target = root / relative
            mode = target.stat().st_mode & 0o777
            target.write_text(text, encoding="utf-8")
            target.chmod(mode)
        for rewrite in self.rewrites:
            logger.info("rewrote for ansible-core %s: %s", _version_text(self.ansible_core), rewrite)


@dataclass
class _Edit:
    start: int
    end: int
    replacement: str
    line: int
    why: str
    #: what to log instead of the edited text (one entry for several edits), or ``None``
    shown: tuple[str, str] | None = None
    #: part of an edit logged by another one
    silent: bool = False


class _Unsupported(Exception):
    """A construct no generic rewrite covers."""


def rewrite_condition(expression: str, known_booleans: Iterable[str] = ()) -> str:
    """The form of a conditional that ansible-core 2.19 accepts, with the old meaning.

    ``{{ x }}`` inside a larger expression becomes ``(x)``; every ``and``/``or``
    operand (or the whole expression) that is not a boolean already becomes
    ``operand is truthy``. Variables named in ``known_booleans`` and the boolean
    attributes of registered results (``.stat.exists``, ``.changed``...) count as
    booleans. An expression that is one template as a whole is returned unchanged.

    Args:
        expression: the text of a ``when``, ``that``, ``failed_when``, ``changed_when``
            or ``until`` value.
        known_booleans: names of variables whose value is a boolean.

    Returns:
        The rewritten expression (the same string when nothing needs to change).

    Raises:
        ValueError: the expression holds a ``{% ... %}`` statement, which no rewrite covers.
    """
    try:
        return _rewrite_condition(expression, frozenset(known_booleans))
    except _Unsupported as exc:
        raise ValueError(str(exc)) from None


def _rewrite_condition(expression: str, known: frozenset[str]) -> str:
    text = expression.strip()
    if "{%" in text:
        raise _Unsupported("a '{% ... %}' statement inside a conditional")
    if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
        return expression  # one template as a whole: still evaluated by ansible-core 2.19
    if "{{" in text:
        text = _EMBEDDED_TEMPLATE.sub(lambda match: f"({match.group(1)})", text)
    rewritten = _truthy_operands(text, known)
    return expression if rewritten == expression.strip() else rewritten


def _tokens(text: str) -> list[tuple[int, int, int, str]] | None:
    """``(type, start, end, string)`` of the expression's tokens, offsets into ``text``."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    found: list[tuple[int, int, int, str]] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER, tokenize.COMMENT):
                continue
            (start_row, start_col), (end_row, end_col) = token.start, token.end
            found.append((token.type, starts[start_row - 1] + start_col, starts[end_row - 1] + end_col, token.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return found


def _truthy_operands(text: str, known: frozenset[str]) -> str:
    tokens = _tokens(text)
    if not tokens:
        return text
    depth = 0
    cuts: list[tuple[int, int]] = []  # spans of the top-level 'and' / 'or' tokens
    for kind, start, end, string in tokens:
        if string in "([{" and kind == tokenize.OP:
            depth += 1
        elif string in ")]}" and kind == tokenize.OP:
            depth -= 1
        elif depth == 0 and kind == tokenize.NAME:
            if string in ("and", "or"):
                cuts.append((start, end))
            elif string == "if":
                return text  # an inline if/else: leave it to its author
    pieces: list[str] = []
    position = 0
    for start, end in [*cuts, (len(text), len(text))]:
        operand = text[position:start]
        stripped = operand.strip()
        if stripped:
            lead = operand[: len(operand) - len(operand.lstrip())]
            trail = operand[len(operand.rstrip()):]
            pieces.append(lead + _truthy_operand(stripped, known) + trail)
        else:
            pieces.append(operand)
        pieces.append(text[start:end])
        position = end
    return "".join(pieces)


def _truthy_operand(operand: str, known: frozenset[str]) -> str:
    tokens = _tokens(operand)
    if not tokens:
        return operand
    first, last = tokens[0], tokens[-1]
    if first[3] == "(" and last[3] == ")" and _closes_at_end(tokens):
        inner = operand[first[2]: last[1]]
        return f"({_truthy_operands(inner, known)})"
    depth = 0
    for kind, _start, _end, string in tokens:
        if kind == tokenize.OP and string in "([{":
            depth += 1
        elif kind == tokenize.OP and string in ")]}":
            depth -= 1
        elif depth == 0 and (
            (kind == tokenize.NAME and string in ("is", "in", "not"))
            or (kind == tokenize.OP and string in ("==", "!=", "<", ">", "<=", ">="))
        ):
            return operand  # a comparison, a test or a negation: a boolean
    if operand in ("true", "false", "True", "False") or re.search(r"\|\s*bool\s*$", operand):
        return operand
    if _BARE_VALUE.match(operand):
        names = re.findall(r"[A-Za-z_]\w*", operand)
        if names[0] in known or (len(names) > 1 and names[-1] in _RESULT_BOOLEANS):
            return operand
        return f"{operand} is truthy"
    return f"({operand}) is truthy"


def _closes_at_end(tokens: list[tuple[int, int, int, str]]) -> bool:
    """Whether the first token's bracket is closed by the last token."""
    depth = 0
    for index, (kind, _start, _end, string) in enumerate(tokens):
        if kind == tokenize.OP and string in "([{":
            depth += 1
        elif kind == tokenize.OP and string in ")]}":
            depth -= 1
            if depth == 0:
                return index == len(tokens) - 1
    return False


# --- the plan over a tree -------------------------------------------------------------------


def plan_rewrites(
    root: Path,
    *,
    known_booleans: Iterable[str] = (),
    version: tuple[int, int] | None = None,
) -> RewritePlan:
    """Find what the installed ansible-core refuses in a tree of playbooks, and plan the rewrites.

    Every YAML file under ``root`` that holds plays or tasks is looked at (files in
    ``templates``, ``files``, ``defaults``, ``vars``, ``host_vars``, ``group_vars``,
    ``credentials`` and similar folders are data, not tasks). Nothing is written.

    Args:
        root: the folder the playbook runs from (the release's project folder).
        known_booleans: names of the release's variables whose value is a boolean
            (they need no ``is truthy``).
        version: the ansible-core version to plan for; default: the installed one.
            With :data:`~micado.installer.executable.ENV_ANSIBLE_PLAYBOOK` set, nothing is planned.

    Returns:
        The plan.

    Raises:
        InstallError: ansible-core is not installed, or
            :data:`~micado.installer.executable.ENV_ANSIBLE_PLAYBOOK` names no executable file.
    """
    if version is None:
        if ansible_playbook_override() is not None:
            return RewritePlan()
        version = ansible_core_version()
    known = frozenset(known_booleans)
    rewrites: list[Rewrite] = []
    texts: dict[str, str] = {}
    problems: list[str] = []
    for path in playbook_files(root):
        relative = path.relative_to(root).as_posix()
        text = _read(path)
        if text is None:
            continue
        scanner = _Scanner(text, version, known, handlers="handlers" in path.parts)
        try:
            node = scanner.compose()
            if node is None:
                continue
            scanner.document(node)
        except RecursionError:
            problems.append(f"{relative}:1: nested too deeply to be checked")
            continue
        problems.extend(f"{relative}:{line}: {what}" for line, what in scanner.problems)
        if scanner.edits:
            new_text = scanner.apply()
            texts[relative] = new_text
            rewrites.extend(
                Rewrite(relative, edit.line, *(edit.shown or (text[edit.start: edit.end], edit.replacement)), edit.why)
                for edit in sorted(scanner.edits, key=lambda e: e.start) if not edit.silent
            )
    return RewritePlan(tuple(rewrites), texts, tuple(problems), version)


def check_playbooks(root: Path, playbook: str, *, known_booleans: Iterable[str] = ()) -> RewritePlan:
    """Plan the rewrites for a tree and refuse it if anything stays unsupported.

    Args:
        root: the folder the playbook runs from.
        playbook: the main playbook, relative to ``root`` (named in the error).
        known_booleans: see :func:`plan_rewrites`.

    Returns:
        The plan, to apply to the master's working copy.

    Raises:
        InstallError: a construct no rewrite covers (the message names file and line,
            up to five of them, and the ways out), or see :func:`plan_rewrites`.
    """
    plan = plan_rewrites(root, known_booleans=known_booleans)
    if plan.problems:
        shown = "; ".join(plan.problems[:5])
        more = f" (and {len(plan.problems) - 5} more)" if len(plan.problems) > 5 else ""
        raise InstallError(
            f"the playbook {root / playbook} cannot run with the ansible-core "
            f"{_version_text(plan.ansible_core)} of this environment: {shown}{more}. Use playbooks "
            f"updated for it (playbook= a folder, tarball or URL), or set {ENV_ANSIBLE_PLAYBOOK} to "
            "the ansible-playbook of an Ansible these playbooks support (e.g. a virtualenv with "
            "ansible-core 2.15)"
        )
    return plan


def _version_text(version: tuple[int, int] | None) -> str:
    return "?" if version is None else f"{version[0]}.{version[1]}"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= 160 else flat[:157] + "...")


def playbook_files(root: Path) -> Iterator[Path]:
    """Every YAML file below ``root`` that may hold plays or tasks (data folders skipped), sorted."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders
                               if name not in _NOT_TASK_FOLDERS and not name.startswith("."))
        for name in sorted(files):
            if name.endswith((".yml", ".yaml")):
                yield Path(folder) / name


_TRIGGERS = ("include", "vars", "when", "that", "until", "sudo", "always_run")


_MAX_TASK_FILE_BYTES = 1 << 20


def read_task_file(path: Path) -> str | None:
    """The text of a playbook or task file, or ``None`` if it is unreadable or larger than any task file is."""
    try:
        if path.stat().st_size > _MAX_TASK_FILE_BYTES:
            return None  # no task file is that large; ansible-playbook will judge it
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _read(path: Path) -> str | None:
    text = read_task_file(path)
    return text if text is not None and any(word in text for word in _TRIGGERS) else None


class _Scanner:
    """Walks one YAML file's plays or tasks and collects the edits and problems."""

    def __init__(self, text: str, version: tuple[int, int], known: frozenset[str], *, handlers: bool) -> None:
        self.text = text
        self.version = version
        self.known = known
        self.handlers = handlers
        self.edits: list[_Edit] = []
        self.problems: list[tuple[int, str]] = []

    def compose(self) -> Any:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        try:
            return YAML(typ="safe", pure=True).compose(self.text)
        except YAMLError:
            return None  # ansible-playbook will say what is wrong with it

    def apply(self) -> str:
        text = self.text
        for edit in sorted(self.edits, key=lambda e: e.start, reverse=True):
            text = text[: edit.start] + edit.replacement + text[edit.end:]
        return text

    # -- structure

    def document(self, node: Any) -> None:
        items = _sequence(node)
        if items is None:
            return
        mappings = [item for item in items if _mapping(item) is not None]
        if any("hosts" in _keys(item) for item in mappings) or any(
            "import_playbook" in _keys(item) for item in mappings
        ):
            for item in mappings:
                self.play(item)
        else:
            self.tasks(node, handlers=self.handlers)

    def play(self, node: Any) -> None:
        keys = _keys(node)
        if "hosts" not in keys:
            if "include" in keys:  # a playbook included by a playbook
                self.rename(keys["include"][0], "import_playbook")
            return
        self.keywords(keys)
        for name in _TASK_LISTS:
            if name in keys:
                self.tasks(keys[name][1], handlers=False)
        if "handlers" in keys:
            self.tasks(keys["handlers"][1], handlers=True)
        for role in (_sequence(keys["roles"][1]) if "roles" in keys else None) or []:  # roles: not a list: none
            if _mapping(role) is not None:
                self.keywords(_keys(role))

    def tasks(self, node: Any, *, handlers: bool) -> None:
        for task in _sequence(node) or []:
            if _mapping(task) is None:
                continue
            keys = _keys(task)
            self.keywords(keys)
            if "include" in keys:
                self.include(keys, handlers)
            for action in _ASSERT_ACTIONS:
                if action in keys and _mapping(keys[action][1]) is not None:
                    that = _keys(keys[action][1]).get("that")
                    if that is not None:
                        self.condition(that[1])
            for name in _BLOCK_LISTS:
                if name in keys:
                    self.tasks(keys[name][1], handlers=handlers)

    def keywords(self, keys: dict[str, tuple[Any, Any]]) -> None:
        """What any play, role entry, block or task can carry: conditions, vars, removed keywords."""
        for name in _CONDITION_KEYS:
            if name in keys:
                self.condition(keys[name][1])
        if "vars" in keys:
            self.vars_list(keys["vars"][1])
        for name, why in _REMOVED_KEYWORDS.items():
            if name in keys:
                self.problems.append((_line(keys[name][0]), why))

    # -- rewrites

    def rename(self, key: Any, new: str) -> None:
        if self.version < _INCLUDE_REMOVED:
            return
        self.edits.append(_Edit(key.start_mark.index, key.end_mark.index, new, _line(key),
                                "'include' was removed in ansible-core 2.16"))

    def include(self, keys: dict[str, tuple[Any, Any]], handlers: bool) -> None:
        key, value = keys["include"]
        target = value.value if _is_scalar(value) else None
        if not isinstance(target, str):
            self.problems.append((_line(key), "'include' of something that is not a file name"))
            return
        if re.search(r"\s\w+=", target.strip()):
            if self.version >= _INCLUDE_REMOVED:
                self.problems.append((_line(key), "'include' with inline arguments (file.yml a=b) was removed"))
            return
        dynamic = "{{" in target or "loop" in keys or any(name.startswith("with_") for name in keys)
        self.rename(key, "include_tasks" if dynamic and not handlers else "import_tasks")

    def vars_list(self, node: Any) -> None:
        items = _sequence(node)
        if items is None or self.version < _STRICT_TEMPLATING:
            return
        if getattr(node, "flow_style", False):
            self.problems.append((_line(node), "'vars' given as a flow-style list; it must be a mapping"))
            return
        for item in items:
            mapping = _mapping(item)
            if mapping is None or len(mapping) != 1:
                self.problems.append((_line(item), "'vars' list item that is not a one-key mapping"))
                return
        names = [str(_mapping(item)[0][0].value) for item in items]  # type: ignore[index]
        shown = (f"vars: [- {': ..., - '.join(names)}: ...]", f"vars: {{{': ..., '.join(names)}: ...}}")
        for index, item in enumerate(items):
            dash = item.start_mark.index - 1
            while dash >= 0 and self.text[dash] == " ":
                dash -= 1
            if dash < 0 or self.text[dash] != "-":
                self.problems.append((_line(item), "'vars' given as a list in a form that cannot be rewritten"))
                return
            self.edits.append(_Edit(dash, dash + 1, " ", _line(item),
                                    "'vars' as a list is refused by ansible-core 2.19 (now a mapping)",
                                    shown=shown if index == 0 else None, silent=index > 0))

    def condition(self, node: Any) -> None:
        if self.version < _STRICT_TEMPLATING:
            return
        items = _sequence(node)
        for item in items if items is not None else [node]:
            if not _is_scalar(item) or not str(item.tag).endswith(":str"):
                continue
            if item.style is None and _YAML11_NON_STRINGS.match(item.value):
                continue  # a plain yes/no/number: a boolean or number to Ansible's YAML 1.1
            try:
                new = _rewrite_condition(item.value, self.known)
            except _Unsupported as exc:
                self.problems.append((_line(item), str(exc)))
                continue
            if new == item.value:
                continue
            start, end = item.start_mark.index, item.end_mark.index
            span = self.text[start:end]
            end -= len(span) - len(span.rstrip())  # keep the newline after a block scalar
            why = ("template delimiters inside a conditional are refused by ansible-core 2.19"
                   if "{{" in item.value else "ansible-core 2.19 wants a boolean conditional")
            self.edits.append(_Edit(start, end, json.dumps(new), _line(item), why))


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _is_scalar(node: Any) -> bool:
    return type(node).__name__ == "ScalarNode"


def _sequence(node: Any) -> list[Any] | None:
    return list(node.value) if type(node).__name__ == "SequenceNode" else None


def _mapping(node: Any) -> list[tuple[Any, Any]] | None:
    return list(node.value) if type(node).__name__ == "MappingNode" else None


def _keys(node: Any) -> dict[str, tuple[Any, Any]]:
    """A mapping node's scalar keys: ``name -> (key node, value node)``."""
    return {key.value: (key, value) for key, value in _mapping(node) or [] if _is_scalar(key)}


_DYNAMIC_INCLUDES = ("include_tasks", "ansible.builtin.include_tasks")


def tag_included_tasks(run_dir: Path, tag: str) -> list[str]:
    """Let a tag given to ``include_tasks`` reach the included tasks, in a working copy.

    ``--tags X`` runs an ``include_tasks`` tagged X but none of the tasks it includes
    unless they carry X too (tags of a dynamic include are not inherited). ansible-micado
    0.12.6 includes its credential push that way (``load-auth.yml``, tag ``update-auth``),
    so ``--tags update-auth`` would only check the files. Each such include gets
    ``apply: {tags: [X]}``, Ansible's own way of handing the tag down; every change is
    logged with its file and line.

    Args:
        run_dir: the working copy's run folder (never the cached release).
        tag: the tag the play is run with.

    Returns:
        What was changed, one ``file:line`` each.
    """
    changed = []
    for path in playbook_files(run_dir):
        text = read_task_file(path)
        if text is None or tag not in text:
            continue
        scanner = _Scanner(text, (0, 0), frozenset(), handlers=False)
        edits = [edit for node in _all_nodes(scanner.compose()) for edit in _include_edit(node, tag)]
        if not edits:
            continue
        scanner.edits = edits
        path.write_text(scanner.apply(), encoding="utf-8")
        for edit in edits:
            where = f"{path.relative_to(run_dir)}:{edit.line}"
            logger.info("tag %s handed to the tasks of the include at %s", tag, where)
            changed.append(where)
    return changed


def _all_nodes(node: Any) -> Iterator[Any]:
    if node is None:
        return
    yield node
    for item in _sequence(node) or []:
        yield from _all_nodes(item)
    for _key, value in _mapping(node) or []:
        yield from _all_nodes(value)


def _include_edit(node: Any, tag: str) -> list[_Edit]:
    keys = _keys(node)
    include = next((keys[name][1] for name in _DYNAMIC_INCLUDES if name in keys), None)
    tags = keys.get("tags", (None, None))[1]
    if include is None or tags is None or not _is_scalar(include) or "apply" in keys:
        return []
    named = [item.value for item in _sequence(tags) or [] if _is_scalar(item)] if _sequence(tags) is not None \
        else [part.strip() for part in str(tags.value).split(",")] if _is_scalar(tags) else []
    if tag not in named:
        return []
    replacement = "{file: " + json.dumps(include.value) + ", apply: {tags: [" + json.dumps(tag) + "]}}"
    return [_Edit(include.start_mark.index, include.end_mark.index, replacement, include.start_mark.line + 1,
                  f"hand the tag {tag} to the included tasks")]
