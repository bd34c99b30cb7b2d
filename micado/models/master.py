"""The MiCADO master lifecycle: :class:`MicadoMaster` (``client.master``).

This is the one module that composes the parts (DESIGN.md §1): the credentials and the
store (:mod:`micado.config`), the cloud launcher (:mod:`micado.launcher`), SSH and the
Ansible installer (:mod:`micado.installer`), and the API client (:mod:`micado.api`).
"""

from __future__ import annotations

import html
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado import checks
from micado.config import paths
from micado.exceptions import (
    InstallError,
    InvalidArgument,
    MicadoAPIError,
    MicadoConnectionError,
    MicadoException,
    MicadoTimeout,
    NotFound,
)
from micado.progress import ProgressCallback, as_callback, wait_until

if TYPE_CHECKING:
    from micado.api.client import SubmitterClient
    from micado.models._cleanup import CleanupItem
    from micado.config.store import MasterRecord, MasterStore
    from micado.launcher.base import LaunchedVM, Launcher, LaunchSpec
    from micado.launcher.openstack import OpenStackLauncher

__all__ = ["MicadoMaster", "DEFAULT_REMOTE_CERT_PATH"]

log = logging.getLogger(__name__)

#: Where ansible-micado leaves the master's self-signed TLS certificate (with its key).
DEFAULT_REMOTE_CERT_PATH = "/var/lib/micado/zorp/config/ssl.pem"

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)


