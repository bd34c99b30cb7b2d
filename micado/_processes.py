"""Finding and stopping processes through ``/proc`` (Linux): whole trees, not just a group.

A child that calls ``setsid()`` (every Ansible worker does) leaves its parent's process
group, so signalling a group misses it. Processes are found instead by their parent
links (:func:`descendants`) or by a marker variable in their environment, which every
child inherits (:func:`marked_processes`), and stopped with :func:`terminate`. Where
``/proc`` does not exist, nothing is found (callers still signal the group).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from micado.exceptions import MicadoTimeout
from micado.progress import wait_until

__all__ = [
    "KILL_GRACE", "alive", "descendants", "identity", "marked_processes", "processes_with_variable",
    "still_running", "terminate",
]

logger = logging.getLogger(__name__)

#: Seconds processes get between SIGTERM and SIGKILL.
KILL_GRACE = 3.0


def _proc_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, ``None`` if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # the command name may contain blanks


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, parent pid)`` of a process, ``None`` if it is gone."""
    fields = _proc_fields(pid)
    return (fields[0], int(fields[1])) if fields else None


def identity(pid: int) -> str | None:
    """A text that names this process and no later one with the same pid (pid and start time).

    ``None`` when the process is gone or ``/proc`` does not exist.
    """
    fields = _proc_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return None
    return f"{pid}@{fields[19]}"  # field 22 of stat: start time, in clock ticks since boot


def still_running(recorded: str | None) -> bool:
    """Whether the process :func:`identity` gave ``recorded`` for still runs."""
    if not recorded or "@" not in recorded:
        return False
    pid = recorded.split("@", 1)[0]
    return pid.isdigit() and identity(int(pid)) == recorded


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc (not Linux)
        return []


def descendants(root_pid: int) -> set[int]:
    """Children, grandchildren... of ``root_pid`` right now."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is not None:
            children.setdefault(stat[1], []).append(pid)
    found: set[int] = set()
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def processes_with_variable(name: str, prefix: str) -> set[int]:
    """Processes whose environment sets ``name`` to a value starting with ``prefix``."""
    start = f"{name}={prefix}".encode()
    found = set()
    for pid in _all_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if any(entry.startswith(start) for entry in environ.split(b"\0")):
            found.add(pid)
    return found


def marked_processes(markers: Mapping[str, str]) -> set[int]:
    """Processes whose environment has every ``NAME=value`` of ``markers``.

    Args:
        markers: environment variables and their values.

    Returns:
        The process ids (processes of other users cannot be read and are left out).
    """
    wanted = {f"{name}={value}".encode() for name, value in markers.items()}
    found = set()
    for pid in _all_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or another user's process (not ours to stop anyway)
            continue
        if wanted <= set(environ.split(b"\0")):
            found.add(pid)
    return found


def terminate(find: Callable[[], set[int]], what: str, *, grace: float = KILL_GRACE, stage: str = "vm") -> None:
    """SIGTERM the processes ``find`` returns, then SIGKILL those still there after ``grace`` s.

    ``find`` is called again for each round and while waiting, so children forked in
    the meantime (a daemon restarting its worker) are caught as well.
    """

    def living() -> set[int]:
        return {pid for pid in find() if pid != os.getpid() and alive(pid)}

    for sig in (signal.SIGTERM, signal.SIGKILL):
        targets = living()
        if not targets:
            return
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                logger.warning("not allowed to stop process %d of %s", pid, what)
        try:
            wait_until(
                lambda: True if not living() else None,
                what=f"the processes of {what} to exit",
                timeout=grace,
                stage=stage,
            )
            return
        except MicadoTimeout:
            if sig == signal.SIGKILL:
                raise
            logger.info("processes of %s ignored SIGTERM, killing them", what)
