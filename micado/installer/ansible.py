"""Deploying MiCADO on a master VM with the ansible-micado playbooks.

Three steps, used in this order by the master model (or all at once by :func:`install`):

1. :func:`resolve_source` (:mod:`micado.installer.playbooks`) finds the playbooks:
   a release by version, or a local tarball, folder or URL; cached and unpacked safely.
2. :func:`prepare_workdir` makes the per-master working copy
   (:func:`micado.config.paths.work_dir`, mode 0700): the playbooks, an inventory
   that reaches the master over SSH with strict host key checking against the
   client's own known_hosts (:func:`micado.installer.ssh.ssh_options`), the MiCADO
   web credentials and the cloud credentials (both mode 0600), and an
   ``ansible.cfg`` of our own.
3. :func:`run_playbook` (:mod:`micado.installer.runner`) runs ``ansible-playbook``
   from the library's own environment, streams its output to the master's log file,
   reports task names to the progress callback, and turns a failure or a timeout
   into a typed error.

:func:`cleanup_workdir` removes the working copy (it holds credentials) afterwards.
This module knows nothing about clouds.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from micado.config import paths
from micado.exceptions import CredentialsError, InvalidArgument
from micado.installer.playbooks import (
    DEFAULT_MICADO_VERSION,
    LAYOUTS,
    Layout,
    PlaybookSource,
    PlaybookTree,
    detect_layout,
    resolve_source,
)
from micado.installer.runner import run_playbook
from micado.progress import ProgressCallback

__all__ = [
    "DEFAULT_MICADO_VERSION",
    "Layout",
    "LAYOUTS",
    "PlaybookTree",
    "PlaybookSource",
    "WorkDir",
    "detect_layout",
    "resolve_source",
    "check_web_credentials",
    "prepare_workdir",
    "run_playbook",
    "install",
    "cleanup_workdir",
]

logger = logging.getLogger(__name__)

_MASTER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SECRET_MODE = 0o600


@dataclass(frozen=True)
class WorkDir:
    """The per-master working copy made by :func:`prepare_workdir`.

    Attributes:
        master_id: the master it belongs to.
        path: the working folder (mode 0700).
        layout: the playbook layout.
        run_dir: the folder ``ansible-playbook`` runs in.
        playbook: the main playbook, relative to ``run_dir``.
        inventory: the inventory file.
        config: our ``ansible.cfg`` (``ANSIBLE_CONFIG``).
        web_credentials: ``credentials-micado.yml`` (mode 0600).
        cloud_credentials: ``credentials-cloud-api.yml`` (mode 0600).
        redact: secrets to mask in the log (never shown in ``repr``).
    """

    master_id: str
    path: Path
    layout: Layout
    run_dir: Path
    playbook: str
    inventory: Path
    config: Path
    web_credentials: Path
    cloud_credentials: Path
    redact: tuple[str, ...] = field(default=(), repr=False)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte on."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _SECRET_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _dump_yaml(data: object) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


#: Jinja's delimiters: Ansible would evaluate them in a credential read from a vars file.
_JINJA_MARKERS = ("{{", "{%", "{#")


def check_web_credentials(micado_user: str, micado_password: str) -> None:
    """Check the MiCADO web user and password can be handed to the playbooks as they are.

    They are written as plain YAML strings: MiCADO 0.9 loads the file with
    ``include_vars`` (Ansible then evaluates ``{{ ... }}`` in the values) and MiCADO 0.12
    reads it as text (``lookup('file')``), so Ansible's ``!unsafe`` tag, which its
    ``from_yaml`` and PyYAML's safe loader reject, cannot protect them. Jinja
    delimiters are therefore refused, before anything is made.

    Args:
        micado_user: the web user.
        micado_password: its password.

    Raises:
        InvalidArgument: a value is empty, not a string, or contains ``{{``, ``{%`` or ``{#``
            (the secret itself is never quoted).
    """
    for name, value in (("micado_user", micado_user), ("micado_password", micado_password)):
        if not isinstance(value, str) or not value:
            raise InvalidArgument(f"{name} must be a non-empty string")
        found = [marker for marker in _JINJA_MARKERS if marker in value]
        if found:
            raise InvalidArgument(
                f"{name} must not contain {' or '.join(repr(m) for m in found)}: the ansible-micado "
                "playbooks would evaluate it as a Jinja template; choose another value"
            )


def _web_credentials(sample: Path, user: str, password: str) -> str:
    """The ``credentials-micado.yml`` text: the sample's settings with our web user.

    The file format of ansible-micado: ``authentication: {username, password}``
    and ``tls: {provision_method: self-signed | user-supplied, cert, key}``. User and
    password are plain single-quoted strings (see :func:`check_web_credentials`).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    data: dict = {}
    if sample.is_file():
        loaded = YAML().load(sample.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            data = loaded
    data.setdefault("tls", {"provision_method": "self-signed"})
    auth = data.get("authentication")
    if not isinstance(auth, dict):
        auth = data["authentication"] = {}
    auth["username"] = SingleQuotedScalarString(user)
    auth["password"] = SingleQuotedScalarString(password)
    return _dump_yaml(data)


_SECRET_KEY_WORDS = ("password", "secret", "token", "key", "credential")


def _cloud_secrets(path: Path, text: str) -> tuple[str, ...]:
    """The secret values of a cloud credentials file, to mask in the log.

    Every string under an ``auth_data`` whose key looks secret (password, secret,
    token, key, credential): ansible-micado copies the whole file into Kubernetes
    secrets, and a failing task may print its arguments.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        document = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise CredentialsError(f"the cloud credentials file {path} is not valid YAML", path=path) from exc
    found: list[str] = []

    def walk(node: object, secret: bool) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, secret or any(word in str(name).lower() for word in _SECRET_KEY_WORDS))
        elif isinstance(node, list):
            for item in node:
                walk(item, secret)
        elif secret and isinstance(node, str) and len(node) >= 4:
            found.append(node)

    resources = document.get("resource") if isinstance(document, dict) else None
    for resource in resources if isinstance(resources, list) else []:
        if isinstance(resource, dict):
            walk(resource.get("auth_data"), False)
    return tuple(found)


def _ansible_cfg(work: Path, inventory: Path, become: bool) -> str:
    """Our ``ansible.cfg``: every setting that matters, none taken from the user's files."""
    return "\n".join(
        [
            "# Written by micado-client for this master; ANSIBLE_CONFIG points here so",
            "# ~/.ansible.cfg and the playbooks' own ansible.cfg do not apply.",
            "[defaults]",
            f"inventory = {inventory}",
            "host_key_checking = True",
            "retry_files_enabled = False",
            "interpreter_python = auto_silent",
            "deprecation_warnings = False",
            "nocows = True",
            f"local_tmp = {work / '.ansible' / 'tmp'}",
            "",
            "[privilege_escalation]",
            f"become = {become}",
            "become_method = sudo",
            "become_user = root",
            "",
            "[ssh_connection]",
            # Reusing one connection per host makes a few hundred tasks affordable;
            # run_playbook closes the master connection when the play ends.
            "ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s",
            "pipelining = True",
            "",
        ]
    )


def prepare_workdir(
    master_id: str,
    tree: PlaybookTree,
    *,
    host: str,
    micado_user: str,
    micado_password: str,
    cloud_credentials: Path | None = None,
    ssh_user: str = "ubuntu",
    ssh_port: int = 22,
    ssh_key: Path | None = None,
    become: bool = True,
) -> WorkDir:
    """Make the working copy of the playbooks for one master.

    Any earlier working copy of the same master is replaced.

    Args:
        master_id: the master (its server id); names the folder and the log.
        tree: the playbooks, from :meth:`PlaybookSource.resolve`.
        host: the master's address.
        micado_user: the MiCADO web user to create.
        micado_password: its password (written only to a 0600 file).
        cloud_credentials: the user's ``credentials-cloud-api.yml``; default
            :func:`micado.config.paths.credentials_file`.
        ssh_user: the sudoer account on the master.
        ssh_port: the master's SSH port.
        ssh_key: the client's private key; default :func:`micado.config.paths.ssh_private_key`.
        become: run the play as root through sudo, as ansible-micado requires.

    Returns:
        The working copy.

    Raises:
        InvalidArgument: the master id, user or password is empty or malformed
            (see :func:`check_web_credentials`).
        CredentialsError: the cloud credentials file does not exist.
    """
    from micado.installer import ssh

    if not isinstance(master_id, str) or not _MASTER_ID_RE.match(master_id):
        raise InvalidArgument(f"master id {master_id!r} must be letters, digits, '.', '_' or '-'")
    check_web_credentials(micado_user, micado_password)
    cloud_file = Path(cloud_credentials) if cloud_credentials is not None else paths.credentials_file()
    if not cloud_file.is_file():
        raise CredentialsError(f"cloud credentials file {cloud_file} does not exist", path=cloud_file)
    cloud_text = cloud_file.read_text(encoding="utf-8")
    cloud_secrets = _cloud_secrets(cloud_file, cloud_text)  # also checks it is YAML, before writing
    key = Path(ssh_key) if ssh_key is not None else paths.ssh_private_key()

    work = paths.work_dir(master_id)
    paths.ensure_dir(work.parent)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(mode=0o700)
    copy = work / "ansible-micado"
    shutil.copytree(tree.root, copy, symlinks=False)
    (work / ".ansible").mkdir(mode=0o700)

    layout = tree.layout
    run_dir = copy / layout.run_dir
    credentials_dir = copy / layout.credentials_dir
    credentials_dir.mkdir(parents=True, exist_ok=True)

    cloud_copy = credentials_dir / "credentials-cloud-api.yml"
    _write_private(cloud_copy, cloud_text)
    web = credentials_dir / "credentials-micado.yml"
    _write_private(web, _web_credentials(copy / layout.web_credentials_sample, micado_user, micado_password))

    ssh_args = ssh.ssh_options(port=ssh_port, key=key, strict=True)
    host_vars = {
        "ansible_host": host,
        "ansible_port": ssh_port,
        "ansible_user": ssh_user,
        "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(key),
        # Ansible splits this with shlex and adds it to every ssh, scp and sftp call.
        "ansible_ssh_common_args": shlex.join(ssh_args),
    }
    inventory = run_dir / layout.inventory
    inventory.parent.mkdir(parents=True, exist_ok=True)
    _write_private(inventory, _dump_yaml({"all": {"hosts": {layout.host: host_vars}}}))

    config = work / "ansible.cfg"
    _write_private(config, _ansible_cfg(work, inventory, become))
    logger.info("prepared the MiCADO %s playbooks for master %s in %s", layout.name, master_id, work)
    return WorkDir(
        master_id=master_id,
        path=work,
        layout=layout,
        run_dir=run_dir,
        playbook=layout.playbook,
        inventory=inventory,
        config=config,
        web_credentials=web,
        cloud_credentials=cloud_copy,
        redact=(micado_password, *cloud_secrets),
    )


def install(
    source: PlaybookTree,
    *,
    master_id: str,
    host: str,
    micado_user: str,
    micado_password: str,
    key: Path,
    port: int = 22,
    user: str = "ubuntu",
    cloud_credentials: Path | None = None,
    become: bool = True,
    timeout: float = 3600.0,
    progress: ProgressCallback | bool | None = None,
) -> Path:
    """Deploy MiCADO on a master: :func:`prepare_workdir` then :func:`run_playbook`.

    The working copy stays in place afterwards (for a look after a failure); remove
    it with :func:`cleanup_workdir`.

    Args:
        source: the playbooks, from :func:`resolve_source`.
        master_id: the master (its server id).
        host: the master's address.
        micado_user: the MiCADO web user to create.
        micado_password: its password.
        key: the client's SSH private key.
        port: the master's SSH port.
        user: the sudoer account on the master.
        cloud_credentials: the cloud credentials file; default
            :func:`micado.config.paths.credentials_file`.
        become: run the play as root through sudo.
        timeout: seconds for the whole play.
        progress: receives ``("ansible", task name)`` events.

    Returns:
        The log file of the run.

    Raises:
        InvalidArgument: see :func:`prepare_workdir`.
        CredentialsError: the cloud credentials file does not exist.
        InstallError: the play failed; names the task and the log.
        MicadoTimeout: the play ran past ``timeout``.
    """
    work = prepare_workdir(
        master_id, source, host=host, micado_user=micado_user, micado_password=micado_password,
        cloud_credentials=cloud_credentials, ssh_user=user, ssh_port=port, ssh_key=key, become=become,
    )
    return run_playbook(work, timeout=timeout, progress=progress)


def cleanup_workdir(master_id: str) -> None:
    """Remove a master's working copy (it holds the web and cloud credentials).

    The log file is kept. Removing a working copy that does not exist is fine.

    Args:
        master_id: the master.

    Raises:
        InvalidArgument: the master id is malformed.
    """
    if not isinstance(master_id, str) or not _MASTER_ID_RE.match(master_id):
        raise InvalidArgument(f"master id {master_id!r} must be letters, digits, '.', '_' or '-'")
    work = paths.work_dir(master_id)
    if work.exists():
        shutil.rmtree(work)
        logger.info("removed the working copy of master %s", master_id)
