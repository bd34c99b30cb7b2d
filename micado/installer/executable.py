"""Which ``ansible-playbook`` runs the plays: the one installed with micado-client, or the
one :data:`ENV_ANSIBLE_PLAYBOOK` names (an older Ansible, for playbooks the installed
ansible-core no longer accepts). The runner runs it; the compatibility checks skip their
rewrites for another one. Also importable from :mod:`micado.installer.runner`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from micado.exceptions import InstallError

__all__ = ["ENV_ANSIBLE_PLAYBOOK", "ansible_playbook_command", "ansible_playbook_override"]

#: Environment variable naming another ``ansible-playbook`` to run (an older Ansible).
ENV_ANSIBLE_PLAYBOOK = "MICADO_ANSIBLE_PLAYBOOK"


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


def ansible_playbook_command() -> list[str]:
    """The ``ansible-playbook`` of the environment the library runs in.

    The console script next to ``sys.executable`` when there is one (a virtualenv's
    ``bin``), else the same module run by this interpreter. Never a different
    Ansible found first on ``PATH``. The one exception is explicit:
    :envvar:`MICADO_ANSIBLE_PLAYBOOK` may name another ``ansible-playbook`` (an older
    Ansible for playbooks the installed ansible-core no longer accepts).

    Returns:
        The command as an argument list.

    Raises:
        InstallError: ``MICADO_ANSIBLE_PLAYBOOK`` names no executable file.
    """
    override = ansible_playbook_override()
    if override is not None:
        return [str(override)]
    script = Path(sys.executable).parent / "ansible-playbook"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "ansible.cli.playbook"]
