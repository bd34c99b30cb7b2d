"""``master.deploy``: MiCADO on a host the user already has (the official client's ``up``).

:class:`Deployment` is a :class:`~micado.master.lifecycle.Creation` without a cloud:
no launch step, the "VM" is the given host, SSH logs in with the user's own key
(read, never copied or changed; host keys go to our own known_hosts), and the record
says ``launcher="none"`` with ``extra["deployed"] = True``, so that ``destroy`` removes
the applications and the record and never touches the machine.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado.checks import command_word_problem
from micado.config import paths
from micado.exceptions import CredentialsError
from micado.master.lifecycle import STEPS, Creation

if TYPE_CHECKING:
    from micado.config.store import MasterRecord

__all__ = ["Deployment", "DEPLOYED_LAUNCHER", "HostKey", "check_host_arguments", "new_host_id"]

#: The ``launcher`` of a deployed master's record: no cloud made it.
DEPLOYED_LAUNCHER = "none"

#: The steps of a deploy: a create's, without the launch.
DEPLOY_STEPS = tuple(step for step in STEPS if step != "launch")


def new_host_id() -> str:
    """A new master id for a deployed host: ``host-<12 hex digits>``."""
    return f"host-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class HostKey:
    """The user's own SSH key for a deploy (only its private file is used; see ``ssh -i``).

    Attributes:
        private_key: the private key file, read by ``ssh``, never copied or changed.
        public_key: unused for a deploy (the host already authorises the key).
    """

    private_key: Path
    public_key: str = ""


def check_host_arguments(host: object, ssh_key: object) -> list[str]:
    """The problems with ``deploy``'s ``host`` and ``ssh_key``, each naming its argument."""
    found = []
    if not isinstance(host, str) or not host.strip() or any(c in "/@[]" for c in host):
        found.append(f"host must be an address or host name (no user, port or path), not {host!r}")
    elif command_word_problem(host):
        found.append(f"host {command_word_problem(host)}: {host!r}")
    if not isinstance(ssh_key, (str, Path)) or not str(ssh_key).strip():
        found.append(f"ssh_key must be the path of your SSH private key, not {ssh_key!r}")
    elif command_word_problem(str(ssh_key)):
        found.append(f"ssh_key {command_word_problem(str(ssh_key))}: {str(ssh_key)!r}")
    elif not Path(ssh_key).expanduser().is_file():
        found.append(f"ssh_key {ssh_key}: no such file")
    return found


class Deployment(Creation):
    """One run of ``master.deploy``: the steps of a create after the launch, on a given host.

    Args:
        host: the machine's address.
        ssh_key: the user's private key authorised on it.
        **options: as :class:`~micado.master.lifecycle.Creation` (``launcher_name`` is set here).
    """

    steps = DEPLOY_STEPS

    def __init__(self, *args: Any, host: str, ssh_key: Path, **options: Any) -> None:
        super().__init__(*args, launcher_name=DEPLOYED_LAUNCHER, **options)
        self.host = host
        self.ssh_key = Path(ssh_key).expanduser().absolute()

    def _prepare(self) -> None:
        """Everything that can fail before the host is touched: credentials file, store, playbooks, settings."""
        from micado.installer import ansible
        from micado.launcher.base import LaunchedVM

        spec = self.spec
        ansible.check_web_credentials(spec.micado_user, self.password)
        if self.cloud is None and not paths.credentials_file().is_file():
            raise CredentialsError(f"the cloud credentials file {paths.credentials_file()} does not exist: the "
                                   "master needs it to start worker nodes (it is handed to the installer); "
                                   "write it (micado init), or name a cloud of your clouds.yaml "
                                   "(MicadoClient(cloud=NAME), micado master deploy --cloud NAME)",
                                   path=paths.credentials_file())
        self.store.list()
        self.keys = HostKey(self.ssh_key)  # type: ignore[assignment]  # the user's key: only its path is used
        self._playbooks()
        master_id = new_host_id()
        self.vm = LaunchedVM(server_id=master_id, name=master_id, ip=self.host, launcher=DEPLOYED_LAUNCHER)
        self.intent = self.store.add(self._record_base(
            id=master_id, ip=self.host, endpoint="", cert_path=None, name=master_id, state="creating",
            extra={"creator": _creator()}))
        self.undo.push("remove the record", lambda: self.store.remove(self.intent.id))

    def _cloud_fields(self) -> dict[str, Any]:
        """No cloud: the record keeps no login."""
        return {}

    def _access(self) -> dict[str, Any]:
        """The user's own key: its path (the key is never copied)."""
        return {"ssh_key": str(self.ssh_key)}

    def _record_base(self, *, extra: dict[str, Any], **fields: Any) -> MasterRecord:
        """A record of this deploy: marked ``deployed``, so that ``destroy`` never touches the host."""
        return super()._record_base(extra={**extra, "deployed": True}, **fields)


def _creator() -> dict[str, Any]:
    from micado.master.cleanup import creator_identity

    return creator_identity()
