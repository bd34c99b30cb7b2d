"""Deploying MiCADO on a master VM with the ansible-micado playbooks.

Three steps, used in this order by the master model (or all at once by :func:`install`):

1. :func:`resolve_source` (:mod:`micado.installer.playbooks`) finds the playbooks:
   a release by version, or a local tarball, folder or URL; cached and unpacked safely.
2. :func:`prepare_workdir` makes the per-master working copy
   (:func:`micado.config.paths.work_dir`, mode 0700): the playbooks with the rewrites
   the installed ansible-core needs (:mod:`micado.installer.compat`), an inventory
   that reaches the master over SSH with strict host key checking against the
   client's own known_hosts (:func:`micado.installer.ssh.ssh_options`), the cloud
   credentials where the release reads them, an extra-vars file with the web login
   (the release's ``security`` mapping) and the settings (secret files mode 0600,
   removed when the play ends), and an ``ansible.cfg`` of our own. Files encrypted
   with ``ansible-vault`` are checked decrypted and copied still encrypted.
3. :func:`run_playbook` (:mod:`micado.installer.runner`) runs ``ansible-playbook``
   from the library's own environment, streams its output to the master's log file,
   reports task names to the progress callback, and turns a failure or a timeout
   into a typed error.

:func:`cleanup_workdir` removes the working copy (it holds credentials) afterwards.
This module knows nothing about clouds.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado.config import paths
from micado.config.files import write_private
from micado.exceptions import CredentialsError, InvalidArgument
from micado.installer.playbooks import (
    DEFAULT_MICADO_VERSION,
    LAYOUTS,
    MANAGED_VARIABLES,
    Layout,
    PlaybookSource,
    PlaybookTree,
    check_tree,
    detect_layout,
    file_reads,
    resolve_source,
)
from micado.installer.runner import WorkDir, run_playbook
from micado.progress import ProgressCallback

if TYPE_CHECKING:
    from micado.config.tls import TlsPair

__all__ = [
    "DEFAULT_MICADO_VERSION",
    "Layout",
    "LAYOUTS",
    "PlaybookTree",
    "PlaybookSource",
    "WorkDir",
    "InventoryHost",
    "detect_layout",
    "resolve_source",
    "check_web_credentials",
    "check_settings",
    "check_files",
    "prepare_workdir",
    "run_playbook",
    "install",
    "cleanup_workdir",
]

logger = logging.getLogger(__name__)

_MASTER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Data(str):
    """Text Ansible must take as data, never as a template: written with YAML's ``!unsafe`` tag."""


def as_data(value: Any) -> Any:
    """``value`` with every non-empty string in it (mapping keys too) marked as data for Ansible.

    Ansible evaluates ``{{ }}``, ``{% %}`` and ``{# #}`` in the variables it reads from
    YAML and JSON files, and a ``lookup('pipe', ...)`` there runs on this machine (the
    controller). A string tagged ``!unsafe`` is data to it: ansible-core 2.19 leaves it
    untrusted (never templated, refused where a template is expected), and so does every
    value the play derives from it. An empty string holds no template and stays plain
    (Ansible would read ``!unsafe ""`` as null). Numbers, booleans and nulls stay typed.
    """
    if isinstance(value, str):
        return _Data(value) if value else value
    if isinstance(value, Mapping):
        return {as_data(key): as_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_data(item) for item in value]
    return value


def _variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Ansible variables for a YAML file: the names as they are, every value :func:`as_data`."""
    return {name: as_data(value) for name, value in variables.items()}


def _dump_yaml(data: object) -> str:
    """YAML for Ansible: block style, one line a value, :class:`_Data` as ``!unsafe "..."``."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 1 << 30  # never folded: a long value stays on one line
    yaml.representer.add_representer(
        _Data, lambda representer, text: representer.represent_scalar("!unsafe", str(text), style='"'))
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


#: Jinja's delimiters: where a value holds one, Ansible would evaluate it unless told it is data.
_JINJA_MARKERS = ("{{", "{%", "{#")


