"""Stopping the local VMs' processes, and a watchdog for when their owner dies (Linux).

Finding and stopping processes is :mod:`micado._processes` (re-exported here).

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
from collections.abc import Mapping, Sequence

from micado._processes import KILL_GRACE, alive, descendants, marked_processes, terminate
from micado.progress import wait_until

__all__ = [
    "KILL_GRACE", "alive", "descendants", "marked_processes", "terminate", "start_watchdog",
    "watch_pid", "stop_watchdog",
]

logger = logging.getLogger(__name__)

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
