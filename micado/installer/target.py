"""The master's Python, checked before the play against what the shipped ansible-core needs on it.

Ansible runs its modules with the managed host's own Python, and each ansible-core
release drops old ones: 2.18 and 2.19 need Python 3.8 or newer there, 2.20 and later
3.9. A play on an image with an older Python fails at its first module, a few tasks in,
long after the VM was made. :func:`check_target_python` asks the host, over the SSH
connection already open, which Python Ansible would pick (the first of ansible-core's
own interpreter list found there, as its discovery does) and refuses one that is too
old in one line: its version, the ansible-core here, and the images that work.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
from pathlib import Path

from micado.exceptions import InstallError, InvalidArgument

__all__ = ["MIN_TARGET_PYTHON", "ansible_core_version", "required_target_python", "check_target_python"]

#: ansible-core (major, minor) -> the oldest Python it runs on a managed host (its
#: support matrix); a newer ansible-core than listed needs what the newest listed one does.
MIN_TARGET_PYTHON: dict[tuple[int, int], tuple[int, int]] = {
    (2, 16): (2, 7), (2, 17): (3, 7), (2, 18): (3, 8), (2, 19): (3, 8), (2, 20): (3, 9), (2, 21): (3, 9),
}
#: The Python each Ubuntu LTS image ships, for the message.
_UBUNTU_PYTHON = {"18.04": (3, 6), "20.04": (3, 8), "22.04": (3, 10), "24.04": (3, 12)}
# What ansible-core looks for when the inventory names no interpreter (interpreter_python
# auto): INTERPRETER_PYTHON_FALLBACK of its base config, newest first.
_FALLBACK = ("python3.14", "python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8",
             "/usr/bin/python3", "python3")
_PROBE_CODE = "import sys; print(sys.executable, *sys.version_info[:3])"


def ansible_core_version() -> str:
    """The version of the ansible-core installed with micado-client (``2.19.14``)."""
    try:
        return importlib.metadata.version("ansible-core")
    except importlib.metadata.PackageNotFoundError:
        raise InstallError("ansible-core is not installed beside micado-client; reinstall micado-client") from None


def required_target_python(core_version: str) -> tuple[int, int]:
    """The oldest Python that ansible-core ``core_version`` runs on a managed host."""
    found = re.match(r"(\d+)\.(\d+)", core_version)
    key = (int(found.group(1)), int(found.group(2))) if found else max(MIN_TARGET_PYTHON)
    known = [release for release in sorted(MIN_TARGET_PYTHON) if release <= key]
    return MIN_TARGET_PYTHON[known[-1] if known else min(MIN_TARGET_PYTHON)]


def _fallback_list() -> tuple[str, ...]:
    """ansible-core's own interpreter list, when it can be read; else the one of 2.19-2.21."""
    try:
        from ansible.config.manager import ConfigManager

        listed = ConfigManager().get_config_value("INTERPRETER_PYTHON_FALLBACK")
    except Exception:  # noqa: BLE001 - any failure: the list above is the same one
        return _FALLBACK
    return tuple(str(name) for name in listed) if isinstance(listed, list) and listed else _FALLBACK


def probe_command() -> str:
    """The shell command that prints ``<path> <major> <minor> <micro>`` of the Python Ansible would use, or ``none``."""
    names = " ".join(shlex.quote(name) for name in _fallback_list())
    return (f"for p in {names}; do if command -v \"$p\" >/dev/null 2>&1; then "
            f"exec \"$p\" -c {shlex.quote(_PROBE_CODE)}; fi; done; echo none")


def check_target_python(host: str, *, port: int, user: str, key: Path, control_dir: Path | None = None,
                        timeout: float = 60.0) -> str:
    """Refuse a host whose Python the shipped ansible-core cannot use; return its version (``3.10.12``).

    Raises:
        InvalidArgument: no Python on the host, or one older than the shipped ansible-core
            supports (the message names it, the ansible-core and the Ubuntu images that work).
        InstallError: ssh failed.
        MicadoTimeout: the host did not answer in time.
    """
    from micado.installer import ssh

    core = ansible_core_version()
    need = required_target_python(core)
    answer = ssh.run(host, probe_command(), port=port, user=user, key=key, timeout=timeout,
                     control_dir=control_dir).strip().splitlines()
    last = answer[-1] if answer else "none"
    found = re.fullmatch(r"(\S+) (\d+) (\d+) (\d+)", last)
    images = ", ".join(f"Ubuntu {release}" for release, python in _UBUNTU_PYTHON.items() if python >= need)
    if found is None:
        raise InvalidArgument(f"the image of {host} has no Python 3, which Ansible needs on the master; "
                              f"use an image with Python {need[0]}.{need[1]} or newer ({images})")
    path, version = found.group(1), tuple(int(part) for part in found.groups()[1:])
    shown = ".".join(str(part) for part in version)
    if version[:2] < need:
        older = (" or run micado-client on Python 3.11, whose ansible-core 2.19 still manages Python 3.8"
                 if version[:2] >= (3, 8) else "")
        raise InvalidArgument(
            f"the image of {host} has Python {shown} ({path}); the ansible-core installed here ({core}) needs "
            f"Python {need[0]}.{need[1]} or newer on the master: use another image ({images}){older}")
    return shown