class MicadoMaster:
    """A MiCADO master on a cloud: create it, attach to it, destroy it.

    Users get one as ``MicadoClient(launcher="openstack").master``. After
    :meth:`create` or :meth:`attach`, ``client.applications`` talks to this master's
    API over TLS verified against the master's own certificate.

    Args:
        launcher: the cloud interface, ``"openstack"``.
        api_options: options for the API client (``version``, ``timeout``, ``deploy_timeout``).
        store: where master records are kept; the MiCADO dir's ``data.yml`` by default.
    """

    def __init__(
        self,
        launcher: str = "openstack",
        api_options: dict[str, Any] | None = None,
        store: MasterStore | None = None,
    ) -> None:
        self.launcher_name = launcher
        self._api_options = dict(api_options or {})
        self._store = store
        self._record: MasterRecord | None = None
        self._api: SubmitterClient | None = None
        #: Seconds spent in each step of the last :meth:`create` (``launch``, ``ssh``, ``ansible``...).
        self.timings: dict[str, float] = {}
        # A test seam: more ansible-playbook arguments for create (the tests' --check runs).
        self._ansible_args: tuple[str, ...] = ()
        self._current_step = ""

    # -- state ---------------------------------------------------------------------------

    @property
    def store(self) -> MasterStore:
        """The store of master records."""
        if self._store is None:
            from micado.config.store import MasterStore

            self._store = MasterStore()
        return self._store

    @property
    def id(self) -> str | None:
        """The master's id (the cloud server id), or ``None`` before create/attach."""
        return self._record.id if self._record else None

    @property
    def ip(self) -> str | None:
        """The master's public IP, or ``None`` before create/attach."""
        return self._record.ip if self._record else None

    @property
    def endpoint(self) -> str | None:
        """The TOSCA Submitter endpoint of the master, or ``None`` before create/attach."""
        return self._record.endpoint if self._record else None

    @property
    def api(self) -> SubmitterClient | None:
        """The low-level API client of the master, or ``None`` before create/attach."""
        return self._api

    def info(self) -> dict[str, Any]:
        """What is known of the current master, without secrets."""
        if self._record is None:
            return {}
        return _public(self._record)

    # -- create ----------------------------------------------------------------------------

    def create(
        self,
        auth_url: str | None = None,
        project_id: str | None = None,
        image: str | None = None,
        flavor: str | None = None,
        network: str | None = None,
        keypair: str | None = None,
        security_group: str = "all",
        region: str | None = None,
        user_domain_name: str = "Default",
        *,
        floating_network: str | None = None,
        micado_user: str = "admin",
        micado_password: str | None = None,
        micado_version: str | None = None,
        playbook: str | Path | None = None,
        settings: dict[str, Any] | None = None,
        registry_credentials: str | Path | None = None,
        ssh_user: str = "ubuntu",
        ssh_port: int = 22,
        api_port: int = 443,
        remote_cert_path: str = DEFAULT_REMOTE_CERT_PATH,
        boot_timeout: float = 900.0,
        ssh_timeout: float = 600.0,
        install_timeout: float = 3600.0,
        api_timeout: float = 600.0,
        progress: ProgressCallback | bool | None = None,
    ) -> str:
        """Create a MiCADO master: start a VM, deploy MiCADO on it, and remember it.

        Every argument is checked and the cloud credentials are read before anything is
        made. If a step fails after the VM exists, the VM is deleted, a floating IP
        allocated for it is released, no record is kept, and the step's error is raised
        with ``error.step`` naming the step (``prepare``, ``launch``, ``ssh``, ``ansible``,
        ``api``, ``certificate``, ``store``).

        Args:
            auth_url: Keystone v3 URL of the cloud.
            project_id: the OpenStack project (required with password credentials).
            image: image name or id for the master VM (e.g. Ubuntu 22.04).
            flavor: flavor name or id (MiCADO needs 2 vCPU, 4 GB RAM at least).
            network: private network name or id.
            keypair: Nova key pair name, for your own SSH access.
            security_group: security group name or id.
            region: the cloud region, if it has several.
            user_domain_name: Keystone domain of the user.
            floating_network: external network to allocate a floating IP from.
            micado_user: the MiCADO web user to create.
            micado_password: its password; a strong random one when not given.
            micado_version: the ansible-micado release tag to deploy (default: the newest,
                v0.12.6).
            playbook: a local tarball, directory or URL of ansible-micado instead.
            settings: the release's own switches and settings, e.g.
                ``{"enable_occopus": True, "web_session_timeout": 1200}``; names the
                release does not define are refused. ``grafana_admin_pwd`` is set to a
                random password (kept with the master's record) unless given here.
            registry_credentials: a container-registry credentials file in the release's
                format (``credentials-registries.yml``), handed to the master.
            ssh_user: the VM image's login user.
            ssh_port: the VM's SSH port.
            api_port: the HTTPS port of the MiCADO API.
            remote_cert_path: the master's certificate on the VM (relative paths are
                resolved against the SSH login directory).
            boot_timeout: seconds for the VM to become ACTIVE.
            ssh_timeout: seconds for SSH to accept our key.
            install_timeout: seconds for the Ansible deployment.
            api_timeout: seconds for the API to answer after the deployment.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Returns:
            The master id (the cloud's server id).

        Raises:
            InvalidArgument: an argument is missing or malformed (nothing was made).
            CredentialsError: the credentials file is missing or wrong (nothing was made).
            LaunchError: the cloud refused or failed to start the VM.
            MicadoTimeout: a wait ran past its deadline.
            InstallError: SSH or the deployment failed (see ``error.log_path``).
        """
        from micado.config.credentials import load_credentials
        from micado.installer import ansible, playbooks, ssh
        from micado.launcher.base import LaunchSpec, cloud_init_user_data

        report = as_callback(progress)
        if self._record is not None:
            raise MicadoException(f"this client already manages master {self.id}; use a new MicadoClient")
        for name, value in dict(image=image, flavor=flavor, network=network, keypair=keypair,
                                security_group=security_group, ssh_user=ssh_user, micado_user=micado_user,
                                remote_cert_path=remote_cert_path).items():
            checks.text(name, value)
        checks.http_url("auth_url", auth_url, "Keystone v3")
        checks.port("ssh_port", ssh_port)
        checks.port("api_port", api_port)
        for name, value in dict(boot_timeout=boot_timeout, ssh_timeout=ssh_timeout,
                                install_timeout=install_timeout, api_timeout=api_timeout).items():
            checks.seconds(name, value)
        if re.search(r"[\s:]", micado_user):
            raise InvalidArgument(f"micado_user {micado_user!r} must not contain whitespace or ':'")
        if micado_password is None:
            micado_password = secrets.token_urlsafe(18)
        elif not isinstance(micado_password, str) or len(micado_password) < 8:
            raise InvalidArgument("micado_password must be a string of at least 8 characters")
        ansible.check_web_credentials(micado_user, micado_password)

        self.timings = {}
        with self._step("prepare", report):
            credentials = load_credentials("nova")
            self.store.list()  # a damaged store or a wrong key fails now, not after the VM exists
            launcher = self._make_launcher(credentials, auth_url, project_id, region, user_domain_name)
            keys = ssh.ensure_keypair()
            spec = LaunchSpec(
                image=image, flavor=flavor, network=network, keypair=keypair,
                security_group=security_group, user_data=cloud_init_user_data(keys.public_key),
                floating_network=floating_network,
            )
            launcher.validate(spec)
            source = playbooks.resolve_source(playbook, micado_version, progress=report)
            settings = ansible.check_settings(source.layout, settings)
            if "grafana_admin_pwd" in source.layout.variables and "grafana_admin_pwd" not in settings:
                settings["grafana_admin_pwd"] = secrets.token_urlsafe(18)
            grafana_password = settings.get("grafana_admin_pwd")
            if registry_credentials is not None:
                registry_credentials = checks.existing_file("registry_credentials", registry_credentials)
            cloud = dict(auth_url=launcher.auth_url, region_name=launcher.region, project_id=launcher.project_id,
                         user_domain_name=launcher.user_domain_name)
            # The intent, before the cloud is touched: a create killed from here on is
            # seen by list() and removed by cleanup().
            intent = self.store.add(self._intent_record(spec, cloud, micado_user, micado_password))

        try:
            with self._step("launch", report):
                vm = launcher.launch(spec, timeout=boot_timeout, progress=report)
        except BaseException as error:  # the launcher undid itself; keep the record if it could not
            if not any("undo" in note or "could not" in note for note in getattr(error, "__notes__", [])):
                self._forget_intent(intent.id, error)
            raise
        master_id = vm.server_id
        try:
            intent.extra.update(vm.to_dict())
            intent.ip = vm.ip
            self.store.update(intent)
            with self._step("ssh", report):
                ssh.wait_for_ssh(vm.ip, port=ssh_port, user=ssh_user, key=keys.private_key,
                                 timeout=ssh_timeout, progress=report)
            with self._step("ansible", report):
                ansible.install(
                    source, master_id=master_id, host=vm.ip, port=ssh_port, user=ssh_user,
                    key=keys.private_key, micado_user=micado_user, micado_password=micado_password,
                    cloud_credentials=paths.credentials_file(), registry_credentials=registry_credentials,
                    settings=settings, timeout=install_timeout, progress=report,
                    extra_args=self._ansible_args,
                )
            with self._step("api", report):
                wait_for_port(vm.ip, api_port, timeout=api_timeout, progress=report)
            with self._step("certificate", report):
                cert_path = self._fetch_certificate(ssh, vm.ip, ssh_port, ssh_user, keys.private_key,
                                                    remote_cert_path, master_id)
            with self._step("store", report):
                record = self._new_record(vm, cloud=cloud, api_port=api_port, cert_path=cert_path, micado_user=micado_user,
                    micado_password=micado_password, extra={
                        "ssh_user": ssh_user, "ssh_port": ssh_port, "api_port": api_port,
                        "micado_version": micado_version or playbooks.DEFAULT_MICADO_VERSION,
                        "micado_layout": source.layout.name,
                        **vm.to_dict(),
                    })
                record.grafana_password = grafana_password if isinstance(grafana_password, str) else None
                api = self._connect(record)
                api.list_applications()  # evidence from the host: the API answers our credentials
                self.store.replace(intent.id, record)
        except MicadoException as error:
            self._undo_create(launcher, vm, error, ssh_port, intent.id)
            raise
        except Exception as error:  # an OS error or a bug: still undone, and raised as ours
            typed = InstallError(f"master.create failed at step '{self._current_step}': "
                                 f"{type(error).__name__}: {error}")
            typed.step = self._current_step  # type: ignore[attr-defined]
            self._undo_create(launcher, vm, typed, ssh_port, intent.id)
            raise typed from error
        except BaseException as error:  # KeyboardInterrupt, SystemExit: undo, then let it through
            self._undo_create(launcher, vm, error, ssh_port, intent.id)
            raise
        ansible.cleanup_workdir(master_id)
        self._record, self._api = record, api
        report("done", f"master {master_id} ready at {record.endpoint}")
        return master_id

    @contextmanager
    def _step(self, name: str, report: ProgressCallback) -> Iterator[None]:
        """Time one step of create, and name it on any of our errors raised inside it."""
        self._current_step = name
        start = time.monotonic()
        try:
            report(name, "starting")
            yield
        except MicadoException as error:
            if getattr(error, "step", None) is None:
                error.step = name  # type: ignore[attr-defined]
            raise
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - start

    def _intent_record(self, spec: LaunchSpec, cloud: dict[str, Any], micado_user: str,
                       micado_password: str) -> MasterRecord:
        """The ``creating`` record written before the launch (see :meth:`cleanup`)."""
        from micado.config.store import MasterRecord
        from micado.models._cleanup import creator_identity

        return MasterRecord(
            id=spec.name, ip="", endpoint="", api_version=self._api_options.get("version") or "v2.0",
            cert_path=None, micado_user=micado_user, micado_password=micado_password,
            launcher=self.launcher_name, name=spec.name, state="creating",
            extra={"launch_name": spec.name, "launch_token": spec.launch_token, "creator": creator_identity()},
            **cloud,
        )

    def _forget_intent(self, record_id: str, error: BaseException) -> None:
        try:
            self.store.remove(record_id)
        except MicadoException as store_error:
            error.add_note(f"cleanup: could not remove the record {record_id} ({store_error}); "
                           "run client.master.cleanup() (micado master cleanup)")

    def _undo_create(self, launcher: Launcher, vm: LaunchedVM, error: BaseException, ssh_port: int,
                     record_id: str) -> None:
        """Delete what create made after the VM existed; never mask ``error``.

        The ``creating`` record goes last, and only once the VM is gone: if the cloud
        refused, ``cleanup()`` can still find the VM through it.
        """
        from micado.installer import ansible, ssh

        undo: list[tuple[str, Callable[[], object]]] = [
            ("delete the VM", lambda: launcher.delete(vm, timeout=600.0)),
            ("forget the host key", lambda: ssh.forget_host(vm.ip, ssh_port)),
            ("remove the certificate", lambda: paths.cert_file(vm.server_id).unlink(missing_ok=True)),
            ("remove the working copy", lambda: ansible.cleanup_workdir(vm.server_id)),
        ]
        vm_deleted = True
        for what, action in undo:
            try:
                action()
            except Exception as undo_error:  # a failed undo is reported, never raised instead
                vm_deleted = vm_deleted and what != "delete the VM"
                log.error("after create failed: could not %s of %s: %s", what, vm.server_id, undo_error)
                error.add_note(f"cleanup: could not {what} ({undo_error}); check the cloud for {vm.server_id}")
        if vm_deleted:
            self._forget_intent(record_id, error)
        else:
            error.add_note("the master's record stays in state 'creating': run client.master.cleanup() "
                           "(micado master cleanup) to try again")
        log_path = paths.log_file(vm.server_id)
        error.add_note(
            f"master.create failed at step '{self._current_step}'; VM {vm.server_id} was deleted"
            + (f"; installer log: {log_path}" if log_path.exists() else "")
        )

    # -- attach / list / destroy --------------------------------------------------------

    def attach(self, master_id: str) -> None:
        """Work with a master created earlier, possibly by another program.

        Args:
            master_id: the id :meth:`create` returned.

        Raises:
            MasterNotFound: no master with that id is recorded (the message lists the known ids).
        """
        if not isinstance(master_id, str) or not master_id:
            raise InvalidArgument(f"master_id must be a non-empty string, not {master_id!r}")
        record = self.store.get(master_id)
        if record.state == "creating":
            raise MicadoException(self._creating_message(record))
        self._api = self._connect(record)
        self._record = record

    def list(self) -> list[dict[str, Any]]:
        """The masters this client knows (created here or by another program), without secrets."""
        return [_public(record) for record in self.store.list()]

    def destroy(self, master_id: str | None = None, *, timeout: float = 900.0,
                progress: ProgressCallback | bool | None = None) -> None:
        """Delete the master's applications (forced), then its VM, its record and its certificate.

        A master whose VM has already gone is still removed locally, with a warning. A
        master whose create was killed (state ``creating``, its process gone) is removed
        with what its launch made (see :meth:`cleanup`).

        Args:
            master_id: a recorded master; default: the one created or attached.
            timeout: seconds to wait until the VM is gone.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Raises:
            MicadoException: no master was created or attached, or the master is still
                being created by a running process.
            MasterNotFound: ``master_id`` is not recorded.
            LaunchError: the cloud refused to delete the VM (the record is kept, so you can retry).
        """
        from micado.installer import ssh

        report = as_callback(progress)
        if master_id is not None:
            stored = self.store.get(master_id)
            if stored.state == "creating":
                self._destroy_interrupted(stored, report)
                return
            self.attach(master_id)
        record = self._require_record()
        from micado.launcher.base import LaunchedVM

        launcher = self._launcher_for(record)
        if launcher.state(record.id) is None:
            log.warning("master %s: its VM no longer exists; removing it locally", record.id)
            report("destroy", f"VM {record.id} is already gone; cleaning up locally")
        else:
            if self._api is not None:
                self._delete_applications(self._api, report)
            report("destroy", f"deleting VM {record.id}")
            launcher.delete(LaunchedVM.from_dict(record.extra), timeout=timeout, progress=report)
        self.store.remove(record.id)
        if record.cert_path:
            Path(record.cert_path).unlink(missing_ok=True)
        ssh.forget_host(record.ip, int(record.extra.get("ssh_port", 22)))
        if self._api is not None:
            self._api.close()
        self._record, self._api = None, None
        report("destroy", f"master {record.id} destroyed")

    def cleanup(self, *, dry_run: bool = False, progress: ProgressCallback | bool | None = None) -> list[CleanupItem]:
        """Find and remove what killed creates left behind.

        ``create`` records its intent (state ``creating``) before it touches the cloud,
        so a create killed at any point (SIGKILL included) can be cleaned up here:

        * records stuck in ``creating`` whose process is gone, with the Ansible
          processes still running for them and their working copies (which may hold
          credentials);
        * servers and floating IPs on the recorded clouds that carry micado-client's
          launch marks (``micado-client-launch`` metadata; ``allocated by micado-client``)
          but belong to no finished master and no create still running;
        * working copies and ssh control folders nobody owns.

        Finished masters and creates still running (in this or another process) are
        never touched.

        Args:
            dry_run: only report what would be removed.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Returns:
            What was found; ``item.removed`` says whether it went.

        Raises:
            CredentialsError: the cloud credentials file is missing or wrong.
            LaunchError: a cloud could not be asked.
            StoreError: the store cannot be read.
        """
        from micado.models._cleanup import clean_up

        return clean_up(self.store.list(), self._launcher_for, self._forget, dry_run=dry_run,
                        report=as_callback(progress))

    def _destroy_interrupted(self, record: MasterRecord, report: ProgressCallback) -> None:
        """Remove a master whose create was killed: what carries its launch marks, then the record."""
        from micado.models._cleanup import creator_running

        if creator_running(record):
            raise MicadoException(self._creating_message(record))
        launcher = self._launcher_for(record)
        name = record.extra.get("launch_name") or record.name
        marked = [resource for resource in launcher.marked() if resource.name == name]
        for resource in sorted(marked, key=lambda resource: resource.kind != "server"):  # servers first
            launcher.remove_marked(resource, progress=report)
        self._forget(record)
        report("destroy", f"master {record.id} (its create was interrupted) removed")

    def _forget(self, record: MasterRecord) -> None:
        """Remove a record with its certificate, host key and working copy."""
        from micado.installer import ansible, ssh

        server_id = record.extra.get("server_id") or record.id
        ansible.cleanup_workdir(server_id)
        if record.cert_path:
            Path(record.cert_path).unlink(missing_ok=True)
        if record.ip:
            ssh.forget_host(record.ip, int(record.extra.get("ssh_port", 22)))
        self.store.remove(record.id)

    @staticmethod
    def _creating_message(record: MasterRecord) -> str:
        creator = (record.extra.get("creator") or {})
        return (f"master {record.id} is being created (state 'creating', by process "
                f"{str(creator.get('process', '?')).split('@')[0]} on {creator.get('host', '?')}); if that "
                "process is gone, remove it with client.master.cleanup() (micado master cleanup)")

    def _delete_applications(self, api: SubmitterClient, report: ProgressCallback) -> None:
        """Force-delete every application; an API that fails is reported, and the VM goes anyway."""
        try:
            for app_id in api.list_applications():
                report("destroy", f"deleting application {app_id}")
                api.delete_application(app_id, force=True)
        except (MicadoAPIError, MicadoConnectionError, MicadoTimeout) as error:
            log.warning("master %s: applications not deleted (%s); deleting the VM anyway", self.id, error)
            report("destroy", f"applications not deleted ({error}); deleting the VM anyway")

    # -- helpers -----------------------------------------------------------------------

    def _require_record(self) -> MasterRecord:
        if self._record is None:
            raise MicadoException("no master: call client.master.create(...) or client.master.attach(master_id)")
        return self._record

    def _make_launcher(self, credentials: Any, auth_url: str | None, project_id: str | None,
                       region: str | None, user_domain_name: str | None) -> OpenStackLauncher:
        if self.launcher_name != "openstack":
            raise InvalidArgument(f"launcher {self.launcher_name!r} is not supported; use 'openstack'")
        from micado.launcher.openstack import OpenStackLauncher

        return OpenStackLauncher(credentials, auth_url=auth_url, project_id=project_id, region=region,
                                 user_domain_name=user_domain_name or "Default")

    def _launcher_for(self, record: MasterRecord) -> OpenStackLauncher:
        from micado.config.credentials import load_credentials

        return self._make_launcher(load_credentials("nova"), record.auth_url, record.project_id,
                                   record.region_name, record.user_domain_name)

    def _fetch_certificate(self, ssh: Any, host: str, port: int, user: str, key: Path,
                           remote_path: str, master_id: str) -> str:
        """Copy the master's certificate back, keeping only its CERTIFICATE blocks (never the key)."""
        paths.ensure_dir(paths.certs_dir())
        download = paths.certs_dir() / f".{master_id}.download"
        try:
            ssh.fetch_file(host, remote_path, download, port=port, user=user, key=key, timeout=60.0)
            certificates = _PEM_CERT.findall(download.read_bytes())
        finally:
            download.unlink(missing_ok=True)
        if not certificates:
            raise InstallError(f"{remote_path} on the master holds no PEM certificate")
        target = paths.cert_file(master_id)
        temp = target.with_suffix(".tmp")
        temp.write_bytes(b"".join(certificates))
        temp.chmod(0o600)
        temp.replace(target)
        return str(target)

    def _new_record(self, vm: LaunchedVM, *, cloud: dict[str, Any], api_port: int, cert_path: str,
                    micado_user: str, micado_password: str, extra: dict[str, Any]) -> MasterRecord:
        from micado.config.store import MasterRecord

        host = f"{vm.ip}:{api_port}" if api_port != 443 else vm.ip
        return MasterRecord(
            id=vm.server_id, ip=vm.ip, endpoint=f"https://{host}/toscasubmitter/",
            api_version=self._api_options.get("version") or "v2.0", cert_path=cert_path,
            micado_user=micado_user, micado_password=micado_password, launcher=self.launcher_name,
            name=vm.name, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            extra=extra, **cloud,
        )

    def _connect(self, record: MasterRecord) -> SubmitterClient:
        from micado.api.client import SubmitterClient

        options = {k: v for k, v in self._api_options.items() if k in ("timeout", "deploy_timeout") and v}
        verify: bool | str = record.cert_path or True
        if isinstance(verify, str) and not Path(verify).exists():
            raise NotFound(f"the certificate of master {record.id} is missing: {verify}")
        return SubmitterClient(record.endpoint, version=record.api_version or "v2.0", verify=verify,
                               auth=(record.micado_user, record.micado_password), **options)

    def __repr__(self) -> str:
        if self._record is None:
            return f"<MicadoMaster launcher={self.launcher_name!r}, none created or attached>"
        return f"<MicadoMaster {self._record.id} at {self._record.endpoint}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
            for key, value in self.info().items() if not isinstance(value, dict)
        )
        return f"<b>MiCADO master</b><table>{rows}</table>" if rows else html.escape(repr(self))


def wait_for_port(host: str, port: int, *, timeout: float, progress: ProgressCallback) -> None:
    """Wait until ``host:port`` accepts TCP connections."""

    def open_() -> bool | None:
        try:
            with socket.create_connection((host, port), timeout=2.0):
                return True
        except OSError:
            return None

    wait_until(open_, what=f"the MiCADO API port {host}:{port}", timeout=timeout, stage="api", progress=progress)


def _public(record: MasterRecord) -> dict[str, Any]:
    fields = ("id", "name", "state", "ip", "endpoint", "api_version", "cert_path", "micado_user", "launcher",
              "auth_url", "region_name", "project_id", "created")
    return {field: getattr(record, field, None) for field in fields}
