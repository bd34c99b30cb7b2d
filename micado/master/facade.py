"""The master facade: :class:`MicadoMaster` (``client.master``).

The object users hold; the composition of the parts (the credentials and the store of
:mod:`micado.config`, the launchers of :mod:`micado.launcher`, SSH and the Ansible
installer of :mod:`micado.installer`, the API client of :mod:`micado.api`) is in
:mod:`micado.master`: what create takes (:mod:`micado.master.spec`) and its steps
(:mod:`micado.master.lifecycle`).
"""

from __future__ import annotations

import builtins
import html
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado.exceptions import (
    InvalidArgument,
    MicadoAPIError,
    MicadoConnectionError,
    MicadoException,
    MicadoTimeout,
    NotFound,
)
from micado.config.record import IMPORTED, SEALED
from micado.master.spec import ANY, DEFAULT_REMOTE_CERT_PATH, arguments_doc
from micado.launcher.registry import DEFAULT_LAUNCHER
from micado.progress import ProgressCallback, as_callback

if TYPE_CHECKING:
    from datetime import timedelta

    from micado.api.client import SubmitterClient
    from micado.demos import Demo
    from micado.master.cleanup import CleanupItem
    from micado.config.store import MasterRecord, MasterStore
    from micado.launcher.base import ConfiguredLogin, Launcher
    from micado.master.operations import Kubeconfig, PlayOptions
    from micado.master.status import MasterStatus

