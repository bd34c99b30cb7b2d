"""Finding and stopping processes through ``/proc`` (Linux), for the local VMs.

A VM's processes are its sshd's connection processes (found as descendants of the
listener while it runs) and everything started over SSH, daemons included (found by
the marker variables every session exports, which children inherit).

:func:`start_watchdog` covers the case where the program owning the VMs dies without
cleaning up (SIGKILL, a crash, a test runner killed by CI): a small process,
``python -m micado.testing.processes --watch NAME=VALUE``, reads a pipe only its
parent writes to, and when the pipe ends it stops every process carrying the markers,
and the sshd listeners it was told about (:func:`watch_pid`) with their descendants
(sshd rewrites its own environment block for its process title, so it cannot be
found by marker).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

from micado.exceptions import MicadoTimeout
from micado.progress import wait_until

__all__ = [
    "KILL_GRACE", "alive", "descendants", "marked_processes", "terminate", "start_watchdog",
    "watch_pid", "stop_watchdog",
]

logger = logging.getLogger(__name__)

#: Seconds processes get between SIGTERM and SIGKILL.
KILL_GRACE = 3.0


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, parent pid)`` of a process, ``None`` if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may contain blanks
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


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


def terminate(find: Callable[[], set[int]], what: str, *, grace: float = KILL_GRACE) -> None:
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
                stage="vm",
            )
            return
        except MicadoTimeout:
            if sig == signal.SIGKILL:
                raise
            logger.info("processes of %s ignored SIGTERM, killing them", what)


# --- the watchdog: nothing outlives a program that dies ------------------------------------


def start_watchdog(markers: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start a process that stops every process carrying ``markers`` once we are gone.

    It reads a pipe whose only writer is the calling process (the pipe is not inherited
    by other children: ``subprocess`` closes it in them). When the caller exits, however
    it exits, the pipe ends and the watchdog terminates the marked processes, then exits.
    It runs in its own session, so a Ctrl-C meant for the caller does not stop it first.

    Args:
        markers: ``NAME: value`` pairs every process to stop has in its environment.

    Returns:
        The watchdog; end it normally with :func:`stop_watchdog`.
    """
    argv = [sys.executable, "-m", "micado.testing.processes", "--watch"]
    argv += [f"{name}={value}" for name, value in markers.items()]
    env = {name: value for name, value in os.environ.items() if name not in markers}
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, start_new_session=True
    )


def watch_pid(watchdog: subprocess.Popen[bytes], pid: int, *, watched: bool = True) -> None:
    """Tell a watchdog to stop ``pid`` and its descendants too (or no longer, ``watched=False``).

    Args:
        watchdog: from :func:`start_watchdog`.
        pid: a process that carries no marker (an sshd listener).
        watched: ``False`` once the process has been stopped normally.
    """
    assert watchdog.stdin is not None
    try:
        watchdog.stdin.write(f"{'+' if watched else '-'}{pid}\n".encode("ascii"))
        watchdog.stdin.flush()
    except (OSError, ValueError) as exc:  # the watchdog is gone: nothing to tell
        logger.warning("the local VM watchdog could not be told about process %d: %s", pid, exc)


def stop_watchdog(watchdog: subprocess.Popen[bytes], *, timeout: float = 2 * KILL_GRACE + 5) -> None:
    """End a watchdog: it stops what is still marked (usually nothing) and exits.

    Raises:
        MicadoTimeout: it did not exit within ``timeout`` seconds.
    """
    if watchdog.stdin is not None and not watchdog.stdin.closed:
        watchdog.stdin.close()
    wait_until(lambda: True if watchdog.poll() is not None else None,
               what="the local VM watchdog to exit", timeout=timeout, stage="vm")


def _watch(pairs: Sequence[str]) -> int:
    markers = dict(pair.split("=", 1) for pair in pairs)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: set[int] = set()
    try:
        # EOF comes when the owner has exited (however) or closed the pipe.
        for line in sys.stdin.buffer:
            text = line.strip().decode("ascii", "replace")
            if text[:1] in ("+", "-") and text[1:].isdigit():
                (watched.add if text[0] == "+" else watched.discard)(int(text[1:]))
    except OSError:
        pass

    def remaining() -> set[int]:
        listeners = {pid for pid in watched if _is_sshd(pid)}  # not a recycled pid
        found = set(listeners)
        for pid in listeners:
            found |= descendants(pid)
        return found | marked_processes(markers)

    terminate(remaining, "local VMs whose owner has exited")
    return 0


def _is_sshd(pid: int) -> bool:
    try:
        return b"sshd" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "--watch" or not all("=" in arg for arg in sys.argv[2:]):
        sys.exit("usage: python -m micado.testing.processes --watch NAME=VALUE...")
    sys.exit(_watch(sys.argv[2:]))
