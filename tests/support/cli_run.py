"""Running the ``micado`` command as a user would, for tests in any folder."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

__all__ = ["micado", "closed_port", "one_line"]


def micado(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m micado ARGS`` with the test's environment (plus ``env``), no terminal on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "micado", *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,  # not a terminal: nothing is asked
    )


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_line(text: str) -> str:
    """The one line of ``text`` that is not a progress line (``[mm:ss] stage: ...``)."""
    lines = [line for line in text.splitlines() if not re.match(r"\[\d\d:\d\d\] ", line)]
    assert len(lines) == 1 and text.endswith("\n"), text
    assert "Traceback" not in text
    return lines[0]
