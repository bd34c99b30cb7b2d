"""Life after create: what ``client.master`` does to a running master (see :class:`~micado.master.facade.MicadoMaster`).

Each function takes the master's record (secrets decrypted) and does one thing:
:func:`update_auth`, :func:`reconfigure`, :func:`edge_files` and :func:`add_agent` run
the master's own release again (:class:`~micado.master.plays.MasterPlay`);
:func:`fetch_kubeconfig` and :func:`ssh_argv` reach it over SSH with the recorded
key, user and host key (never ``~/.ssh``).
"""

from __future__ import annotations

import logging
import re
import shlex
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from micado.config import paths
from micado.config.files import write_private
from micado.exceptions import CredentialsError, InstallError, InvalidArgument, MicadoException
from micado.master.plays import MasterPlay, master_credentials_file, require_tag, ssh_key_of
from micado.master.release import GRAFANA_SETTING, recorded_release, recorded_settings, split_settings
from micado.progress import ProgressCallback

if TYPE_CHECKING:
    from micado.config.store import MasterRecord, MasterStore
    from micado.config.tls import TlsPair
    from micado.launcher.base import ConfiguredLogin

__all__ = ["update_auth", "reconfigure", "edge_files", "add_agent", "fetch_kubeconfig", "Kubeconfig",
           "ssh_argv", "AGENT_PLAYBOOK", "KUBE_API_PORT", "EDGE_FILES"]

log = logging.getLogger(__name__)

#: The release's playbook of edge nodes and agents (ansible-micado 0.12.6 and later).
AGENT_PLAYBOOK = "agent.yml"
#: What its ``edge-files`` tag writes, and the modes they get in the user's folder.
EDGE_FILES = {"connect_edge.sh": 0o700, "registries.yaml": 0o600}
#: The port of the Kubernetes API on a master (k3s and kubeadm).
KUBE_API_PORT = 6443
#: Where the cluster's admin kubeconfig is on a master: k3s (0.12), then kubeadm (0.9-0.11).
KUBECONFIG_PATHS = ("etc/rancher/k3s/k3s.yaml", "etc/kubernetes/admin.conf")
_MAX_KUBECONFIG = 1 << 20
_TOKEN_RE = re.compile(r"--token\s+\"?([^\"\s]+)")
_NEEDS_AGENT_RELEASE = "ansible-micado v0.12.6 or later (its agent.yml)"


@dataclass(frozen=True)
class PlayOptions:
    """What every day-2 play takes besides its own arguments.

    Attributes:
        report: the progress callback.
        timeout: seconds for the play.
        extra_args: more ``ansible-playbook`` arguments (a test seam: ``--check``).
    """

    report: ProgressCallback
    timeout: float
    extra_args: tuple[str, ...] = ()