def _templates_in(document: object, where: str = "") -> list[str]:
    """Where (``a.b[0]``) a key or string of ``document`` holds a Jinja delimiter."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            place = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and any(marker in key for marker in _JINJA_MARKERS):
                found.append(place)
            found += _templates_in(value, place)
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found += _templates_in(item, f"{where}[{index}]")
    elif isinstance(document, str) and any(marker in document for marker in _JINJA_MARKERS):
        found.append(where or "(the whole file)")
    return found


def check_web_credentials(micado_user: str, micado_password: str) -> None:
    """Check the MiCADO web user and password can be handed to the playbooks.

    They reach the release as data inside its ``security`` variable (see
    :func:`as_data`): any text is taken as it is, ``{{ }}`` included.

    Args:
        micado_user: the web user.
        micado_password: its password.

    Raises:
        InvalidArgument: a value is empty or not a string (the secret itself is never quoted).
    """
    for name, value in (("micado_user", micado_user), ("micado_password", micado_password)):
        if not isinstance(value, str) or not value:
            raise InvalidArgument(f"{name} must be a non-empty string")


#: What to give instead of a variable micado-client sets itself (a ``--set`` of it is refused).
_MANAGED_HINTS = {
    "cloud_cred_path": "is set by micado-client to the cloud credentials file it hands over (the MiCADO dir's "
                       "credentials-cloud-api.yml, or update_auth(credentials_file=...))",
    "gce_cred_path": "is set by micado-client: give the service-account JSON as gce_credentials= "
                     "(--gce-credentials FILE)",
    "registry_cred_path": "is set by micado-client: give the file as registry_credentials= (--registry-credentials)",
    "docker_cred_path": "is set by micado-client: give the file as registry_credentials= (--registry-credentials)",
    "micado_cred_path": "is set by micado-client: give micado_user=, micado_password= (MICADO_PASSWORD) and "
                        "tls_cert=/tls_key= (--tls-cert, --tls-key) instead",
    "security": "is set by micado-client from micado_user, micado_password and tls_cert/tls_key",
}


def check_settings(layout: Layout, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the user's settings against the variables the release itself defines.

    Args:
        layout: the release's layout (its variables).
        settings: variable name -> value, e.g. ``{"enable_occopus": True}``; values
            must be plain YAML data (text, numbers, booleans, lists, mappings).

    Returns:
        A copy of the settings.

    Raises:
        InvalidArgument: a name the release does not define (the message lists those it
            does), one the installer sets itself, or a value that is not plain data.
    """
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise InvalidArgument(f"settings must be a mapping of variable names to values, not {type(settings).__name__}")
    known = layout.settings
    checked: dict[str, Any] = {}
    for name, value in settings.items():
        if not isinstance(name, str) or name not in known:
            why = (_MANAGED_HINTS.get(name) if isinstance(name, str) else None) or (
                "is set by micado-client itself" if isinstance(name, str) and name in MANAGED_VARIABLES
                else f"is not a setting of these playbooks (MiCADO {layout.name})")
            raise InvalidArgument(f"settings: {name!r} {why}; the release defines: {', '.join(known)}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidArgument(f"settings: {name!r} must be plain data (text, number, boolean, list, "
                                  f"mapping), not {type(value).__name__}") from None
        checked[name] = value
    return checked


_SECRET_KEY_WORDS = ("password", "pwd", "secret", "token", "key", "credential")


def _looks_secret(name: object) -> bool:
    return any(word in str(name).lower() for word in _SECRET_KEY_WORDS)


def _secret_values(document: object, secret: bool = False) -> list[str]:
    """Every string under a key that looks secret (password, secret, token, key...), to mask in the log.

    ansible-micado copies credentials into Kubernetes secrets and the registry
    configuration, and a failing task may print its arguments.
    """
    found: list[str] = []
    if isinstance(document, dict):
        for name, value in document.items():
            found += _secret_values(value, secret or _looks_secret(name))
    elif isinstance(document, list):
        for item in document:
            found += _secret_values(item, secret)
    elif secret and isinstance(document, str) and len(document) >= 4:
        found.append(document)
    return found


def _parse_credentials(path: Path, text: str) -> object:
    """The YAML document of a credentials file (checked before anything is written)."""
    from micado.config.bounded_yaml import YamlSyntaxError, safe_load

    try:
        return safe_load(text)
    except (YamlSyntaxError, RecursionError, ValueError) as exc:
        raise CredentialsError(f"the credentials file {path} is not valid YAML: {exc}", path=path) from None


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


def web_security(micado_user: str, micado_password: str, tls: TlsPair | None = None) -> dict[str, Any]:
    """The release's ``security`` variable: the web login and the TLS choice, as a mapping.

    MiCADO 0.11/0.12 set ``security`` from ``lookup("file", micado_cred_path)``, which
    gives the file's *text*: its templates then fall back to ``admin``/``admin``. Passed
    as an extra variable (which wins over the release's own), the mapping reaches every
    release the same way. The TLS choice is ``self-signed``, or with ``tls`` the
    releases' ``user-supplied`` with the certificate and key as PEM text (their proxy
    writes them to ``ssl.pem`` and ``ssl.key`` on the master).
    """
    return {
        "authentication": {"username": micado_user, "password": micado_password},
        "tls": tls.security() if tls is not None else {"provision_method": "self-signed"},
    }


@dataclass(frozen=True)
class InventoryHost:
    """A host the play reaches besides the master: an agent of the release's ``agents`` group.

    Attributes:
        name: its inventory name (the release names the node after it).
        host: its address.
        user: the sudoer account on it.
        key: the private key authorised for ``user``.
        port: its SSH port.
    """

    name: str
    host: str
    user: str
    key: Path
    port: int = 22


def prepare_workdir(
    master_id: str,
    tree: PlaybookTree,
    *,
    host: str,
    micado_user: str,
    micado_password: str,
    cloud_credentials: Path | None = None,
    registry_credentials: Path | None = None,
    settings: Mapping[str, Any] | None = None,
    ssh_user: str = "ubuntu",
    ssh_port: int = 22,
    ssh_key: Path | None = None,
    become: bool = True,
    playbook: str | None = None,
    agents: tuple[InventoryHost, ...] = (),
    needs_cloud_credentials: bool = True,
    vault_password: str | None = None, gce_credentials: Path | None = None, tls: TlsPair | None = None,
) -> WorkDir:
    """Make the working copy of the playbooks for one master.

    The copy gets the rewrites the installed ansible-core needs (``tree.plan``, logged
    one by one), the cloud credentials (and the registry credentials, if given) where
    the release reads them, an inventory and an ``ansible.cfg`` of our own, and an
    extra-vars file with the web login (the release's ``security`` mapping) and the
    settings. Files holding secrets are mode 0600 and are removed by
    :func:`run_playbook` when the play ends. Any earlier working copy of the same
    master is replaced.

    Args:
        master_id: the master (its server id); names the folder and the log.
        tree: the playbooks, from :meth:`PlaybookSource.resolve`.
        host: the master's address.
        micado_user: the MiCADO web user to create.
        micado_password: its password.
        cloud_credentials: the user's ``credentials-cloud-api.yml``; default
            :func:`micado.config.paths.credentials_file`. It may lie in the working
            copy (:func:`micado.config.paths.derived_credentials_file`): every input
            is read before the copy is replaced.
        registry_credentials: a container-registry credentials file in the release's
            format (``credentials-registries.yml``; 0.9/0.10:
            ``credentials-docker-registry.yml``), or ``None``.
        settings: the release's variables to set (see :func:`check_settings`).
        ssh_user: the sudoer account on the master.
        ssh_port: the master's SSH port.
        ssh_key: the client's private key; default :func:`micado.config.paths.ssh_private_key`.
        become: run the play as root through sudo, as ansible-micado requires.
        playbook: the playbook to run, relative to the release's run folder; default
            the master playbook (another one, e.g. ``agent.yml``, for a day-2 play).
        agents: hosts of the inventory's ``agents`` group (the release's "Join agents").
        needs_cloud_credentials: ``False`` for a play that reads no cloud credentials
            (``agent.yml``): none are read or written.
        vault_password: the password of files encrypted with ``ansible-vault``: copied
            still encrypted, the password goes through a pipe (:func:`run_playbook`).
        gce_credentials: a Google service-account key (JSON), copied 0600 where ``gce_cred_path`` says.
        tls: the user's certificate and key (:func:`~micado.config.tls.read_tls_pair`).

    Returns:
        The working copy.

    Raises:
        InvalidArgument: the master id, user, password or a setting is empty or
            malformed, or the release reads no registry (GCE) credentials but some were given.
        CredentialsError: a credentials file does not exist or is no YAML, or is vaulted
            and the vault password is missing or wrong (the file is named).
    """
    _check_master_id(master_id)
    if playbook is not None and not (tree.run_dir / playbook).is_file():
        raise InvalidArgument(f"these playbooks (MiCADO {tree.layout.name}) have no {playbook}")
    inputs = _read_inputs(
        tree, micado_user=micado_user, micado_password=micado_password,
        cloud_credentials=cloud_credentials if needs_cloud_credentials else None,
        registry_credentials=registry_credentials, settings=settings, needs_cloud=needs_cloud_credentials,
        vault_password=vault_password, gce_credentials=gce_credentials, tls=tls,
    )
    master = InventoryHost(tree.layout.host, host, ssh_user,
                           Path(ssh_key) if ssh_key is not None else paths.ssh_private_key(), ssh_port)
    return _write_workdir(master_id, tree, inputs, master=master, agents=agents, become=become,
                          playbook=playbook or tree.layout.playbook)


def _check_master_id(master_id: str) -> None:
    """Refuse a master id that cannot name a folder and a log file."""
    if not isinstance(master_id, str) or not _MASTER_ID_RE.match(master_id):
        raise InvalidArgument(f"master id {master_id!r} must be letters, digits, '.', '_' or '-'")


@dataclass(frozen=True)
class _Inputs:
    """What a working copy is made of, read and checked before anything is written.

    Attributes:
        cloud_text: the cloud credentials as the release gets them (``None``: the play reads none).
        registry_text: the registry credentials as the release gets them, or ``None``.
        gce_text: the GCE service-account key as the release gets it, or ``None``.
        extra_vars: the settings and the release's ``security`` mapping.
        redact: secrets to mask in the log.
        vault_password: the password ``ansible-playbook`` needs for the vaulted files
            copied, or ``None`` when none is vaulted.
    """

    cloud_text: str | None
    registry_text: str | None
    gce_text: str | None
    extra_vars: dict[str, Any]
    redact: tuple[str, ...] = field(repr=False)
    vault_password: str | None = field(default=None, repr=False)


def _read_inputs(
    tree: PlaybookTree,
    *,
    micado_user: str,
    micado_password: str,
    cloud_credentials: Path | None,
    registry_credentials: Path | None,
    settings: Mapping[str, Any] | None,
    needs_cloud: bool = True,
    vault_password: str | None = None,
    gce_credentials: Path | None = None,
    tls: TlsPair | None = None,
) -> _Inputs:
    """Check the arguments of :func:`prepare_workdir` and read the files it copies (see there).

    Every input is read here, before the earlier working copy (where the cloud
    credentials may lie) is replaced.
    """
    from micado.config.credentials import vault

    check_web_credentials(micado_user, micado_password)
    password = vault.vault_password(vault_password)
    vaulted = False
    layout = tree.layout
    extra_vars = {**check_settings(layout, settings), "security": web_security(micado_user, micado_password, tls)}
    cloud_text: str | None = None
    cloud_secrets: list[str] = []
    if needs_cloud:
        cloud_file = Path(cloud_credentials) if cloud_credentials is not None else paths.credentials_file()
        cloud_text, cloud_secrets = _credentials_for(tree, "cloud_cred_path", cloud_file, "cloud credentials",
                                                     password)
        vaulted = vault.is_vaulted(cloud_text)
    secrets_to_mask = [micado_password, *cloud_secrets]
    if tls is not None:  # the key, and each line of it (a task may print it either way)
        secrets_to_mask += [tls.key_pem.strip(), *(line for line in tls.key_pem.splitlines() if "-----" not in line)]
    secrets_to_mask += _secret_values({name: value for name, value in extra_vars.items() if name != "security"})
    registry_text = None
    if registry_credentials is not None:
        if layout.registry_credentials is None:
            raise InvalidArgument(f"registry_credentials: these playbooks (MiCADO {layout.name}) read no "
                                  "container-registry credentials")
        registry_text, registry_secrets = _credentials_for(
            tree, layout.registry_variable or "", Path(registry_credentials), "registry credentials", password)
        secrets_to_mask += registry_secrets
        vaulted = vaulted or vault.is_vaulted(registry_text)
    gce_text = None
    if gce_credentials is not None:
        gce_text, gce_secrets = _gce_text(tree, Path(gce_credentials), password)
        secrets_to_mask += gce_secrets
        vaulted = vaulted or vault.is_vaulted(gce_text)
        extra_vars["gce_cred_path"] = layout.gce_credentials  # where _write_workdir puts it
    if vaulted and password is not None:
        secrets_to_mask.append(password)
    return _Inputs(cloud_text=cloud_text, registry_text=registry_text, gce_text=gce_text, extra_vars=extra_vars,
                   redact=tuple(secret for secret in secrets_to_mask if secret),
                   vault_password=password if vaulted else None)


def check_files(
    tree: PlaybookTree,
    *,
    cloud_credentials: Path | None = None,
    registry_credentials: Path | None = None,
    gce_credentials: Path | None = None,
    vault_password: str | None = None,
) -> None:
    """Read and check the files :func:`prepare_workdir` will copy, before anything is made.

    The same checks as :func:`prepare_workdir` (a vaulted file decrypts with the password,
    YAML, values the release would evaluate, a GCE key's shape, a file the release
    does not read), without writing anything.

    Raises:
        InvalidArgument, CredentialsError: as :func:`prepare_workdir`; the file is named.
    """
    from micado.config.credentials import vault

    password = vault.vault_password(vault_password)
    if cloud_credentials is not None:
        _credentials_for(tree, "cloud_cred_path", Path(cloud_credentials), "cloud credentials", password)
    layout = tree.layout
    if registry_credentials is not None:
        if layout.registry_credentials is None:
            raise InvalidArgument(f"registry_credentials: these playbooks (MiCADO {layout.name}) read no "
                                  "container-registry credentials")
        _credentials_for(tree, layout.registry_variable or "", Path(registry_credentials), "registry credentials",
                         password)
    if gce_credentials is not None:
        _gce_text(tree, Path(gce_credentials), password)


def _gce_text(tree: PlaybookTree, path: Path, password: str | None) -> tuple[str, list[str]]:
    """The GCE service-account key as the release gets it, checked, and its secrets."""
    from micado.config.credentials.gce import check_gce_credentials

    if tree.layout.gce_credentials is None:
        raise InvalidArgument(f"gce_credentials: these playbooks (MiCADO {tree.layout.name}) read no GCE "
                              "credentials (they have no gce_cred_path)")
    check_gce_credentials(path, password)
    return _credentials_for(tree, "gce_cred_path", path, "GCE credentials", password)


def _credentials_for(tree: PlaybookTree, variable: str, path: Path, what: str,
                     vault_password: str | None = None) -> tuple[str, list[str]]:
    """A credentials file's text as the release gets it (see :func:`_credentials_copy`), and its secrets.

    A file encrypted with ``ansible-vault`` is checked decrypted and handed over still
    encrypted (re-encrypted with the same password where the copy had to be rewritten):
    the release's ``include_vars`` and ``copy`` decrypt it with the password of the play.
    """
    from micado.config.credentials import vault

    text = _read_credentials(path, what)
    plain = vault.decrypt(text, path, vault_password, f"{what} file")
    document = _parse_credentials(path, plain)
    copy = _credentials_copy(tree, variable, path, plain, document)
    if vault.is_vaulted(text):
        password = vault.vault_password(vault_password)
        assert password is not None  # decrypt() succeeded with it
        copy = text if copy == plain else vault.encrypt(copy, password)
    return copy, _secret_values(document)


def _write_workdir(master_id: str, tree: PlaybookTree, inputs: _Inputs, *, master: InventoryHost,
                   agents: tuple[InventoryHost, ...], become: bool, playbook: str) -> WorkDir:
    """Replace the master's working copy with a new one: the playbooks, rewritten, and our files."""
    layout = tree.layout
    work = paths.work_dir(master_id)
    paths.ensure_dir(work.parent)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(mode=0o700)
    copy = work / "ansible-micado"
    shutil.copytree(tree.root, copy, symlinks=False)
    (work / ".ansible").mkdir(mode=0o700)
    run_dir = copy / layout.run_dir
    plan = tree.plan if tree.plan.ansible_core is not None else check_tree(tree).plan
    plan.apply(run_dir)

    cloud_copy = run_dir / layout.cloud_credentials
    secret_files = [cloud_copy]
    if inputs.cloud_text is not None:
        write_private(cloud_copy, inputs.cloud_text)
    if inputs.registry_text is not None and layout.registry_credentials is not None:
        registry_copy = run_dir / layout.registry_credentials
        write_private(registry_copy, inputs.registry_text)
        secret_files.append(registry_copy)
    if inputs.gce_text is not None and layout.gce_credentials is not None:
        gce_copy = run_dir / layout.gce_credentials
        gce_copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(gce_copy, inputs.gce_text)
        secret_files.append(gce_copy)
    extra_file = work / "extra-vars.yml"
    write_private(extra_file, _dump_yaml(_variables(inputs.extra_vars)))
    secret_files.append(extra_file)

    inventory = work / "inventory.yml"
    write_private(inventory, _inventory(master, agents))
    config = work / "ansible.cfg"
    write_private(config, _ansible_cfg(work, inventory, become))
    logger.info("prepared the MiCADO %s playbooks for master %s in %s (%d rewrites for ansible-core)",
                layout.name, master_id, work, len(plan.rewrites))
    return WorkDir(
        master_id=master_id,
        path=work,
        layout=layout,
        run_dir=run_dir,
        playbook=playbook,
        inventory=inventory,
        config=config,
        extra_vars=extra_file,
        cloud_credentials=cloud_copy,
        secret_files=tuple(secret_files),
        redact=inputs.redact,
        vault_password=inputs.vault_password,
    )


def _inventory(master: InventoryHost, agents: tuple[InventoryHost, ...] = ()) -> str:
    """The inventory: the master host, and the ``agents`` group if any, each reached over SSH with
    our options (:func:`ssh.ssh_options`).

    YAML, every string tagged as data: an INI inventory's values would be templates to Ansible.
    """
    document: dict[str, Any] = {"all": {"hosts": {master.name: _host_vars(master)}}}
    if agents:
        document["all"]["children"] = {"agents": {"hosts": {agent.name: _host_vars(agent) for agent in agents}}}
    return _dump_yaml(document)


def _host_vars(host: InventoryHost) -> dict[str, Any]:
    from micado.installer import ssh

    ssh_args = ssh.ssh_options(port=host.port, key=host.key, strict=True)
    return _variables({
        "ansible_host": host.host,
        "ansible_port": host.port,
        "ansible_user": host.user,
        "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(host.key),
        # Ansible splits this with shlex and adds it to every ssh, scp and sftp call.
        "ansible_ssh_common_args": shlex.join(ssh_args),
    })


def _credentials_copy(tree: PlaybookTree, variable: str, path: Path, text: str, document: object) -> str:
    """The text of a credentials file as the release gets it: its content must reach the play as data.

    A file without a Jinja delimiter goes as it is. One with them (a password holding
    ``{{``, ``{%`` or ``{#``) goes as it is where the release only moves its bytes
    (``copy``: k3s reads ``registries.yaml`` itself), re-written with every string tagged
    ``!unsafe`` where it only reads it with ``include_vars`` (which would evaluate them
    on this machine), and is refused where it does both or anything else with it.

    Raises:
        InvalidArgument: the release would evaluate a value of the file; names the file and key.
    """
    places = _templates_in(document)
    if not places:
        return text
    reads = file_reads(tree.run_dir, variable) - {"checked"}
    if reads <= {"verbatim"}:
        return text
    if reads == {"vars"}:
        return _dump_yaml(as_data(document))
    uses = ", ".join(sorted(read.removeprefix("other:") for read in reads))
    raise InvalidArgument(
        f"{path}: {', '.join(places[:5])} holds '{{{{', '{{%' or '{{#', which these playbooks "
        f"(MiCADO {tree.layout.name}, {variable}: {uses}) would evaluate as a Jinja template; "
        "choose a value without them"
    )


def _read_credentials(path: Path, what: str) -> str:
    if not path.is_file():
        raise CredentialsError(f"the {what} file {path} does not exist", path=path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"the {what} file {path} cannot be read: {exc}", path=path) from exc


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
    registry_credentials: Path | None = None,
    settings: Mapping[str, Any] | None = None,
    become: bool = True,
    timeout: float = 3600.0,
    progress: ProgressCallback | bool | None = None,
    extra_args: tuple[str, ...] = (),
    control_dir: Path | None = None,
    vault_password: str | None = None,
    gce_credentials: Path | None = None,
    tls: TlsPair | None = None,
) -> Path:
    """Deploy MiCADO on a master: :func:`prepare_workdir` then :func:`run_playbook`.

    The working copy stays in place afterwards (without its secret files, for a look
    after a failure); remove it with :func:`cleanup_workdir`.

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
        registry_credentials: see :func:`prepare_workdir`.
        settings: see :func:`check_settings`.
        become: run the play as root through sudo.
        timeout: seconds for the whole play.
        progress: receives ``("ansible", task name)`` events.
        extra_args: more ``ansible-playbook`` arguments (tests use ``("--check",)``).
        control_dir: a shared SSH connection to reuse (see :func:`run_playbook`).
        vault_password, gce_credentials, tls: see :func:`prepare_workdir`.

    Returns:
        The log file of the run.

    Raises:
        InvalidArgument: see :func:`prepare_workdir`.
        CredentialsError: a credentials file does not exist.
        InstallError: the play failed; names the task and the log.
        MicadoTimeout: the play ran past ``timeout``.
    """
    work = prepare_workdir(
        master_id, source, host=host, micado_user=micado_user, micado_password=micado_password,
        cloud_credentials=cloud_credentials, registry_credentials=registry_credentials, settings=settings,
        ssh_user=user, ssh_port=port, ssh_key=key, become=become, vault_password=vault_password,
        gce_credentials=gce_credentials, tls=tls,
    )
    return run_playbook(work, timeout=timeout, progress=progress, extra_args=extra_args, control_dir=control_dir)


def cleanup_workdir(master_id: str) -> None:
    """Remove a master's working copy (it holds the web and cloud credentials).

    The log file is kept. Removing a working copy that does not exist is fine.

    Args:
        master_id: the master.

    Raises:
        InvalidArgument: the master id is malformed.
    """
    _check_master_id(master_id)
    work = paths.work_dir(master_id)
    if work.exists():
        shutil.rmtree(work)
        logger.info("removed the working copy of master %s", master_id)
