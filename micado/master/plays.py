"""Day-2 plays: the master's own release run again on it (update-auth, reconfigure, edge files, agents).

:class:`MasterPlay` runs one play of the release a master was made with
(:func:`~micado.master.release.recorded_release`) on that master, in a working copy
of its own (``work/<id>.<operation>-<hex>``, 0700, rewritten for the installed
ansible-core exactly as at create), reached with the recorded SSH access and host
key. The copy holds credentials: it is removed when the play ends, whatever the
outcome (Ctrl-C included), and while it exists it names the process that owns it
(file ``.owner``), so that ``cleanup`` leaves it alone until that process is gone.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from micado.config import paths
from micado.exceptions import MicadoException
from micado.progress import ProgressCallback

if TYPE_CHECKING:
    from micado.config.store import MasterRecord
    from micado.config.tls import TlsPair
    from micado.installer.ansible import InventoryHost
    from micado.installer.playbooks import PlaybookTree
    from micado.installer.runner import WorkDir
    from micado.launcher.base import ConfiguredLogin

__all__ = ["MasterPlay", "master_credentials_file", "require_tag", "ssh_key_of"]

log = logging.getLogger(__name__)

def ssh_key_of(record: MasterRecord) -> Path:
    """The private key that logs in to the master: the user's own for a deployed host, else ours."""
    key = record.extra.get("ssh_key")
    return Path(key) if isinstance(key, str) and key else paths.ssh_private_key()


def require_tag(tree: PlaybookTree, tag: str, what: str, playbook: str | None = None) -> None:
    """Refuse a release whose playbooks do not have ``tag`` (in ``playbook``, or anywhere).

    Raises:
        MicadoException: the release lacks it; says which release, and what has it.
    """
    from micado.installer.playbooks import playbook_tags, release_tags

    if playbook is not None:
        path = tree.run_dir / playbook
        tags = playbook_tags(path) if path.is_file() else frozenset()
    else:
        tags = release_tags(tree)
    if tag not in tags:
        where = f"{playbook} with " if playbook else ""
        raise MicadoException(f"{what} needs {where}the '{tag}' tag, which the release of this master "
                              f"(ansible-micado, layout {tree.layout.name}, in {tree.root.name}) does not have")


@contextmanager
def master_credentials_file(login: ConfiguredLogin | None, work_id: str,
                            given: Path | None = None) -> Iterator[Path]:
    """The cloud credentials file a play hands to the master.

    ``given``, else the user's file, else (when a cloud of the user's own
    configuration is used, ``login``) one derived from it, written 0600 into the
    working copy's folder (:func:`~micado.config.paths.derived_credentials_file`)
    and removed afterwards: the password is never written outside the MiCADO dir.
    """
    if given is not None or login is None or paths.credentials_file().is_file():
        yield given if given is not None else paths.credentials_file()
        return
    from micado.config.files import write_private

    target = paths.derived_credentials_file(work_id)
    paths.ensure_dir(target.parent.parent)  # work/, then work/<id>: each 0700
    paths.ensure_dir(target.parent)
    try:
        write_private(target, login.credentials_file_text().encode())
        yield target
    finally:
        target.unlink(missing_ok=True)


class MasterPlay:
    """One day-2 play on a recorded master, in a working copy removed at the end of the ``with``.

    Args:
        record: the master's record (secrets decrypted: :meth:`MasterStore.get`).
        operation: names the working copy and the log (``update-auth``, ``reconfigure``...).
        report: the progress callback.
        extra_args: more ``ansible-playbook`` arguments (a test seam: ``--check``).
    """

    def __init__(self, record: MasterRecord, operation: str, report: ProgressCallback,
                 extra_args: Sequence[str] = ()) -> None:
        self.record = record
        server_id = record.extra.get("server_id") or record.id
        self.work_id = f"{server_id}.{operation}-{secrets.token_hex(3)}"
        self.report = report
        self.extra_args = tuple(extra_args)
        self.work_path = paths.work_dir(self.work_id)

    def __enter__(self) -> MasterPlay:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.work_path.exists():
            shutil.rmtree(self.work_path, ignore_errors=True)
            log.info("master %s: removed the working copy %s", self.record.id, self.work_path.name)

    def run(self, tree: PlaybookTree, *, settings: dict[str, Any], timeout: float, playbook: str | None = None,
            tags: Sequence[str] = (), cloud_credentials: Path | None = None,
            registry_credentials: Path | None = None, agents: tuple[InventoryHost, ...] = (),
            needs_cloud_credentials: bool = True, vault_password: str | None = None,
            gce_credentials: Path | None = None, tls: TlsPair | None = None) -> WorkDir:
        """Make the working copy and run the play; returns the working copy (its log: ``paths.log_file(work_id)``).

        Raises:
            InvalidArgument, CredentialsError: see :func:`~micado.installer.ansible.prepare_workdir`.
            InstallError: the play failed (names the task and the log).
            MicadoTimeout: the play ran past ``timeout``.
        """
        from micado.installer import ansible
        from micado.installer.compat import tag_included_tasks
        from micado.installer.runner import close_connections, make_control_dir, run_playbook
        from micado.master.cleanup import OWNER_FILE, creator_identity

        record = self.record
        work = ansible.prepare_workdir(
            self.work_id, tree, host=record.ip, micado_user=record.micado_user,
            micado_password=record.micado_password, cloud_credentials=cloud_credentials,
            registry_credentials=registry_credentials, settings=settings,
            ssh_user=str(record.extra.get("ssh_user", "ubuntu")), ssh_port=int(record.extra.get("ssh_port", 22)),
            ssh_key=ssh_key_of(record), playbook=playbook, agents=agents,
            needs_cloud_credentials=needs_cloud_credentials, vault_password=vault_password,
            gce_credentials=gce_credentials, tls=tls,
        )
        (work.path / OWNER_FILE).write_text(json.dumps(creator_identity()), encoding="utf-8")
        for tag in tags:  # a tag must reach the tasks the release includes under it (0.12.6's update-auth)
            tag_included_tasks(work.run_dir, tag)
        arguments = (*(("--tags", ",".join(tags)) if tags else ()), *self.extra_args)
        control_dir = make_control_dir()
        try:
            run_playbook(work, timeout=timeout, progress=self.report, extra_args=arguments, control_dir=control_dir)
        finally:
            close_connections(control_dir)
        return work