def _existing_file(value: str | Path | None, name: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise InvalidArgument(f"{name} must be the path of a file, not {value!r}")
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise CredentialsError(f"{name}: {path} does not exist or is not a file", path=path)
    return path


def update_auth(record: MasterRecord, options: PlayOptions, *, login: ConfiguredLogin | None,
                credential_type: str | None, credentials_file: str | Path | None = None,
                registry_credentials: str | Path | None = None, vault_password: str | None = None,
                gce_credentials: str | Path | None = None) -> Path:
    """Run the release's ``update-auth`` tag: the master takes the cloud (and registry, GCE) credentials anew.

    The credentials are checked (for the master's cloud: ``credential_type``; a vaulted
    file with ``vault_password``) and the release's tag is looked for before anything
    runs. Without ``gce_credentials``, the GCE key the master was made with is handed
    over again if its file is still there.

    Returns:
        The play's log file.
    """
    from micado.config.credentials import load_credentials
    from micado.installer import ansible

    given = _existing_file(credentials_file, "credentials_file")
    registry = _existing_file(registry_credentials, "registry_credentials")
    gce = _existing_file(gce_credentials, "gce_credentials") or _recorded_gce(record)
    if credential_type is not None and (given is not None or login is None):
        # a wrong file fails here, naming what is wrong
        load_credentials(credential_type, given, vault_password=vault_password)
    tree = recorded_release(record, progress=options.report)
    require_tag(tree, "update-auth", "update_auth")
    ansible.check_files(tree, registry_credentials=registry, gce_credentials=gce, vault_password=vault_password)
    with (MasterPlay(record, "update-auth", options.report, options.extra_args) as play,
          master_credentials_file(login, play.work_id, given) as cloud_credentials):
        work = play.run(tree, settings=recorded_settings(record), timeout=options.timeout, tags=("update-auth",),
                        cloud_credentials=cloud_credentials, registry_credentials=registry,
                        vault_password=vault_password, gce_credentials=gce)
    log.info("master %s: credentials updated", record.id)
    return paths.log_file(work.master_id)


def _recorded_gce(record: MasterRecord) -> Path | None:
    """The GCE key file the master was made with, if it is still there (else ``None``, logged)."""
    recorded = record.extra.get("gce_credentials")
    if not isinstance(recorded, str):
        return None
    if not Path(recorded).is_file():
        log.warning("master %s: its GCE credentials file %s is gone; the play hands over none", record.id, recorded)
        return None
    return Path(recorded)


def recorded_tls(record: MasterRecord) -> TlsPair | None:
    """The user's TLS certificate and key the master was made with (read again), or ``None`` for a self-signed one.

    Raises:
        CredentialsError: the recorded files are gone or changed into another pair; names them.
    """
    from micado.config.tls import read_tls_pair

    tls = record.extra.get("tls")
    if not isinstance(tls, dict) or tls.get("provision_method") != "user-supplied":
        return None
    try:
        return read_tls_pair(str(tls.get("cert")), str(tls.get("key")))
    except CredentialsError as exc:
        raise CredentialsError(f"master {record.id} serves your own TLS certificate ({tls.get('cert')}, key "
                               f"{tls.get('key')}), which a full run of its release hands over again: {exc}",
                               path=exc.path) from None


def reconfigure(record: MasterRecord, store: MasterStore, options: PlayOptions, *, settings: dict[str, Any],
                login: ConfiguredLogin | None, vault_password: str | None = None) -> MasterRecord:
    """Run the release again with ``settings`` changed (``None`` puts a setting back to the release's default).

    The settings are checked against the release's variables before anything runs; on
    success they are recorded (and the master's certificate fetched again), on failure
    the record stays as it was.

    Returns:
        The updated record.
    """
    from micado.installer import ansible, ssh
    from micado.master.lifecycle import fetch_certificate

    if not isinstance(settings, dict) or not settings:
        raise InvalidArgument("settings must be a non-empty mapping of the release's variables to new values")
    tree = recorded_release(record, progress=options.report)
    cleared = [name for name, value in settings.items() if value is None]
    changed = ansible.check_settings(tree.layout, {k: v for k, v in settings.items() if v is not None})
    ansible.check_settings(tree.layout, dict.fromkeys(cleared, ""))  # names only
    merged = {name: value for name, value in {**recorded_settings(record), **changed}.items() if name not in cleared}
    tls = recorded_tls(record)  # the user's certificate: handed over again, or the play would fall back
    gce = _recorded_gce(record)
    with (MasterPlay(record, "reconfigure", options.report, options.extra_args) as play,
          master_credentials_file(login, play.work_id) as cloud_credentials):
        play.run(tree, settings=merged, timeout=options.timeout, cloud_credentials=cloud_credentials,
                 vault_password=vault_password, gce_credentials=gce, tls=tls)
    if record.cert_path and tls is None and "--check" not in options.extra_args:
        fetch_certificate(ssh, record.ip, int(record.extra.get("ssh_port", 22)),
                          str(record.extra.get("ssh_user", "ubuntu")), ssh_key_of(record),
                          str(record.extra.get("remote_cert_path") or "/var/lib/micado/zorp/config/ssl.pem"),
                          record.id)
    public, secret = split_settings(merged)
    record.extra["settings"], record.secret_settings = public, secret
    if GRAFANA_SETTING in merged or GRAFANA_SETTING in cleared:
        record.grafana_password = merged.get(GRAFANA_SETTING) if isinstance(merged.get(GRAFANA_SETTING), str) else None
    record.extra["reconfigured"] = datetime.now(UTC).isoformat(timespec="seconds")
    return store.update(record)


def _require_agent_play(record: MasterRecord, options: PlayOptions, tag: str | None = None) -> Any:
    tree = recorded_release(record, progress=options.report)
    if not (tree.run_dir / AGENT_PLAYBOOK).is_file():
        raise MicadoException(f"master {record.id}: its release (ansible-micado, layout {tree.layout.name}) has no "
                              f"{AGENT_PLAYBOOK}; edge nodes and agents need {_NEEDS_AGENT_RELEASE}")
    if tag is not None:
        require_tag(tree, tag, f"edge files ({_NEEDS_AGENT_RELEASE})", AGENT_PLAYBOOK)
    return tree


def edge_files(record: MasterRecord, dest: str | Path, options: PlayOptions) -> dict[str, Path]:
    """Run ``agent.yml --tags edge-files`` and put what it writes into ``dest``.

    ``dest`` is made 0700 if missing; ``connect_edge.sh`` (which holds the cluster's join
    token) is written 0700, ``registries.yaml`` 0600. The token is masked in the play's log.

    Returns:
        File name to path, for the files the release wrote.
    """
    if not isinstance(dest, (str, Path)) or not str(dest).strip():
        raise InvalidArgument(f"dest must be a folder path, not {dest!r}")
    target = Path(dest).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise InvalidArgument(f"dest {target} exists and is not a folder")
    tree = _require_agent_play(record, options, "edge-files")
    with MasterPlay(record, "edge-files", options.report, options.extra_args) as play:
        work = play.run(tree, settings=recorded_settings(record), timeout=options.timeout, playbook=AGENT_PLAYBOOK,
                        tags=("edge-files",), needs_cloud_credentials=False)
        written = (work.run_dir / "../../..").resolve()  # where the release writes them: beside its top folder
        found = {name: written / name for name in EDGE_FILES if (written / name).is_file()}
        if "connect_edge.sh" not in found and "--check" not in options.extra_args:
            raise InstallError(f"the edge-files play wrote no connect_edge.sh (log: {paths.log_file(work.master_id)})")
        contents = {name: path.read_bytes() for name, path in found.items()}
    _mask_token(contents.get("connect_edge.sh", b""), paths.log_file(work.master_id))
    try:
        paths.ensure_dir(target) if not target.exists() else None
        for name, data in contents.items():
            write_private(target / name, data, mode=EDGE_FILES[name])
    except OSError as exc:
        raise InvalidArgument(f"dest {target}: cannot write the edge files there: {exc.strerror or exc}") from None
    return {name: target / name for name in contents}


def _mask_token(script: bytes, log_file: Path) -> None:
    """Mask the join token in the play's log, should the release have printed it."""
    found = _TOKEN_RE.search(script.decode("utf-8", "replace"))
    if not found or not log_file.is_file():
        return
    text = log_file.read_text(encoding="utf-8", errors="replace")
    if found.group(1) in text:
        write_private(log_file, text.replace(found.group(1), "********"))


def add_agent(record: MasterRecord, store: MasterStore, options: PlayOptions, *, host: str, ssh_user: str,
              ssh_key: str | Path, ssh_port: int = 22, name: str | None = None,
              ssh_timeout: float = 120.0) -> MasterRecord:
    """Join ``host`` to the master's cluster as an agent (the release's "Join agents" play).

    Its host key is learnt on the first login (and kept in micado-client's own known_hosts).

    Returns:
        The updated record (``extra["agents"]`` lists the joined hosts).
    """
    from micado import checks
    from micado.installer import ssh
    from micado.installer.ansible import InventoryHost
    from micado.master.deployment import check_host_arguments

    found = check_host_arguments(host, ssh_key)
    if not isinstance(ssh_user, str) or not ssh_user.strip() or "@" in ssh_user:
        found.append(f"ssh_user must be a login name, not {ssh_user!r}")
    agent_name = name if name is not None else "agent-" + re.sub(r"[^a-z0-9]+", "-", str(host).lower()).strip("-")
    if not isinstance(agent_name, str) or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", agent_name):
        found.append(f"name must be a lower-case host name (letters, digits, '-'), not {agent_name!r}")
    if found:
        raise InvalidArgument("; ".join(found))
    checks.port("ssh_port", ssh_port)
    key = Path(ssh_key).expanduser().absolute()
    tree = _require_agent_play(record, options)
    ssh.wait_for_ssh(host, port=ssh_port, user=ssh_user, key=key, timeout=ssh_timeout, progress=options.report)
    agent = InventoryHost(agent_name, host, ssh_user, key, ssh_port)
    with MasterPlay(record, "add-agent", options.report, options.extra_args) as play:
        play.run(tree, settings=recorded_settings(record), timeout=options.timeout, playbook=AGENT_PLAYBOOK,
                 agents=(agent,), needs_cloud_credentials=False)
    agents = [entry for entry in record.extra.get("agents") or [] if entry.get("name") != agent_name]
    agents.append({"name": agent_name, "host": host, "ssh_user": ssh_user, "ssh_port": ssh_port,
                   "joined": datetime.now(UTC).isoformat(timespec="seconds")})
    record.extra["agents"] = agents
    return store.update(record)


@dataclass(frozen=True)
class Kubeconfig:
    """The cluster's admin kubeconfig, as written by :func:`fetch_kubeconfig`.

    Attributes:
        path: the file written (mode 0600).
        server: the API server it points at.
        reachable: whether that port answered from here.
        hint: what to do when it did not (an SSH tunnel), else "".
    """

    path: Path
    server: str
    reachable: bool
    hint: str = ""


def _machine_path(record: MasterRecord, path: str) -> str:
    """A path on the master, under the same root as its certificate path (absolute on a real machine)."""
    cert = str(record.extra.get("remote_cert_path") or "/var/lib/micado/zorp/config/ssl.pem")
    suffix = "var/lib/micado/zorp/config/ssl.pem"
    root = cert[: -len(suffix)] if cert.endswith(suffix) else "/"
    return root + path


def fetch_kubeconfig(record: MasterRecord, path: str | Path | None = None, *, timeout: float = 60.0) -> Kubeconfig:
    """Fetch the cluster's admin kubeconfig over SSH, point it at the master, write it 0600.

    k3s's (0.12) is looked for first, then kubeadm's (0.9-0.11). Its server becomes
    ``https://<master address>:6443``; where the certificate was made for another
    address, ``tls-server-name: kubernetes`` (a name both put in the API server's
    certificate) keeps it verified.

    Raises:
        InstallError: SSH failed, or the master has no kubeconfig, or it is not one.
    """
    from micado.config.bounded_yaml import YamlSyntaxError, safe_dump, safe_load
    from micado.installer import ssh

    target = Path(path).expanduser().absolute() if path is not None else paths.kubeconfig_file(record.id)
    files = " ".join(shlex.quote(_machine_path(record, name)) for name in KUBECONFIG_PATHS)
    command = (f"for f in {files}; do if [ -e \"$f\" ]; then {{ head -c {_MAX_KUBECONFIG} -- \"$f\" 2>/dev/null "
               f"|| sudo -n head -c {_MAX_KUBECONFIG} -- \"$f\"; }}; exit; fi; done; "
               "echo 'no kubeconfig on this master' >&2; exit 3")
    text = ssh.run(record.ip, command, port=int(record.extra.get("ssh_port", 22)),
                   user=str(record.extra.get("ssh_user", "ubuntu")), key=ssh_key_of(record), timeout=timeout)
    try:
        config = safe_load(text)
    except (YamlSyntaxError, RecursionError, ValueError):
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("clusters"), list):
        raise InstallError(f"the kubeconfig on master {record.id} is not a kubeconfig (no clusters list)")
    server = ""
    for entry in config["clusters"]:
        cluster = entry.get("cluster") if isinstance(entry, dict) else None
        if isinstance(cluster, dict) and isinstance(cluster.get("server"), str):
            cluster["server"], renamed = _pointed_at(cluster["server"], record.ip)
            if renamed:
                cluster.setdefault("tls-server-name", "kubernetes")
            server = server or cluster["server"]
    try:
        paths.ensure_dir(target.parent) if not target.parent.exists() else None
        write_private(target, safe_dump(config))
    except OSError as exc:
        raise InvalidArgument(f"path {target}: cannot write the kubeconfig there: {exc.strerror or exc}") from None
    reachable = _port_open(record.ip, KUBE_API_PORT)
    hint = "" if reachable else _tunnel_hint(record, target)
    return Kubeconfig(target, server, reachable, hint)