__all__ = ["MicadoMaster", "MasterCredentials", "DEFAULT_REMOTE_CERT_PATH"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MasterCredentials:
    """The logins of a master's web services; the passwords never show in ``repr``.

    Attributes:
        user: the MiCADO web user (the dashboard and the TOSCA Submitter API).
        password: its password.
        grafana_password: the Grafana ``admin`` password the deployment set, if the
            release has one.
    """

    user: str
    password: str = field(repr=False)
    grafana_password: str | None = field(default=None, repr=False)


class MicadoMaster:
    """A MiCADO master on a cloud: create it, attach to it, destroy it.

    Users get one as ``MicadoClient(launcher="openstack").master``. After
    :meth:`create` or :meth:`attach`, ``client.applications`` talks to this master's
    API over TLS verified against the master's own certificate.

    Args:
        launcher: the cloud interface (a name of :func:`~micado.launcher.registry.launcher_names`).
        api_options: options for the API client (``version``, ``timeout``, ``deploy_timeout``).
        store: where master records are kept; the MiCADO dir's ``data.yml`` by default.
        cloud: a login of the cloud's own configuration, e.g. a cloud of ``clouds.yaml`` (see
            :class:`~micado.MicadoClient`).
    """

    def __init__(
        self,
        launcher: str = DEFAULT_LAUNCHER,
        api_options: dict[str, Any] | None = None,
        store: MasterStore | None = None,
        cloud: str | None = None,
    ) -> None:
        self.launcher_name = launcher
        self.cloud = cloud
        self._api_options = dict(api_options or {})
        self._store = store
        self._record: MasterRecord | None = None
        self._api: SubmitterClient | None = None
        #: Seconds spent in each step of the last :meth:`create` (``launch``, ``ssh``, ``ansible``...).
        self.timings: dict[str, float] = {}
        # A test seam: more ansible-playbook arguments for create and day-2 plays (the tests' --check runs).
        self._ansible_args: tuple[str, ...] = ()
        # The vault password last given to this object (create, a day-2 play, destroy, cleanup): in memory
        # only, for the cloud logins that read a vaulted credentials file later (destroy, cleanup).
        self._vault_password: str | None = None

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
    def micado_id(self) -> str | None:
        """The same as :attr:`id` (read only): the name the official micado-client 0.12 uses."""
        return self.id

    @property
    def micado_ip(self) -> str | None:
        """The same as :attr:`ip` (read only): the name the official micado-client 0.12 uses."""
        return self.ip

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

    def credentials(self) -> MasterCredentials:
        """The web user and passwords of the current master (as stored, decrypted).

        Returns:
            The MiCADO web login and the Grafana admin password.

        Raises:
            MicadoException: no master was created, deployed or attached.
        """
        record = self._require_record()
        return MasterCredentials(record.micado_user, record.micado_password, record.grafana_password)

    # -- life after create ---------------------------------------------------------------

    def update_auth(self, credentials_file: str | Path | None = None, registry_credentials: str | Path | None = None,
                    *, vault_password: str | None = None, gce_credentials: str | Path | None = None,
                    timeout: float = 1800.0, progress: ProgressCallback | bool | None = None) -> Path:
        """Hand the master your current cloud (and registry) credentials: the release's ``update-auth`` tag.

        Use it when your cloud password, application credential or OpenID Connect
        token changed. The credentials come as at create: ``credentials_file``, else the
        MiCADO dir's ``credentials-cloud-api.yml``, else derived from the cloud of your
        ``clouds.yaml`` the master was made with. The file is checked, and the master's
        release (the one it was made with: same tag or source, same checksum) is looked
        for the ``update-auth`` tag, before anything runs.

        Args:
            credentials_file: a cloud credentials file to use instead of the MiCADO dir's.
            registry_credentials: a container-registry credentials file in the release's format.
            vault_password: the password of files encrypted with ``ansible-vault`` (default:
                the content of the file ``MICADO_VAULT_PASSWORD_FILE`` names); never recorded.
            gce_credentials: a Google service-account JSON for GCE worker nodes; default:
                the one the master was made with, if that file is still there.
            timeout: seconds for the play.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Returns:
            The play's log file (secrets masked).

        Raises:
            MicadoException: no master is created or attached, or its release has no ``update-auth`` tag.
            CredentialsError: a credentials file is missing or wrong (nothing ran).
            InstallError: the play failed (see ``error.log_path``).
            MicadoTimeout: the play ran past ``timeout``.
        """
        from micado.master import operations

        self._remember_vault_password(vault_password)
        record = self._current_record()
        cls, login = self._login_for(record)
        return operations.update_auth(record, self._play_options(timeout, progress), login=login,
                                      credential_type=None if record.extra.get("deployed") else cls.credential_type,
                                      credentials_file=credentials_file, registry_credentials=registry_credentials,
                                      vault_password=vault_password, gce_credentials=gce_credentials)

    def reconfigure(self, settings: dict[str, Any], *, vault_password: str | None = None, timeout: float = 3600.0,
                    progress: ProgressCallback | bool | None = None) -> dict[str, Any]:
        """Run the master's release again with changed settings, e.g. ``{"enable_occopus": True}``.

        The settings are checked against the release's variables (as at create) before
        anything runs; the others stay as recorded. ``None`` puts a setting back to the
        release's default. On success the new settings are recorded; if the play fails
        (or is interrupted) the record stays as it was.

        Args:
            settings: variable name -> new value.
            vault_password: the password of vaulted credentials files (as :meth:`update_auth`).
            timeout: seconds for the play.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Returns:
            The master's settings now (secret-looking values masked).

        A master made with your own TLS certificate (``tls_cert``/``tls_key``) is handed
        the same files again (read from where they were at create), so the play keeps it.

        Raises:
            InvalidArgument: a name the release does not define, or a value that is not plain data.
            CredentialsError: a credentials file is wrong, or the recorded TLS files are gone (nothing ran).
            InstallError: the play failed (see ``error.log_path``).
            MicadoTimeout: the play ran past ``timeout``.
        """
        from micado.master import operations

        self._remember_vault_password(vault_password)
        record = self._current_record()
        _, login = self._login_for(record)
        self._record = operations.reconfigure(record, self.store, self._play_options(timeout, progress),
                                              settings=settings, login=login, vault_password=vault_password)
        return self.settings()

    def settings(self) -> dict[str, Any]:
        """The settings the master was made (or last reconfigured) with; secret-looking values masked."""
        record = self._require_record()
        shown = dict(record.extra.get("settings") or {})
        if record.secret_settings:
            import json

            shown.update(dict.fromkeys(json.loads(record.secret_settings) if record.secret_settings != SEALED
                                       else {}, "********"))
        return shown

    def edge_files(self, dest: str | Path, *, timeout: float = 600.0,
                   progress: ProgressCallback | bool | None = None) -> dict[str, Path]:
        """Write the files an edge device needs to join the master: ``agent.yml --tags edge-files``.

        ``connect_edge.sh`` holds the k3s agent install line with the cluster's join
        token (a secret: written 0700 in a 0700 folder, never logged);
        ``registries.yaml`` (0600) the master's registry mirrors, when it has some. Needs
        a release with ``agent.yml`` (ansible-micado v0.12.6 and later).

        Args:
            dest: the folder to write them into (made 0700 if missing).
            timeout: seconds for the play.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Returns:
            File name -> path written.

        Raises:
            MicadoException: no master, or its release has no ``agent.yml``.
            InvalidArgument: ``dest`` is not a folder.
            InstallError: the play failed.
        """
        from micado.master import operations

        return operations.edge_files(self._current_record(), dest, self._play_options(timeout, progress))

    def add_agent(self, host: str, ssh_key: str | Path, *, ssh_user: str = "ubuntu", ssh_port: int = 22,
                  name: str | None = None, timeout: float = 1800.0,
                  progress: ProgressCallback | bool | None = None) -> None:
        """Join a machine you have to the master's cluster as a worker (the release's "Join agents").

        SSH logs in with your key (read, never copied; the host key is kept in
        micado-client's own known_hosts). Needs a release with ``agent.yml``
        (ansible-micado v0.12.6 and later). The agent is listed in ``info()["agents"]``.

        Args:
            host: the machine's address.
            ssh_key: your private key authorised for ``ssh_user`` there.
            ssh_user: a sudoer on the machine.
            ssh_port: its SSH port.
            name: the node name (default ``agent-<address>``).
            timeout: seconds for the play.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Raises:
            InvalidArgument: a malformed argument (nothing ran).
            MicadoException: no master, or its release has no ``agent.yml``.
            InstallError: SSH or the play failed.
        """
        from micado.master import operations

        self._record = operations.add_agent(
            self._current_record(), self.store, self._play_options(timeout, progress), host=host, ssh_user=ssh_user,
            ssh_key=ssh_key, ssh_port=ssh_port, name=name)

    def status(self, *, timeout: float = 5.0) -> MasterStatus:
        """Check the master live: TLS and its certificate, the TOSCA Submitter login, the dashboards, SSH.

        Every check has its own deadline and they run concurrently; a master that is
        down gives failed checks, not an exception.

        Args:
            timeout: seconds each check may take.

        Returns:
            The checks (``status.ok`` is whether all passed).
        """
        from micado.master.status import check_master

        return check_master(self._require_record(), timeout=timeout)

    def status_of(self, master_ids: builtins.list[str], *, timeout: float = 5.0) -> builtins.list[MasterStatus]:
        """Check several stored masters live, concurrently (see :meth:`status`), in the order given.

        Args:
            master_ids: stored masters' ids.
            timeout: seconds each check may take.

        Raises:
            MasterNotFound: an id is not stored.
        """
        from micado.master.status import check_masters

        return check_masters([self.store.get(master_id) for master_id in master_ids], timeout=timeout)

    def urls(self) -> dict[str, str]:
        """The master's web addresses: ``dashboard``, ``grafana``, ``prometheus``, ``kubernetes``, ``submitter``."""
        from micado.master.status import master_urls

        return master_urls(self._require_record())

    def kubeconfig(self, path: str | Path | None = None, *, timeout: float = 60.0) -> Kubeconfig:
        """Fetch the cluster's admin kubeconfig over SSH and write it (mode 0600) for ``kubectl``.

        It points at the master's address (port 6443); when that port does not answer
        from here, ``result.hint`` says how to tunnel it over SSH.

        Args:
            path: where to write it; default ``<MiCADO dir>/kube/<id>.yaml``.
            timeout: seconds for the SSH copy.

        Returns:
            The file, its server, whether the server answered, and the hint.

        Raises:
            InstallError: SSH failed, or the master has no kubeconfig.
        """
        from micado.master import operations

        return operations.fetch_kubeconfig(self._current_record(), path, timeout=timeout)

    def ssh_command(self, command: builtins.list[str] | None = None) -> builtins.list[str]:
        """The ``ssh`` command line that logs in to the master (recorded key, user and host key; never ``~/.ssh``).

        Args:
            command: the remote command's words; none for a login shell.
        """
        from micado.master import operations

        return operations.ssh_argv(self._require_record(), list(command or []), tty=not command)

    def demos(self, *, progress: ProgressCallback | bool | None = None) -> builtins.list[Demo]:
        """The demo ADTs of the release this master runs (:mod:`micado.demos`), to fill in and deploy.

        Raises:
            MicadoException: the record does not say which release made the master.
            InstallError: the release cannot be had again, or is no longer the one it was made with.
        """
        from micado.demos import find_demos
        from micado.master.release import recorded_release

        return find_demos(recorded_release(self._require_record(), progress=as_callback(progress)).root)

    def _current_record(self) -> MasterRecord:
        """The current master's record as stored now (another program may have changed it)."""
        record = self._require_record()
        self._record = self.store.get(record.id)
        if self._record.state == IMPORTED:
            raise MicadoException(self._imported_message(self._record, "changes it"))
        return self._record

    def _play_options(self, timeout: float, progress: ProgressCallback | bool | None) -> PlayOptions:
        from micado import checks
        from micado.master.operations import PlayOptions

        return PlayOptions(as_callback(progress), checks.duration("timeout", timeout), self._ansible_args)

    # -- create ----------------------------------------------------------------------------

    def create(
        self, *, image: str | None = None, flavor: str | None = None, network: str | None = None,
        keypair: str | None = None, security_group: str = "all", region: str | None = None,
        micado_user: str = "admin", micado_password: str | None = None, micado_version: str | None = None,
        playbook: str | Path | None = None, settings: dict[str, Any] | None = None,
        registry_credentials: str | Path | None = None, vault_password: str | None = None,
        gce_credentials: str | Path | None = None, tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None, ssh_user: str = "ubuntu", ssh_port: int = 22,
        api_port: int = 443, remote_cert_path: str = DEFAULT_REMOTE_CERT_PATH, boot_timeout: float = 900.0,
        ssh_timeout: float = 600.0, install_timeout: float = 3600.0, api_timeout: float = 600.0,
        progress: ProgressCallback | bool | None = None, **cloud_options: Any,
    ) -> str:
        """Create a MiCADO master: start a VM, deploy MiCADO on it, and remember it.

        Every argument is checked and the cloud credentials are read before anything is
        made. If a step fails after the VM exists, the VM is deleted, a floating IP
        allocated for it is released, no record is kept, and the step's error is raised
        with ``error.step`` naming the step (``prepare``, ``launch``, ``ssh``, ``ansible``,
        ``api``, ``certificate``, ``store``).

        Args:
@CREATE_ARGUMENTS@
            progress: a ``callback(stage, message)``, or ``True`` for console lines.
            **cloud_options: the launcher's own arguments, declared by it
                (:attr:`~micado.launcher.base.Launcher.options`); OpenStack: ``auth_url``
                (required), ``project_id`` (required with password credentials),
                ``user_domain_name``, ``floating_network``; EC2: ``endpoint_url``, ``address``.

        Returns:
            The master id (the cloud's server id).

        Raises:
            InvalidArgument: an argument is missing or malformed (nothing was made).
            CredentialsError: the credentials file is missing or wrong (nothing was made).
            LaunchError: the cloud refused or failed to start the VM.
            MicadoTimeout: a wait ran past its deadline.
            InstallError: SSH or the deployment failed (see ``error.log_path``).
        """
        arguments = {name: value for name, value in locals().items()
                     if name not in ("self", "progress", "cloud_options")}
        self._remember_vault_password(vault_password)
        from micado.launcher.registry import launcher_class
        from micado.master.lifecycle import Creation
        from micado.master.spec import CreateSpec

        if self._record is not None:
            raise MicadoException(f"this client already manages master {self.id}; use a new MicadoClient")
        launcher = launcher_class(self.launcher_name)
        login = self._configured_login()
        spec = CreateSpec.build({**arguments, **cloud_options}, launcher,
                                login.create_defaults() if login is not None else None).checked(launcher)
        creation = Creation(spec, launcher_name=self.launcher_name, store=self.store, connect=self._connect,
                            api_version=self._api_options.get("version") or "v2.0", report=as_callback(progress),
                            ansible_args=self._ansible_args, cloud=login)
        self.timings = creation.timings
        self._record, self._api = creation.run()
        creation.report("done", f"master {self._record.id} ready at {self._record.endpoint}")
        return self._record.id

    create.__doc__ = (create.__doc__ or "").replace("@CREATE_ARGUMENTS@", arguments_doc())

    def deploy(
        self, host: str, ssh_key: str | Path, *, micado_user: str = "admin", micado_password: str | None = None,
        micado_version: str | None = None, playbook: str | Path | None = None,
        settings: dict[str, Any] | None = None, registry_credentials: str | Path | None = None,
        vault_password: str | None = None, gce_credentials: str | Path | None = None,
        tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
        ssh_user: str = "ubuntu", ssh_port: int = 22, api_port: int = 443,
        remote_cert_path: str = DEFAULT_REMOTE_CERT_PATH, ssh_timeout: float = 600.0,
        install_timeout: float = 3600.0, api_timeout: float = 600.0,
        progress: ProgressCallback | bool | None = None,
    ) -> str:
        """Install MiCADO on a machine you already have (the official client's ``up``).

        The same installer, certificate and record as :meth:`create`, without a cloud:
        SSH logs in to ``host`` with your own key (read, never copied or changed; its
        host key is kept in micado-client's own known_hosts, ``~/.ssh`` is not touched).
        :meth:`destroy` of such a master removes its applications and its record and
        never touches the machine. The cloud credentials file is handed to the master,
        as with :meth:`create`, for its worker nodes; without one, it is derived from the
        cloud of your ``clouds.yaml`` named to the client (``MicadoClient(cloud=...)``).

        Args:
            host: the machine's address (IP or DNS name).
            ssh_key: your private key file authorised for ``ssh_user`` on it.
@DEPLOY_ARGUMENTS@
            progress: a ``callback(stage, message)``, or ``True`` for console lines.

        Returns:
            The new master's id, ``host-<hex>``.

        Raises:
            InvalidArgument: an argument is missing or malformed (nothing was done).
            CredentialsError: there is neither a cloud credentials file nor a cloud
                named (or the cloud's configuration is unusable).
            MicadoTimeout: a wait ran past its deadline.
            InstallError: SSH or the deployment failed (see ``error.log_path``); the
                record is removed, the machine is left as the play left it.
        """
        arguments = {name: value for name, value in locals().items()
                     if name not in ("self", "progress", "host", "ssh_key")}
        self._remember_vault_password(vault_password)
        from micado.master.deployment import Deployment, check_host_arguments
        from micado.master.spec import CreateSpec

        if self._record is not None:
            raise MicadoException(f"this client already manages master {self.id}; use a new MicadoClient")
        spec = CreateSpec.build(arguments)
        found = check_host_arguments(host, ssh_key) + spec.problems(None)
        if found:
            raise InvalidArgument("; ".join(found))
        deployment = Deployment(spec, host=host.strip(), ssh_key=Path(ssh_key), store=self.store,
                                connect=self._connect, api_version=self._api_options.get("version") or "v2.0",
                                report=as_callback(progress), ansible_args=self._ansible_args,
                                cloud=self._configured_login())
        self.timings = deployment.timings
        self._record, self._api = deployment.run()
        deployment.report("done", f"master {self._record.id} ready at {self._record.endpoint}")
        return self._record.id

    deploy.__doc__ = (deploy.__doc__ or "").replace("@DEPLOY_ARGUMENTS@", arguments_doc(ANY))

    # -- attach / list / destroy --------------------------------------------------------

    def attach(self, master_id: str | None = None, *, micado_id: str | None = None) -> None:
        """Work with a master created earlier, possibly by another program.

        Args:
            master_id: the id :meth:`create` returned, whole (the command line's
                beginnings of ids are turned into ids by
                :meth:`~micado.config.store.MasterStore.resolve`).
            micado_id: the same, by the name the official micado-client 0.12 uses
                (``client.micado.attach(micado_id=...)``); give one of the two.

        A master of the official micado-client 0.12 (state ``imported``, from its
        ``micados:`` entries in the same ``data.yml``) is attached with the endpoint, web
        login and certificate that client recorded, for its applications.

        Raises:
            InvalidArgument: ``master_id`` is not text, or is empty or blank; or both or
                neither of ``master_id`` and ``micado_id`` are given.
            MasterNotFound: no master with that id is recorded (the message lists the known ids).
            MicadoException: the master is still being created, or it is an imported one the
                official client did not finish deploying (no web login recorded).
        """
        if (master_id is None) == (micado_id is None):
            raise InvalidArgument("give the master's id: attach(master_id) (or micado_id=, the 0.12 name), "
                                  "one of the two")
        chosen = master_id if master_id is not None else micado_id
        assert chosen is not None
        record = self.store.get(chosen)
        if record.state == "creating":
            raise MicadoException(self._creating_message(record))
        if record.state == IMPORTED and not (record.micado_user and record.micado_password):
            raise MicadoException(
                f"master {record.id} was recorded by the official micado-client, which did not finish "
                "deploying it (its entry has no micado_user/micado_password): finish or destroy it with that client"
            )
        self._api = self._connect(record)
        self._record = record

    def list(self) -> list[dict[str, Any]]:
        """The masters this client knows (created here or by another program), without secrets."""
        return [_public(record) for record in self.store.list()]

    def destroy(self, master_id: str | None = None, *, timeout: float = 900.0,
                progress: ProgressCallback | bool | None = None, vault_password: str | None = None) -> None:
        """Delete the master's applications (forced), then its VM, its record and its certificate.

        A master whose VM has already gone is still removed locally, with a warning. A
        master whose create was killed (state ``creating``, its process gone) is removed
        with what its launch made (see :meth:`cleanup`).

        Args:
            master_id: a recorded master; default: the one created or attached.
            timeout: seconds to wait until the VM is gone.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.
            vault_password: the password of a vaulted credentials file (default: the one
                given to this client before, else ``MICADO_VAULT_PASSWORD_FILE``'s).

        Raises:
            MicadoException: no master was created or attached, the master is still
                being created by a running process, or it is one of the official
                micado-client's (state ``imported``: destroy it with that client).
            InvalidArgument: ``master_id`` is given but is not text, or is empty or blank
                (never taken as "every master").
            MasterNotFound: ``master_id`` is not recorded.
            LaunchError: the cloud refused to delete the VM (the record is kept, so you can retry).
        """
        from micado.installer import ssh

        self._remember_vault_password(vault_password)
        report = as_callback(progress)
        if master_id is not None:
            stored = self.store.get(master_id)
            if stored.state == "creating":
                self._destroy_interrupted(stored, report)
                return
            if stored.state == IMPORTED:
                raise MicadoException(self._imported_message(stored, "destroys it"))
            self.attach(master_id)
        record = self._require_record()
        if record.state == IMPORTED:
            raise MicadoException(self._imported_message(record, "destroys it"))
        if record.extra.get("deployed"):  # a host the user had: never touched
            if self._api is not None:
                self._delete_applications(self._api, report)
            log.info("master %s: deployed on %s; the machine is left as it is", record.id, record.ip)
        else:
            self._destroy_vm(record, timeout, report)
        self.store.remove(record.id)
        if record.cert_path:
            Path(record.cert_path).unlink(missing_ok=True)
        ssh.forget_host(record.ip, int(record.extra.get("ssh_port", 22)))
        _forget_day2(record)
        if self._api is not None:
            self._api.close()
        self._record, self._api = None, None
        log.info("master %s: destroyed", record.id)
        report("destroy", f"master {record.id} destroyed")

    def _destroy_vm(self, record: MasterRecord, timeout: float, report: ProgressCallback) -> None:
        """Delete the applications, then the VM (a VM already gone is only reported)."""
        from micado.launcher.base import LaunchedVM

        launcher = self._launcher_for(record)
        if launcher.state(record.id) is None:
            log.warning("master %s: its VM no longer exists; removing it locally", record.id)
            report("destroy", f"VM {record.id} is already gone; cleaning up locally")
        else:
            if self._api is not None:
                self._delete_applications(self._api, report)
            report("destroy", f"deleting VM {record.id}")
            log.info("master %s: deleting its VM", record.id)
            launcher.delete(LaunchedVM.from_dict(record.extra), timeout=timeout, progress=report)

    def cleanup(
        self, *, dry_run: bool = False, progress: ProgressCallback | bool | None = None,
        include_unowned: bool = False, min_age: float | str | timedelta = 7200.0, vault_password: str | None = None,
    ) -> builtins.list[CleanupItem]:  # (``list`` here is the method above)
        """Find and remove what killed creates of this MiCADO dir left behind.

        ``create`` records its intent (state ``creating``) before it touches the cloud,
        and marks everything it makes with this MiCADO dir's store identity (a random id
        kept in the dir, file ``store-id``) next to the launch token, so a create killed
        at any point (SIGKILL included) can be cleaned up here:

        * records stuck in ``creating`` whose process is gone, with the Ansible
          processes still running for them and their working copies (which may hold
          credentials); a create started on another host is never taken as gone;
        * servers and floating IPs / Elastic IPs on the recorded clouds that carry this
          store's identity but belong to no finished master and no create still running;
        * working copies and ssh control folders nobody owns.

        Finished masters and creates still running (in this or another process) are
        never touched. Servers and addresses that carry **another** store's identity
        (another MiCADO dir, user or machine on the same account), or none (made by
        an earlier micado-client, or tagged by other tooling), are listed as not ours
        (``item.ours`` is ``False``, ``item.left_alone`` says why) and left alone.

        Args:
            dry_run: only report what would be removed.
            progress: a ``callback(stage, message)``, or ``True`` for console lines.
            include_unowned: also remove servers and addresses that are not ours, but
                only those whose marks say they were launched at least ``min_age`` ago
                (one whose launch time is unknown is never removed).
            min_age: with ``include_unowned``: seconds, a ``timedelta``, or text such as
                ``"30m"``, ``"2h"`` (the default), ``"1d"``.
            vault_password: the password of a vaulted credentials file (as :meth:`destroy`).

        Returns:
            What was found; ``item.removed`` says whether it went.

        Raises:
            InvalidArgument: ``include_unowned`` is not a bool, or ``min_age`` is not a duration.
            CredentialsError: the cloud credentials file is missing or wrong.
            LaunchError: a cloud could not be asked.
            StoreError: the store cannot be read, or its identity cannot be read or made.
        """
        from micado import checks
        from micado.master.cleanup import clean_up

        if not isinstance(include_unowned, bool):
            raise InvalidArgument(f"include_unowned must be True or False, not {include_unowned!r}")
        if not isinstance(dry_run, bool):
            raise InvalidArgument(f"dry_run must be True or False, not {dry_run!r}")
        seconds = checks.duration("min_age", min_age)
        self._remember_vault_password(vault_password)
        records = [record for record in self.store.list() if record.state != IMPORTED]  # not ours to clean
        return clean_up(records, self._launcher_for, self._forget, dry_run=dry_run,
                        report=as_callback(progress), store_id=self.store.identity(),
                        include_unowned=include_unowned, min_age=seconds)

    def _destroy_interrupted(self, record: MasterRecord, report: ProgressCallback) -> None:
        """Remove a master whose create was killed: what carries its launch marks, then the record."""
        from micado.master.cleanup import creator_running

        if creator_running(record):
            raise MicadoException(self._creating_message(record))
        if record.launcher == "none":  # a deploy: nothing was made on a cloud
            self._forget(record)
            report("destroy", f"master {record.id} (its deploy was interrupted) removed")
            return
        launcher = self._launcher_for(record)
        name = record.extra.get("launch_name") or record.name
        token, store_id = record.extra.get("launch_token"), self.store.identity()
        marked = [resource for resource in launcher.marked() if resource.name == name
                  and resource.store in (store_id, None)  # never another MiCADO dir's
                  and (resource.kind != "server" or not token or resource.token == token)]
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

    def _imported_message(self, record: MasterRecord, what: str) -> str:
        return (f"master {record.id} was recorded by the official micado-client (state 'imported', its entry "
                f"under 'micados:' in {self.store.path}); micado-client uses it for applications only and never "
                f"{what}: use the official client for that")

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

    def _configured_login(self, name: str | None = None) -> ConfiguredLogin | None:
        """The login from the user's own configuration of the cloud, when it is the one to use.

        That is: a cloud was named (``MicadoClient(cloud=...)``, or the record's), or the
        launcher finds one of its own accord (OpenStack without a credentials file:
        ``OS_CLOUD``/``OS_AUTH_URL``); see :meth:`~micado.launcher.base.Launcher.configured_login`.
        """
        from micado.config import paths
        from micado.launcher.registry import launcher_class

        return launcher_class(self.launcher_name).configured_login(
            name if name is not None else self.cloud, credentials_file_exists=paths.credentials_file().exists())

    def _login_for(self, record: MasterRecord) -> tuple[type[Launcher], ConfiguredLogin | None]:
        """The launcher a record was made with (a deployed host: this client's), and the login from the
        user's own configuration of its cloud when that is the one to use (else: the credentials file).

        A cloud named to this client comes first, then the one the master was made with
        (unless a credentials file is there now).
        """
        from micado.config import paths
        from micado.launcher.registry import launcher_class
        from micado.master.deployment import DEPLOYED_LAUNCHER

        cls = launcher_class(self.launcher_name if record.launcher == DEPLOYED_LAUNCHER else record.launcher)
        named = record.extra.get("os_cloud")
        if self.cloud is not None and cls.config_source:
            named = self.cloud
        elif paths.credentials_file().exists():
            named = None
        name = named if isinstance(named, str) else None
        login = cls.configured_login(name, credentials_file_exists=paths.credentials_file().exists())
        assert name is None or login is not None  # a name was given: the launcher found it, or raised
        return cls, login

    def _remember_vault_password(self, password: str | None) -> None:
        """Keep a vault password given to a call (in memory) for the cloud logins of later calls."""
        if password is not None:
            from micado.config.credentials.vault import check_vault_password

            self._vault_password = check_vault_password(password)

    def _launcher_for(self, record: MasterRecord) -> Launcher:
        """The launcher a record was made with, logged in with today's credentials (file or own configuration)."""
        from micado.config.credentials import load_credentials
        from micado.master.records import cloud_fields_of

        cls, login = self._login_for(record)
        credentials = (login.credentials if login is not None
                       else load_credentials(cls.credential_type, vault_password=self._vault_password))
        return cls.from_record(credentials, cloud_fields_of(record))

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
            for key, value in self.info().items() if not isinstance(value, (dict, builtins.list))
        )
        if not rows:
            return html.escape(repr(self))
        links = " | ".join(f'<a href="{html.escape(url, quote=True)}" target="_blank">{html.escape(name)}</a>'
                           for name, url in self.urls().items())
        return f"<b>MiCADO master</b><table>{rows}</table><p>{links}</p>"


