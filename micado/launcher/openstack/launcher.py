"""The OpenStack launcher: Keystone v3 login, Nova servers, Glance images, Neutron networking.

Who does what (all three SDKs share one authenticated keystoneauth1 session):

* **keystoneauth1**: the ``v3.Password`` / ``v3.ApplicationCredential`` /
  ``v3.OidcAccessToken`` (OpenID Connect through Keystone federation) login, the
  token, the service catalog and the HTTP session (timeouts, TLS verification);
* **python-novaclient**: Nova (compute 2.1): flavors, key pairs, creating,
  watching and deleting the server;
* **openstacksdk**: Glance images and Neutron networks, security groups, ports and
  floating IPs (Nova's own floating-IP calls are gone since microversion 2.44).

None of them is imported before the launcher first talks to the cloud, and none of
their exceptions leaves this module: they become :class:`~micado.exceptions.LaunchError`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from micado import checks
from micado.arguments import Argument
from micado.exceptions import InvalidArgument, LaunchError
import micado.launcher.openstack.credentials as credentials_entry
from micado.launcher.openstack.floating_ips import FLOATING_IP_MARK, FloatingIPs, read_floating_ip_description
from micado.launcher.openstack.session import normalise_auth_url
from micado.launcher.base import (
    CREATOR_TAG, LAUNCH_TAG, LAUNCHED_TAG, STORE_TAG, Launcher, LaunchedVM, LaunchSpec, MarkedResource, Removal,
    check_spec, launch_marks, pick_all,
)
from micado.progress import ProgressCallback, as_callback, wait_until
from micado.undo import UndoStack

if TYPE_CHECKING:
    from pathlib import Path

    from micado.config.credentials import ApplicationCredentialAuth, OIDCAuth, PasswordAuth
    from micado.config.credentials.keystone import KeystoneAuth
    from micado.launcher.openstack import clouds_yaml

logger = logging.getLogger(__name__)

__all__ = ["OpenStackLauncher", "LAUNCH_TAG", "FLOATING_IP_MARK"]

STAGE = "launch"
#: Seconds an undo step may wait for a server to disappear.
UNDO_TIMEOUT = 120.0
# LAUNCH_TAG (server metadata key holding a launch's random token: when the create request
# fails without an answer, the undo finds the server by it) and the other marks: see base.
#: How often the attach retries with another address when a free one was taken meanwhile.
ATTACH_ATTEMPTS = 3


class OpenStackLauncher(FloatingIPs, Launcher):
    """Starts the MiCADO master on an OpenStack cloud (Keystone v3, Nova, Glance, Neutron).

    Constructing it checks the arguments and makes no request.

    Args:
        credentials: a :class:`~micado.config.credentials.PasswordAuth`,
            :class:`~micado.config.credentials.ApplicationCredentialAuth` or
            :class:`~micado.config.credentials.OIDCAuth` (OpenID Connect: the
            refresh token is exchanged at the provider at the first cloud call).
        auth_url: the Keystone URL, e.g. ``https://cloud:5000/v3`` (``/v3`` is added
            when missing).
        project_id: the project to work in; required for password and OpenID Connect
            login (here or in the credentials), ignored for application credentials
            (they are bound to a project).
        region: the catalog region; ``None`` accepts whichever the catalog offers.
        user_domain_name: the user's domain for password login; the credentials'
            own ``user_domain_name`` is used when this is left at ``"Default"``.
        request_timeout: seconds for each HTTP request (and for the whole OpenID
            Connect token exchange).
        verify: ``True`` (system CAs), a CA bundle path, or ``False`` (no check);
            it applies to the OpenID Connect provider too.

    Raises:
        InvalidArgument: a bad URL, credentials of another type, a password or
            OpenID Connect login without project id, a non-positive timeout, a
            missing CA bundle.

    The first cloud call logs in. With OpenID Connect it raises
    :class:`~micado.exceptions.CredentialsError` when the provider refuses the
    refresh token (expired or revoked) or client, or Keystone knows no such identity
    provider or refuses the access token; :class:`~micado.exceptions.LaunchError` when
    the provider cannot be reached, is slower than ``request_timeout`` or answers
    something else than OpenID Connect. Either comes before any server is made.
    """

    options = (
        Argument("auth_url", "Keystone v3 URL of the cloud", kind="url", required=True,
                 doc="Keystone v3 URL of the cloud."),
        Argument("project_id", "OpenStack project id (required with password credentials)",
                 doc="the OpenStack project (required with password credentials)."),
        Argument("user_domain_name", "Keystone domain of the user", "Default", doc="Keystone domain of the user."),
        Argument("floating_network", "external network to allocate a floating IP from", launch=True,
                 doc="external network to allocate a floating IP from."),
    )
    requires = ("network", "keypair")
    config_source = "clouds.yaml"
    name = "openstack"
    credential_type = "nova"
    credentials_template = credentials_entry.TEMPLATE
    credentials_file_entry = credentials_entry.FILE_ENTRY
    credentials_file_pre_authentication = credentials_entry.FILE_PRE_AUTHENTICATION

    @classmethod
    def read_credentials(cls, auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> KeystoneAuth:
        """The Keystone login of the ``nova`` entry: see :mod:`micado.launcher.openstack.credentials`."""
        return credentials_entry.read_entry(auth_data, file, where, document)

    def __init__(
        self,
        credentials: PasswordAuth | ApplicationCredentialAuth | OIDCAuth,
        *,
        auth_url: str,
        project_id: str | None = None,
        region: str | None = None,
        user_domain_name: str = "Default",
        request_timeout: float = 30.0,
        verify: bool | str | os.PathLike[str] = True,
    ) -> None:
        from micado.config.credentials import ApplicationCredentialAuth, OIDCAuth, PasswordAuth

        if not isinstance(credentials, (PasswordAuth, ApplicationCredentialAuth, OIDCAuth)):
            raise InvalidArgument(
                "credentials must be a PasswordAuth, an ApplicationCredentialAuth or an OIDCAuth "
                f"(see micado.config.credentials.load_credentials), not {type(credentials).__name__}"
            )
        self.auth_url = normalise_auth_url(auth_url)
        self.credentials = credentials
        self.region = region or None
        if isinstance(credentials, PasswordAuth):
            self.project_id = project_id or credentials.project_id
            if not self.project_id:
                raise InvalidArgument(
                    "project_id is required for username/password login: pass project_id= "
                    "or set project_id in the nova entry of the credentials file"
                )
            self.user_domain_name = (
                credentials.user_domain_name
                if user_domain_name == "Default" and credentials.user_domain_name
                else user_domain_name
            )
            if not self.user_domain_name:
                raise InvalidArgument("user_domain_name must not be empty (the default is 'Default')")
        elif isinstance(credentials, OIDCAuth):
            self.project_id = project_id or credentials.project_id
            if not self.project_id:
                raise InvalidArgument(
                    "project_id is required for OpenID Connect login (the federated token is scoped to it): "
                    "pass project_id= or set project_id in the nova entry of the credentials file"
                )
            self.user_domain_name = None  # the identity provider says who the user is
        else:
            self.project_id = None
            self.user_domain_name = None
        checks.seconds("request_timeout", request_timeout)
        self.request_timeout = float(request_timeout)
        if not isinstance(verify, bool):
            if not os.path.exists(verify):
                raise InvalidArgument(f"verify={os.fspath(verify)!r}: no such CA bundle file")
            verify = os.fspath(verify)
        self.verify = verify
        self._session: Any = None
        self._sdk: Any = None
        self._nova: Any = None

    @classmethod
    def missing_hint(cls, missing: list[str]) -> str:
        """Without a Keystone URL, the user may mean a cloud of their ``clouds.yaml``."""
        if "auth_url" not in missing:
            return ""
        return (" (or log in as a cloud of your clouds.yaml: MicadoClient(cloud=NAME), micado master "
                "create --cloud NAME)")

    @classmethod
    def configured_login(cls, name: str | None, *, credentials_file_exists: bool) -> clouds_yaml.OpenStackCloud | None:
        """A cloud of openstacksdk's configuration: the one named, or, without a credentials
        file, the one ``OS_CLOUD``/``OS_AUTH_URL`` describe (see :func:`.clouds_yaml.load_cloud`)."""
        from micado.launcher.openstack.clouds_yaml import load_cloud

        if name is not None:
            return load_cloud(name)
        if not credentials_file_exists and (os.environ.get("OS_CLOUD") or os.environ.get("OS_AUTH_URL")):
            return load_cloud(None)
        return None

    def __repr__(self) -> str:
        return (
            f"<OpenStackLauncher {self.auth_url} login={self._login_kind()} "
            f"project={self.project_id!r} region={self.region!r}>"
        )

    @classmethod
    def from_arguments(cls, credentials: Any, arguments: Mapping[str, Any]) -> OpenStackLauncher:
        """The launcher for ``create()``'s cloud arguments (``auth_url``, ``project_id``, ``region``,
        ``user_domain_name``); see :meth:`Launcher.from_arguments`."""
        auth_url: Any = arguments.get("auth_url")  # None or malformed: the constructor says so
        return cls(credentials, auth_url=auth_url, project_id=arguments.get("project_id"),
                   region=arguments.get("region"), user_domain_name=arguments.get("user_domain_name") or "Default")

    def record_fields(self) -> dict[str, Any]:
        """What a master record keeps to reach this cloud again (the Keystone login, never secrets)."""
        return {"auth_url": self.auth_url, "region_name": self.region, "project_id": self.project_id,
                "user_domain_name": self.user_domain_name}

    @classmethod
    def from_record(cls, credentials: Any, fields: Mapping[str, Any]) -> OpenStackLauncher:
        """The launcher for a master record's :meth:`record_fields`."""
        auth_url: Any = fields.get("auth_url")  # None or malformed: the constructor says so
        return cls(credentials, auth_url=auth_url, project_id=fields.get("project_id"),
                   region=fields.get("region_name"), user_domain_name=fields.get("user_domain_name") or "Default")


    # --- resolution -------------------------------------------------------------------

    def _resolve(self, spec: LaunchSpec) -> dict[str, Any]:
        """Find every resource of the spec by name or id; return their ids."""
        sdk, nova = self._connect()
        images = self._call("list images", lambda: [(i.id, i.name) for i in sdk.image.images()])
        networks = self._call("list networks", lambda: list(sdk.network.networks()))
        flavors = self._call("list flavors", lambda: [(f.id, f.name) for f in nova.flavors.list()])
        # Filtered by project: an admin sees every project's groups, each with its own "default".
        groups = self._call("list security groups", lambda: [
            (g.id, g.name) for g in sdk.network.security_groups(project_id=self._project())])
        external = [(n.id, n.name) for n in networks if n.is_router_external]
        lookups: list[tuple[str, str, Any]] = [
            ("image", spec.image, images),
            ("flavor", spec.flavor, flavors),
            ("network", spec.network, [(n.id, n.name) for n in networks]),
            ("security group", spec.security_group, groups),
        ]
        if spec.keypair is not None:
            keypairs = self._call("list key pairs", lambda: [(k.name, k.name) for k in nova.keypairs.list()])
            lookups.append(("key pair", spec.keypair, keypairs))
        if spec.floating_network is not None:
            lookups.append(("external network", spec.floating_network, external))
        ids = pick_all(lookups)  # every unknown resource in one message
        resolved: dict[str, Any] = dict(zip(("image", "flavor", "network", "security_group"), ids[:4], strict=True))
        resolved["keypair"] = ids[4] if spec.keypair is not None else None
        resolved["external"] = [(ids[-1], ids[-1])] if spec.floating_network is not None else external
        return resolved

    # --- launch -----------------------------------------------------------------------

    def validate(self, spec: LaunchSpec) -> None:
        """Check the spec without contacting the cloud (see :func:`~micado.launcher.base.check_spec`).

        Raises:
            InvalidArgument: a field is empty or malformed.
        """
        check_spec(spec)

    def launch(
        self, spec: LaunchSpec, *, timeout: float = 600.0, progress: ProgressCallback | None = None
    ) -> LaunchedVM:
        """Start the master server (see :meth:`Launcher.launch`).

        Steps: resolve image, flavor, network, key pair and security group; take a free
        floating IP or allocate one; create the server with the spec's user data; wait
        for ACTIVE (ERROR ends with Nova's fault message); attach the floating IP.

        Undoing stays possible even when an answer is lost: the server carries a random
        token in its metadata (``micado-client-launch``) and an allocated floating IP the
        description ``allocated by micado-client for <name>``, so a create whose answer
        never came (timeout, reset, Ctrl-C) is found and removed. The attach is a
        compare-and-swap on the floating IP's ``revision_number``: when another client
        took the free address meanwhile, another one is chosen. Addresses carrying
        that description are never taken as free (they belong to a launch in progress).
        A KeyboardInterrupt undoes too; a second one stops the undo, and the steps not
        done are added to the exception's notes.

        Raises:
            InvalidArgument: the spec is invalid (nothing was requested).
            LaunchError: a resource is unknown or ambiguous, the cloud refused a step,
                or the server went to ERROR; everything launch made is undone.
            MicadoTimeout: the server was not ACTIVE in time; everything is undone.
        """
        return self._transaction(spec, timeout, progress)

    def _launch(
        self, spec: LaunchSpec, deadline: float, total: float, report: ProgressCallback,
        undo: UndoStack,
    ) -> LaunchedVM:
        report(STAGE, f"logging in to {self.auth_url}")
        sdk, nova = self._connect()
        self._project()  # log in now, so a refusal or a timeout is reported as the login's
        resolved = self._resolve(spec)
        external, named = resolved["external"], spec.floating_network is not None
        marks = launch_marks(spec)
        ip, allocated = self._floating_ip(external, named, spec.name, undo, report, marks)
        # The undo is registered before the request: if the answer is lost (timeout,
        # connection reset, Ctrl-C), the server may exist all the same; the token finds it.
        token = spec.launch_token
        created: list[str] = []
        undo.push(f"delete server {spec.name}", lambda: self._delete_launched(spec.name, token, created))
        server = self._call(
            f"create server '{spec.name}'", nova.servers.create, spec.name, resolved["image"], resolved["flavor"],
            userdata=spec.user_data or None, key_name=resolved["keypair"], meta=marks,
            security_groups=[resolved["security_group"]], nics=[{"net-id": resolved["network"]}],
        )
        server_id = server.id
        created.append(server_id)
        report(STAGE, f"created server {spec.name} ({server_id}); waiting for ACTIVE")
        self._wait_active(server_id, spec.name, deadline, total, report)
        port = wait_until(
            lambda: self._server_port(server_id, resolved["network"]),
            what=f"the network port of server {spec.name}", timeout=max(deadline - time.monotonic(), 1.0),
            stage=STAGE, progress=report,
        )
        for attempt in range(1, ATTACH_ATTEMPTS + 1):
            if self._attach(ip, port.id, spec.name):
                break
            # Someone attached (or changed) the address since we listed it: it is theirs now.
            if allocated:  # ours, but changed by someone else: releasing it could cut them off
                undo.discard(lambda step: step.startswith("release floating IP allocated"))
                logger.warning("floating IP %s allocated for %s was changed by someone else; left to them",
                               ip.floating_ip_address, spec.name)
            if attempt == ATTACH_ATTEMPTS:
                raise LaunchError(f"could not attach a floating IP to server {spec.name}: each of the "
                                  f"{ATTACH_ATTEMPTS} addresses chosen was taken by someone else first")
            report(STAGE, f"floating IP {ip.floating_ip_address} was taken meanwhile; choosing another")
            ip, allocated = self._floating_ip(external, named, spec.name, undo, report, marks)
        undo.push(f"detach floating IP {ip.floating_ip_address}", lambda: self._detach(ip.id))
        report(STAGE, f"server {spec.name} is ACTIVE at {ip.floating_ip_address}")
        fixed = port.fixed_ips[0]["ip_address"] if port.fixed_ips else None
        return LaunchedVM(server_id=server_id, name=spec.name, ip=ip.floating_ip_address, floating_ip_id=ip.id,
                          floating_ip_allocated=allocated, private_ip=fixed, launcher=self.name)

    def _delete_launched(self, name: str, token: str, created: list[str]) -> None:
        """Undo the create: the server made, or, if its answer was lost, those carrying the token."""
        _, nova = self._connect()
        ids = list(created) or self._call(f"look for server {name}", lambda: [
            server.id for server in nova.servers.list(search_opts={"name": name})
            if server.name == name and (getattr(server, "metadata", None) or {}).get(LAUNCH_TAG) == token])
        for server_id in ids:
            self._delete_server(server_id, UNDO_TIMEOUT)

    def _wait_active(
        self, server_id: str, name: str, deadline: float, total: float, report: ProgressCallback
    ) -> None:
        _, nova = self._connect()
        last = {"status": None}

        def check() -> bool | None:
            server = self._call(f"get server {name}", nova.servers.get, server_id)
            status = server.status
            if status != last["status"]:
                last["status"] = status
                report(STAGE, f"server {name}: {status}")
            if status == "ACTIVE":
                return True
            if status == "ERROR":
                fault = getattr(server, "fault", None) or {}
                raise LaunchError(f"server {name} ({server_id}) went to ERROR: "
                                  f"{self._said(fault.get('message') or 'Nova gave no fault message')}")
            return None

        what = f"server {name} ({server_id}) to become ACTIVE"
        wait_until(check, what=what, timeout=max(deadline - time.monotonic(), 0.0), stage=STAGE, progress=report,
                   on_timeout=lambda: f"server {name} ({server_id}) was still {last['status'] or 'not visible'} "
                                      f"when the launch timeout of {total:g} s ran out")

    def _server_port(self, server_id: str, network_id: str) -> Any | None:
        sdk, _ = self._connect()
        ports = self._call("list the server's ports", lambda: list(sdk.network.ports(device_id=server_id)))
        on_network = [p for p in ports if p.network_id == network_id] or ports
        return on_network[0] if on_network else None

    # --- what our launches made ------------------------------------------------------------

    def marked(self) -> list[MarkedResource]:
        """Servers carrying ``micado-client-launch`` metadata and floating IPs described as ours
        (``allocated by micado-client for ...``), with the store identity and launch time in their marks.

        See :meth:`Launcher.marked`.
        """
        sdk, nova = self._connect()
        found = []
        for server in self._call("list servers", lambda: list(nova.servers.list())):
            metadata = getattr(server, "metadata", None) or {}
            token = metadata.get(LAUNCH_TAG)
            if token:
                found.append(MarkedResource(kind="server", id=server.id, name=server.name, token=token,
                                            store=metadata.get(STORE_TAG) or None,
                                            launched=metadata.get(LAUNCHED_TAG) or None,
                                            creator=metadata.get(CREATOR_TAG) or None))
        for ip in self._call("list floating IPs", lambda: list(sdk.network.ips())):
            read = read_floating_ip_description(ip.description or "")
            if read is not None:
                name, marks = read
                ports = [] if not ip.port_id else [
                    self._call("get the floating IP's port", sdk.network.get_port, ip.port_id)]
                found.append(MarkedResource(
                    kind="address", id=ip.id, name=name, token=marks.get(LAUNCH_TAG),
                    address=ip.floating_ip_address, attached_to=ports[0].device_id if ports else None,
                    store=marks.get(STORE_TAG), launched=marks.get(LAUNCHED_TAG), creator=marks.get(CREATOR_TAG)))
        return found

    def remove_marked(self, resource: MarkedResource, *, timeout: float = 300.0,
                      progress: ProgressCallback | None = None) -> None:
        """Delete a marked server (waiting until gone) or detach and release a marked address."""
        report = as_callback(progress)
        if resource.kind == "server":
            report("cleanup", f"deleting server {resource.name} ({resource.id})")
            self._delete_server(resource.id, timeout, report)
        elif resource.kind == "address":
            report("cleanup", f"releasing floating IP {resource.address} allocated for {resource.name}")
            if resource.attached_to:
                self._detach(resource.id)
            self._release(resource.id)
        else:
            raise InvalidArgument(f"unknown resource kind {resource.kind!r}")

    # --- state and delete -------------------------------------------------------------

    def state(self, server_id: str) -> str | None:
        """Return the server's Nova status, or ``None`` when it does not exist.

        Raises:
            LaunchError: the cloud could not be asked.
        """
        from novaclient import exceptions as nova_exc

        _, nova = self._connect()
        with self._cloud(f"get server {server_id}"):
            try:
                return str(nova.servers.get(server_id).status)
            except nova_exc.NotFound:
                return None

    def delete(
        self,
        vm: LaunchedVM | str,
        *,
        floating_ip_id: str | None = None,
        floating_ip_allocated: bool = False,
        timeout: float = 300.0,
        progress: ProgressCallback | None = None,
    ) -> Removal:
        """Detach and (if we allocated it) release the floating IP, delete the server, wait until gone.

        See :meth:`Launcher.delete`.

        Raises:
            InvalidArgument: ``vm`` is neither a LaunchedVM nor a server id.
            LaunchError: the cloud refused a step.
            MicadoTimeout: the server was still there after ``timeout`` seconds.
        """
        if isinstance(vm, LaunchedVM):
            server_id, floating_ip_id, floating_ip_allocated = vm.server_id, vm.floating_ip_id, vm.floating_ip_allocated
        elif isinstance(vm, str) and vm:
            server_id = vm
        else:
            raise InvalidArgument(f"vm must be a LaunchedVM or a server id, got {vm!r}")
        checks.seconds("timeout", timeout)
        report = as_callback(progress)
        removal = Removal(server_id=server_id)
        if floating_ip_id:
            self._remove_floating_ip(floating_ip_id, floating_ip_allocated, server_id, removal, report)
        report("delete", f"deleting server {server_id}")
        removal.server_found = self._delete_server(server_id, timeout, report)
        if not removal.server_found:
            removal.warnings.append(f"server {server_id} was already gone")
        report("delete", f"server {server_id} is gone")
        return removal

    def _delete_server(self, server_id: str, timeout: float, report: ProgressCallback | None = None) -> bool:
        """Delete the server and wait until it is gone; ``False`` if it did not exist."""
        from novaclient import exceptions as nova_exc

        _, nova = self._connect()
        with self._cloud(f"delete server {server_id}"):
            try:
                nova.servers.delete(server_id)
            except nova_exc.NotFound:
                return False
        # A cloud that soft-deletes keeps the server as SOFT_DELETED: gone for us.
        wait_until(lambda: True if self.state(server_id) in (None, "DELETED", "SOFT_DELETED") else None,
                   what=f"server {server_id} to be deleted", timeout=timeout, stage="delete",
                   progress=report or as_callback(None))
        return True