def _pointed_at(server: str, address: str) -> tuple[str, bool]:
    """``server`` with its host replaced by ``address`` (port kept), and whether the host changed."""
    parts = urlsplit(server)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port or KUBE_API_PORT}"
    return urlunsplit((parts.scheme or "https", netloc, parts.path, parts.query, parts.fragment)), \
        parts.hostname != address


def _port_open(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tunnel_hint(record: MasterRecord, kubeconfig: Path) -> str:
    tunnel = shlex.join(ssh_argv(record, [], forward=f"{KUBE_API_PORT}:127.0.0.1:{KUBE_API_PORT}"))
    return (f"port {KUBE_API_PORT} of {record.ip} does not answer from here (the security group may not open it): "
            f"tunnel it with `{tunnel}` and use `kubectl --kubeconfig {shlex.quote(str(kubeconfig))} "
            f"--server https://127.0.0.1:{KUBE_API_PORT}`")


def ssh_argv(record: MasterRecord, command: list[str], *, tty: bool = False, forward: str | None = None) -> list[str]:
    """The ``ssh`` command line that logs in to the master with the recorded key, user and host key.

    Args:
        record: the master.
        command: the remote command's words (quoted for the remote shell), or ``[]`` for a login shell.
        tty: ask for a terminal (``-t``).
        forward: a local port forward ``port:host:port`` (then no command runs: ``-N``).
    """
    import shutil

    from micado.installer import ssh

    port = int(record.extra.get("ssh_port", 22))
    options = ssh.ssh_options(port=port, key=ssh_key_of(record), strict=True)
    options = ["BatchMode=no" if option == "BatchMode=yes" else option for option in options]  # a key may ask
    binary = shutil.which("ssh") or "ssh"
    extra = (["-t"] if tty else []) + (["-N", "-L", forward] if forward else [])
    remote = [shlex.join(command)] if command else []
    return [binary, *options, *extra, "-l", str(record.extra.get("ssh_user", "ubuntu")), "--", record.ip, *remote]