def _forget_day2(record: MasterRecord) -> None:
    """Remove what day-2 commands left of a master: idle working copies, its default kubeconfig, its
    agents' host keys. Edge files are the user's (written where asked) and stay."""
    import shutil

    from micado.config import paths
    from micado.installer import ssh
    from micado.master.cleanup import day2_copy_in_use

    server_id = record.extra.get("server_id") or record.id
    work_root = paths.micado_dir() / "work"
    for folder in work_root.glob(f"{server_id}.*") if work_root.is_dir() else []:
        if not day2_copy_in_use(folder):
            shutil.rmtree(folder, ignore_errors=True)
    paths.kubeconfig_file(record.id).unlink(missing_ok=True)
    for agent in record.extra.get("agents") or []:
        if isinstance(agent, dict) and isinstance(agent.get("host"), str):
            ssh.forget_host(agent["host"], int(agent.get("ssh_port", 22)))


def _public(record: MasterRecord) -> dict[str, Any]:
    fields = ("id", "name", "state", "ip", "endpoint", "api_version", "cert_path", "micado_user", "launcher",
              "auth_url", "region_name", "project_id", "created")
    public = {field: getattr(record, field, None) for field in fields}
    release = record.extra.get("release")
    if isinstance(release, dict):
        public["release"] = release.get("version") or release.get("source")
    if record.extra.get("agents"):
        public["agents"] = [agent.get("name") for agent in record.extra["agents"] if isinstance(agent, dict)]
    return public
