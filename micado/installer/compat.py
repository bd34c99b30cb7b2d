"""Will this environment's ``ansible-playbook`` accept these playbooks? Checked before the cloud is touched.

The released ansible-micado playbooks were written for the Ansible of their time, and
two constructs they use were removed from ansible-core since:

* the ``include:`` task action (removed in ansible-core 2.16; the MiCADO 0.12 roles
  start with ``- include: set-hostname.yml``);
* play ``vars:`` written as a list of one-key mappings (refused by ansible-core 2.19;
  the MiCADO 0.9 ``micado-master.yml`` has ``vars: [- cloud_cred_path: ...]``).

``ansible-playbook`` refuses such playbooks while parsing, which would only show up
after a VM had been created and reached. :func:`check_playbooks` finds them in a few
milliseconds instead, naming the file and line, so ``master.create`` fails before it
launches anything. Pointing :envvar:`MICADO_ANSIBLE_PLAYBOOK` at the
``ansible-playbook`` of an older Ansible (see :func:`micado.installer.runner.ansible_playbook_command`)
skips the check: that Ansible decides.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

from micado.exceptions import InstallError

__all__ = ["ENV_ANSIBLE_PLAYBOOK", "ansible_playbook_override", "ansible_core_version", "check_playbooks"]

logger = logging.getLogger(__name__)

#: Environment variable naming another ``ansible-playbook`` to run (an older Ansible).
ENV_ANSIBLE_PLAYBOOK = "MICADO_ANSIBLE_PLAYBOOK"

_INCLUDE_REMOVED = (2, 16)
_VARS_LIST_REFUSED = (2, 19)
_TASK_LISTS = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")


def ansible_playbook_override() -> Path | None:
    """The ``ansible-playbook`` named by :data:`ENV_ANSIBLE_PLAYBOOK`, if set.

    Returns:
        Its absolute path, or ``None`` when the variable is unset or empty.

    Raises:
        InstallError: the variable names no executable file.
    """
    override = os.environ.get(ENV_ANSIBLE_PLAYBOOK)
    if not override:
        return None
    path = Path(override).expanduser().absolute()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise InstallError(
            f"{ENV_ANSIBLE_PLAYBOOK}={override!r} is not an executable file; set it to the path "
            "of an ansible-playbook program, or unset it to use the Ansible installed with "
            "micado-client"
        )
    return path


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


def check_playbooks(playbook: Path) -> None:
    """Refuse playbooks this environment's ansible-core cannot parse.

    Looks at ``playbook`` and at the task files next to it and below (``tasks``,
    ``handlers`` and ``pre-task`` folders). When :data:`ENV_ANSIBLE_PLAYBOOK` names
    another ``ansible-playbook``, only that program is checked (it must be executable):
    its Ansible decides about the playbooks.

    Args:
        playbook: the main playbook file.

    Raises:
        InstallError: a construct the installed ansible-core removed (the message names
            the file, the line, the Ansible versions involved and the ways out), or
            :data:`ENV_ANSIBLE_PLAYBOOK` names no executable file.
    """
    if ansible_playbook_override() is not None:
        return
    version = ansible_core_version()
    root = playbook.parent
    problems: list[str] = []
    for path in [playbook, *_task_files(root)]:
        document = _load(path)
        if document is None:
            continue
        where = path.relative_to(root)
        is_playbook = path == playbook
        for line, problem in _problems(document, is_playbook, version):
            problems.append(f"{where}:{line}: {problem}")
        if len(problems) >= 5:
            break
    if problems:
        shown = "; ".join(problems[:5])
        raise InstallError(
            f"the playbook {playbook} cannot run with the ansible-core {version[0]}.{version[1]} of "
            f"this environment: {shown}. Use playbooks updated for it (playbook= a folder, tarball "
            f"or URL), or set {ENV_ANSIBLE_PLAYBOOK} to the ansible-playbook of an Ansible these "
            "playbooks support (e.g. a virtualenv with ansible-core 2.15)"
        )


def _task_files(root: Path) -> Iterator[Path]:
    for pattern in ("**/tasks/*.yml", "**/tasks/*.yaml", "**/handlers/*.yml", "**/handlers/*.yaml",
                    "**/pre-task/*.yml"):
        yield from sorted(root.glob(pattern))


def _load(path: Path) -> Any:
    """The YAML document with line numbers, or ``None`` if it is no YAML we can read."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "include" not in text and "vars" not in text:
        return None  # the usual case: nothing to look at, no parsing
    try:
        return YAML(typ="rt").load(text)
    except YAMLError:
        logger.debug("not checking %s: not YAML that ruamel reads", path)
        return None  # ansible-playbook will say what is wrong with it


def _line(node: Any, key: str | None = None) -> int:
    try:
        if key is not None:
            return int(node.lc.key(key)[0]) + 1
        return int(node.lc.line) + 1
    except (AttributeError, KeyError, TypeError):
        return 0


def _problems(document: Any, is_playbook: bool, version: tuple[int, int]) -> Iterator[tuple[int, str]]:
    if not isinstance(document, list):
        return
    for item in document:
        if not isinstance(item, dict):
            continue
        if is_playbook and "hosts" in item:
            if version >= _VARS_LIST_REFUSED and isinstance(item.get("vars"), list):
                yield _line(item, "vars"), (
                    "play 'vars' is a list, which ansible-core 2.19 refuses (it must be a mapping)"
                )
            for name in _TASK_LISTS:
                yield from _task_problems(item.get(name), version)
        else:
            yield from _task_problems([item], version)


def _task_problems(tasks: Any, version: tuple[int, int]) -> Iterator[tuple[int, str]]:
    if not isinstance(tasks, list):
        return
    for task in tasks:
        if not isinstance(task, dict):
            continue
        if version >= _INCLUDE_REMOVED and "include" in task:
            yield _line(task, "include"), (
                "'include:' was removed in ansible-core 2.16 (use include_tasks or import_tasks)"
            )
        for name in ("block", "rescue", "always"):
            yield from _task_problems(task.get(name), version)
