"""``master.create`` as its steps: prepare, launch, ssh, ansible, api, certificate, store.

:class:`Creation` runs one create. Each step is a method, timed and named on any of
our errors raised inside it (``error.step``); what a step makes is pushed on one
:class:`~micado.undo.UndoStack`, which a failure (or Ctrl-C, SIGTERM...) unwinds
newest first. The master's record is written as ``creating`` before the cloud is
touched and replaced by the finished record in the last step, so a create killed at
any point is seen by ``list()`` and removed by ``cleanup()``.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado.config import paths
from micado.config.crypto import new_password
from micado.exceptions import InstallError, MicadoException
from micado.undo import UndoStack
from micado.progress import ProgressCallback, expect_steps, wait_until

if TYPE_CHECKING:
    from micado.api.client import SubmitterClient
    from micado.config.store import MasterRecord, MasterStore
    from micado.config.tls import TlsPair
    from micado.installer.playbooks import PlaybookTree
    from micado.installer.ssh import KeyPair
    from micado.launcher.base import ConfiguredLogin, LaunchedVM, Launcher, LaunchSpec
    from micado.master.spec import CreateSpec

__all__ = ["Creation", "STEPS", "fetch_certificate", "user_certificate", "wait_for_port"]

log = logging.getLogger(__name__)

#: The steps of a create, in order; ``error.step`` is one of them.
STEPS = ("prepare", "launch", "ssh", "ansible", "api", "certificate", "store")

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)
#: Errors of the machine or of data (not bugs) that leave create as an InstallError.
_ENVIRONMENT_ERRORS = (OSError, UnicodeError, ValueError, RecursionError, MemoryError)


class Creation:
    """One run of ``master.create``.

    Args:
        spec: the checked arguments.
        launcher_name: the launcher's name (:func:`~micado.launcher.registry.launcher_names`).
        store: where the record goes.
        connect: builds the API client of a record (the master's own TLS settings).
        api_version: the TOSCA Submitter API version to record.
        report: the progress callback.
        ansible_args: more ``ansible-playbook`` arguments (a test seam: ``--check``).
        cloud: the login from the user's own configuration of the cloud
            (:meth:`~micado.launcher.base.Launcher.configured_login`: a cloud of
            ``clouds.yaml`` for OpenStack) instead of the credentials file.
    """

    #: The steps this kind of run takes, in order.
    steps: tuple[str, ...] = STEPS

    def __init__(self, spec: CreateSpec, *, launcher_name: str, store: MasterStore,
                 connect: Callable[[MasterRecord], SubmitterClient], api_version: str,
                 report: ProgressCallback, ansible_args: tuple[str, ...] = (),
                 cloud: ConfiguredLogin | None = None) -> None:
        self.spec = spec
        self.cloud = cloud
        self.launcher_name = launcher_name
        self.store = store
        self.connect = connect
        self.api_version = api_version
        self.report = report
        expect_steps(report, self.steps)  # for "step n of m" in a notebook
        self.ansible_args = ansible_args
        self.undo = UndoStack("master.create", report=lambda step: report("undo", step))
        #: Seconds spent in each step.
        self.timings: dict[str, float] = {}
        self.step = ""
        # made by the steps
        self.launcher: Launcher
        self.keys: KeyPair
        self.launch_spec: LaunchSpec
        self.source: PlaybookTree
        self.release: dict[str, Any] = {}
        self.settings: dict[str, Any] = {}
        self.password = spec.micado_password or new_password()
        self.intent: MasterRecord
        self.vm: LaunchedVM
        self.cert_path = ""
        #: The user's own TLS certificate and key (``tls_cert``/``tls_key``), checked in ``prepare``.
        self.tls: TlsPair | None = None
        self.record: MasterRecord
        self.api: SubmitterClient

    def run(self) -> tuple[MasterRecord, SubmitterClient]:
        """Run every step; on any failure undo what was made and raise.

        Returns:
            The stored record and a connected API client.

        Raises:
            MicadoException: the failing step's error, with ``error.step`` and notes on
                what was undone. OS and data errors become ``InstallError``; a bug's
                exception is raised as it is, with the same notes.
        """
        from micado.installer.runner import close_connections, make_control_dir

        # One SSH connection for the whole create: opened by the SSH wait, reused by
        # the play and the certificate copy (a handshake each saved), closed at the end.
        self.control_dir = make_control_dir()
        try:
            for name in self.steps:
                with self._timed(name):
                    getattr(self, f"_{name}")()
        except MicadoException as error:
            self._fail(error)
            raise
        except _ENVIRONMENT_ERRORS as error:
            typed = InstallError(f"master.create failed at step '{self.step}': {type(error).__name__}: {error}")
            typed.step = self.step
            self._fail(typed)
            raise typed from error
        except BaseException as error:  # Ctrl-C, SIGTERM, a bug: undone, raised as it is
            self._fail(error)
            raise
        finally:
            close_connections(self.control_dir)
        from micado.installer import ansible

        ansible.cleanup_workdir(self.vm.server_id)
        return self.record, self.api

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        self.step = name
        start = time.monotonic()
        try:
            self.report(name, "starting")
            yield
            log.info("master %s: step %s done in %.1f s", self._subject(), name, time.monotonic() - start)
        except MicadoException as error:
            if error.step is None:
                error.step = name
            raise
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - start

    def _subject(self) -> str:
        """The master's id for log records: the server id once known, else the launch name."""
        vm = getattr(self, "vm", None)
        if vm is not None:
            return str(vm.server_id)
        intent = getattr(self, "intent", None)
        return intent.id if intent is not None else "(new)"

    def _fail(self, error: BaseException) -> None:
        failed = self.undo.unwind(error)
        vm = getattr(self, "vm", None)
        deleted = vm is not None and vm.launcher != "none" and "delete the VM" not in failed  # a host: never
        what = f"; VM {vm.server_id} was deleted" if vm is not None and deleted else ""
        log_path = paths.log_file(vm.server_id) if vm is not None else None
        error.add_note(f"master.create failed at step '{self.step}'{what}"
                       + (f"; installer log: {log_path}" if log_path is not None and log_path.exists() else ""))

    # -- the steps ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Everything that can fail without the cloud: credentials, store, keys, playbooks, settings."""
        from micado.config.credentials import load_credentials
        from micado.installer import ansible, ssh
        from micado.launcher import launcher_class
        from micado.launcher.base import LaunchSpec, cloud_init_user_data

        spec = self.spec
        assert spec.image is not None and spec.flavor is not None  # required by every launcher: checked()
        ansible.check_web_credentials(spec.micado_user, self.password)
        cls = launcher_class(self.launcher_name)
        credentials = (self.cloud.credentials if self.cloud is not None
                       else load_credentials(cls.credential_type, vault_password=spec.vault_password))
        self.store.list()  # a damaged store or a wrong key fails now, not after the VM exists
        self.launcher = cls.from_arguments(credentials, spec.login_arguments(cls))
        self.keys = ssh.ensure_keypair()
        self.launch_spec = LaunchSpec(
            image=spec.image, flavor=spec.flavor, network=spec.network if spec.network is not None else "",
            keypair=spec.keypair,
            security_group=spec.security_group, user_data=cloud_init_user_data(self.keys.public_key),
            store_id=self.store.identity(), **spec.launch_arguments(cls),
        )
        self.launcher.validate(self.launch_spec)
        self._playbooks()
        # The intent, before the cloud is touched: a create killed from here on is seen
        # by list() and removed by cleanup(). It goes last in the undo, and only once
        # the VM is gone (if the cloud refused, cleanup() still finds the VM through it).
        self.intent = self.store.add(self._intent_record())
        self.undo.push("remove the record", lambda: self.store.remove(self.intent.id),
                       unless_failed="delete the VM")

    def _playbooks(self) -> None:
        """Resolve the playbooks and check the settings against the release's variables.

        A release with a Grafana admin password gets a random one unless it was given.
        """
        from micado.installer import ansible, playbooks

        spec = self.spec
        from micado.master.release import release_facts

        self.source = playbooks.resolve_source(spec.playbook, spec.micado_version, progress=self.report)
        self.release = release_facts(spec.playbook, spec.micado_version, self.source)
        self.settings = ansible.check_settings(self.source.layout, spec.settings)
        if "grafana_admin_pwd" in self.source.layout.variables and "grafana_admin_pwd" not in self.settings:
            self.settings["grafana_admin_pwd"] = new_password()
        self._check_files()

    def _check_files(self) -> None:
        """The other files the master takes (registry and GCE credentials, TLS pair), checked now.

        A vaulted file with a wrong password, a GCE key of the wrong shape or a key that
        is not the certificate's fails here, before anything is made.
        """
        from micado.config.tls import read_tls_pair
        from micado.installer import ansible

        spec = self.spec
        cloud_file = paths.credentials_file() if self.cloud is None and paths.credentials_file().is_file() else None
        ansible.check_files(self.source, cloud_credentials=cloud_file,
                            registry_credentials=_path(spec.registry_credentials),
                            gce_credentials=_path(spec.gce_credentials), vault_password=spec.vault_password)
        if spec.tls_cert is not None and spec.tls_key is not None:
            self.tls = read_tls_pair(spec.tls_cert, spec.tls_key)

    def _launch(self) -> None:
        try:
            self.vm = self.launcher.launch(self.launch_spec, timeout=self.spec.boot_timeout, progress=self.report)
        except BaseException as error:  # the launcher undid itself; keep the record if it could not
            if any("undo" in note or "could not" in note for note in getattr(error, "__notes__", [])):
                self.undo.discard(lambda name: name == "remove the record")
                error.add_note("the master's record stays in state 'creating': run client.master.cleanup() "
                               "(micado master cleanup) to remove what is left")
            raise
        vm = self.vm
        log.info("master %s: VM %s running, address %s%s", vm.server_id, vm.name, vm.ip,
                 f" (floating IP {vm.floating_ip_id})" if vm.floating_ip_id else "")
        self.undo.push("delete the VM", lambda: self.launcher.delete(vm, timeout=600.0))
        self.intent.extra.update(vm.to_dict())
        self.intent.extra["server_id"] = vm.server_id
        self.intent.ip = vm.ip
        self.store.update(self.intent)

    def _ssh(self) -> None:
        from micado.installer import ssh

        vm, spec = self.vm, self.spec
        self.undo.push("forget the host key", lambda: ssh.forget_host(vm.ip, spec.ssh_port))
        ssh.wait_for_ssh(vm.ip, port=spec.ssh_port, user=spec.ssh_user, key=self.keys.private_key,
                         timeout=spec.ssh_timeout, progress=self.report, control_dir=self.control_dir)
        check_python(vm.ip, port=spec.ssh_port, user=spec.ssh_user, key=self.keys.private_key,
                     control_dir=self.control_dir, progress=self.report)

    def _ansible(self) -> None:
        from micado.installer import ansible
        from micado.master.plays import master_credentials_file

        vm, spec = self.vm, self.spec
        self.undo.push("remove the working copy", lambda: ansible.cleanup_workdir(vm.server_id))
        # The user's file, or one derived from the cloud's own configuration (openstacksdk's
        # clouds.yaml) in the master's working copy, which the undo and cleanup() remove.
        with master_credentials_file(self.cloud, vm.server_id) as cloud_credentials:
            ansible.install(
                self.source, master_id=vm.server_id, host=vm.ip, port=spec.ssh_port, user=spec.ssh_user,
                key=self.keys.private_key, micado_user=spec.micado_user, micado_password=self.password,
                cloud_credentials=cloud_credentials, registry_credentials=_path(spec.registry_credentials),
                settings=self.settings, timeout=spec.install_timeout, progress=self.report,
                extra_args=self.ansible_args, control_dir=self.control_dir, vault_password=spec.vault_password,
                gce_credentials=_path(spec.gce_credentials), tls=self.tls,
            )
        log.info("master %s: ansible-playbook done", vm.server_id)

    def _api(self) -> None:
        wait_for_port(self.vm.ip, self.spec.api_port, timeout=self.spec.api_timeout, progress=self.report)

    def _certificate(self) -> None:
        from micado.installer import ssh

        vm, spec = self.vm, self.spec
        self.undo.push("remove the certificate", lambda: paths.cert_file(vm.server_id).unlink(missing_ok=True))
        if self.tls is not None:
            self.cert_path = user_certificate(self.tls, vm.ip, spec.api_port, vm.server_id)
            return
        self.cert_path = fetch_certificate(ssh, vm.ip, spec.ssh_port, spec.ssh_user, self.keys.private_key,
                                           spec.remote_cert_path, vm.server_id, self.control_dir)

    def _store(self) -> None:
        from micado.installer import playbooks
        from micado.master.release import GRAFANA_SETTING, split_settings

        vm, spec = self.vm, self.spec
        host = f"{vm.ip}:{spec.api_port}" if spec.api_port != 443 else vm.ip
        inputs: dict[str, Any] = {}
        if self.tls is not None:  # the user's own files: recorded by path, never copied (reconfigure reads them)
            inputs["tls"] = {"provision_method": "user-supplied", "cert": str(self.tls.cert_file),
                             "key": str(self.tls.key_file), "verify": "pinned" if self.cert_path else "system"}
        if spec.gce_credentials is not None:
            inputs["gce_credentials"] = str(_path(spec.gce_credentials))
        grafana = self.settings.get(GRAFANA_SETTING)
        settings, secret_settings = split_settings(self.settings)
        record = self._record_base(
            id=vm.server_id, ip=vm.ip, endpoint=f"https://{host}/toscasubmitter/", cert_path=self.cert_path or None,
            name=vm.name, created=datetime.now(UTC).isoformat(timespec="seconds"),
            grafana_password=grafana if isinstance(grafana, str) else None, secret_settings=secret_settings,
            extra={
                "ssh_user": spec.ssh_user, "ssh_port": spec.ssh_port, "api_port": spec.api_port,
                "micado_version": spec.micado_version or playbooks.default_micado_version(),
                "micado_layout": self.source.layout.name, "release": self.release, "settings": settings,
                "remote_cert_path": spec.remote_cert_path, **inputs, **self._access(), **vm.to_dict(),
            },
        )
        self.api = self.connect(record)
        self.api.list_applications()  # evidence from the host: the API answers our credentials
        self.record = self.store.replace(self.intent.id, record)
        log.info("master %s: stored, endpoint %s", record.id, record.endpoint)

    # -- records ---------------------------------------------------------------------------

    def _access(self) -> dict[str, Any]:
        """How a later program logs in to the master, beyond user and port: our own key (none to record)."""
        return {}

    def _cloud_fields(self) -> dict[str, Any]:
        """What the record keeps to find the master's cloud again (the launcher's login fields)."""
        return self.launcher.record_fields()

    def _intent_record(self) -> MasterRecord:
        from micado.master.cleanup import creator_identity

        name = self.launch_spec.name
        return self._record_base(
            id=name, ip="", endpoint="", cert_path=None, name=name, state="creating",
            extra={"launch_name": name, "launch_token": self.launch_spec.launch_token,
                   "creator": creator_identity()},
        )

    def _record_base(self, *, extra: dict[str, Any], **fields: Any) -> MasterRecord:
        """A record of this create: the given fields, the web login and the launcher's cloud."""
        from micado.config.store import MasterRecord
        from micado.master.records import split_cloud_fields

        cloud, cloud_extra = split_cloud_fields(self._cloud_fields())
        if cloud_extra:
            extra = {**extra, "cloud": cloud_extra}
        if self.cloud is not None:
            extra = {**extra, "os_cloud": self.cloud.name}
        return MasterRecord(api_version=self.api_version, micado_user=self.spec.micado_user,
                            micado_password=self.password, launcher=self.launcher_name, extra=extra,
                            **cloud, **fields)


def _path(value: Any) -> Path | None:
    return None if value is None else Path(value).expanduser().absolute()


def check_python(host: str, *, port: int, user: str, key: Path, control_dir: Path | None,
                 progress: ProgressCallback) -> None:
    """Refuse a master whose Python the shipped ansible-core cannot use, before the play
    (:mod:`micado.installer.target`); another ``ansible-playbook`` named by the user decides for itself.

    Raises:
        InvalidArgument: the image's Python is missing or too old (named with the images that work).
    """
    from micado.installer import target
    from micado.installer.executable import ansible_playbook_override

    if ansible_playbook_override() is not None:
        return
    version = target.check_target_python(host, port=port, user=user, key=key, control_dir=control_dir)
    progress("ssh", f"the master's Python is {version}")


def fetch_certificate(ssh: Any, host: str, port: int, user: str, key: Path, remote_path: str, master_id: str,
                      control_dir: Path | None = None) -> str:
    """Copy the master's certificate back, keeping only its CERTIFICATE blocks (never the key).

    Returns:
        The path of the stored certificate (mode 0600).

    Raises:
        InstallError: the copy failed, or the file holds no PEM certificate.
    """
    from micado.config.files import write_private

    paths.ensure_dir(paths.certs_dir())
    download = paths.certs_dir() / f".{master_id}.download"
    try:
        ssh.fetch_file(host, remote_path, download, port=port, user=user, key=key, timeout=60.0,
                       control_dir=control_dir)
        certificates = _PEM_CERT.findall(download.read_bytes())
    finally:
        download.unlink(missing_ok=True)
    if not certificates:
        raise InstallError(f"{remote_path} on the master holds no PEM certificate")
    target = paths.cert_file(master_id)
    write_private(target, b"".join(certificates))
    return str(target)


def user_certificate(tls: TlsPair, host: str, port: int, master_id: str) -> str:
    """How the record verifies a master that serves the user's own certificate.

    A certificate the system's CA store accepts for the master's address (a public CA's)
    is verified against that store: ``""`` (no ``cert_path``). Any other is pinned: its
    certificates (never the key) are stored as the master's ``cert_path``, as a
    self-signed master's are. Give the whole chain in ``tls_cert`` up to a self-signed
    root when a private CA signed it.

    Returns:
        The stored certificate's path, or ``""``.

    Raises:
        InstallError: the API port does not answer TLS.
    """
    from micado.config.files import write_private
    from micado.config.tls import verified_by_system_store

    if verified_by_system_store(host, port):
        log.info("master %s: its certificate (%s) is verified by the system's CA store", master_id, tls.cert_file)
        return ""
    paths.ensure_dir(paths.certs_dir())
    target = paths.cert_file(master_id)
    write_private(target, tls.cert_pem.encode("ascii"))
    log.info("master %s: its certificate (%s) is not a public CA's: pinned", master_id, tls.cert_file)
    return str(target)


def wait_for_port(host: str, port: int, *, timeout: float, progress: ProgressCallback) -> None:
    """Wait until ``host:port`` accepts TCP connections.

    Raises:
        MicadoTimeout: it did not within ``timeout`` seconds.
    """

    def open_() -> bool | None:
        try:
            with socket.create_connection((host, port), timeout=2.0):
                return True
        except OSError:
            return None

    wait_until(open_, what=f"the MiCADO API port {host}:{port}", timeout=timeout, stage="api", progress=progress)
