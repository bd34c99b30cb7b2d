"""The OpenStack launcher: Keystone v3 login, Nova servers, Glance images, Neutron networking.

Who does what (all three SDKs share one authenticated keystoneauth1 session):

* **keystoneauth1**: the ``v3.Password`` / ``v3.ApplicationCredential`` login, the
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from micado import checks
from micado.exceptions import InvalidArgument, LaunchError, MicadoException, MicadoTimeout
from micado.launcher.base import Launcher, LaunchedVM, LaunchSpec, MarkedResource, Removal, check_spec, pick
from micado.progress import ProgressCallback, as_callback, wait_until

if TYPE_CHECKING:
    from micado.config.credentials import ApplicationCredentialAuth, PasswordAuth

logger = logging.getLogger(__name__)

__all__ = ["OpenStackLauncher"]

T = TypeVar("T")
STAGE = "launch"
#: Seconds an undo step may wait for a server to disappear.
UNDO_TIMEOUT = 120.0
#: Server metadata key holding a launch's random token: when the create request fails
#: without an answer (timeout, lost connection, Ctrl-C), the undo finds the server by it.
LAUNCH_TAG = "micado-client-launch"
#: Start of the description of the floating IPs a launch allocates. Other launches
#: never take such an address as "free": it belongs to a launch still in progress.
FLOATING_IP_MARK = "allocated by micado-client for "
#: How often the attach retries with another address when a free one was taken meanwhile.
ATTACH_ATTEMPTS = 3


class OpenStackLauncher(Launcher):
    """Starts the MiCADO master on an OpenStack cloud (Keystone v3, Nova, Glance, Neutron).

    Constructing it checks the arguments and makes no request.

    Args:
        credentials: a :class:`~micado.config.credentials.PasswordAuth` or
            :class:`~micado.config.credentials.ApplicationCredentialAuth`.
        auth_url: the Keystone URL, e.g. ``https://cloud:5000/v3`` (``/v3`` is added
            when missing).
        project_id: the project to work in; required for password login (here or
            in the credentials), ignored for application credentials (they are
            bound to a project).
        region: the catalog region; ``None`` accepts whichever the catalog offers.
        user_domain_name: the user's domain for password login; the credentials'
            own ``user_domain_name`` is used when this is left at ``"Default"``.
        request_timeout: seconds for each HTTP request.
        verify: ``True`` (system CAs), a CA bundle path, or ``False`` (no check).

    Raises:
        InvalidArgument: a bad URL, credentials of another type, a password login
            without project id, a non-positive timeout, a missing CA bundle.
    """

    name = "openstack"

    def __init__(
        self,
        credentials: PasswordAuth | ApplicationCredentialAuth,
        *,
        auth_url: str,
        project_id: str | None = None,
        region: str | None = None,
        user_domain_name: str = "Default",
        request_timeout: float = 30.0,
        verify: bool | str | os.PathLike = True,
    ) -> None:
        from micado.config.credentials import ApplicationCredentialAuth, PasswordAuth

        if not isinstance(credentials, (PasswordAuth, ApplicationCredentialAuth)):
            raise InvalidArgument(
                "credentials must be a PasswordAuth or an ApplicationCredentialAuth "
                f"(see micado.config.credentials.load_credentials), not {type(credentials).__name__}"
            )
        self.auth_url = _normalise_auth_url(auth_url)
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

    def __repr__(self) -> str:
        return (
            f"<OpenStackLauncher {self.auth_url} login={self._login_kind()} "
            f"project={self.project_id!r} region={self.region!r}>"
        )

    # --- connections ------------------------------------------------------------------

    def _login_kind(self) -> str:
        return "password" if self.project_id is not None else "application-credential"

    def _describe_login(self) -> str:
        """Who logs in, for messages (never the password or secret)."""
        from micado.config.credentials import PasswordAuth

        creds = self.credentials
        if isinstance(creds, PasswordAuth):
            return f"user '{creds.username}' in domain '{self.user_domain_name}', project '{self.project_id}'"
        return f"application credential '{creds.application_credential_id}'"

    def _connect(self) -> tuple[Any, Any]:
        """Return ``(openstacksdk connection, novaclient client)``, logging in on first use."""
        if self._sdk is None:
            from keystoneauth1 import session as ks_session
            from keystoneauth1.identity import v3
            from novaclient import client as nova_client
            from openstack import connection

            from micado import __version__
            from micado.config.credentials import PasswordAuth

            creds = self.credentials
            if isinstance(creds, PasswordAuth):
                plugin: Any = v3.Password(
                    auth_url=self.auth_url, username=creds.username, password=creds.password,
                    user_domain_name=self.user_domain_name, project_id=self.project_id,
                )
            else:
                plugin = v3.ApplicationCredential(
                    auth_url=self.auth_url,
                    application_credential_id=creds.application_credential_id,
                    application_credential_secret=creds.application_credential_secret,
                )
            session = ks_session.Session(
                auth=plugin, verify=self.verify, timeout=self.request_timeout,
                app_name="micado-client", app_version=__version__,
            )
            self._session = session
            self._nova = nova_client.Client("2.1", session=session, region_name=self.region)
            _disable_completion_cache(self._nova)
            self._sdk = connection.Connection(session=session, region_name=self.region)
        return self._sdk, self._nova

    def _project(self) -> str:
        """The id of the project the token is scoped to (application credentials bring their own)."""
        self._connect()
        return self._call("log in", self._session.get_project_id)

    def close(self) -> None:
        """Close the HTTP session; the next call logs in again."""
        if self._session is not None:
            self._session.session.close()
        self._session = self._sdk = self._nova = None

    @contextmanager
    def _cloud(self, doing: str) -> Iterator[None]:
        """Translate every SDK or Keystone exception raised inside into a LaunchError."""
        try:
            yield
        except MicadoException:
            raise
        except Exception as exc:
            raise self._translate(exc, doing) from exc

    def _call(self, doing: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._cloud(doing):
            return function(*args, **kwargs)

    def _translate(self, exc: Exception, doing: str) -> LaunchError:
        from keystoneauth1 import exceptions as ks_exc
        from novaclient import exceptions as nova_exc
        from openstack import exceptions as sdk_exc

        where = f"the OpenStack cloud at {self.auth_url}"
        if isinstance(exc, (ks_exc.Unauthorized, nova_exc.Unauthorized)) or (
            isinstance(exc, sdk_exc.HttpException) and exc.status_code == 401
        ):
            return LaunchError(
                f"authentication failed at {self.auth_url} for {self._describe_login()}: "
                "the cloud refused the credentials (check the credentials file, project_id and user_domain_name)"
            )
        if isinstance(exc, ks_exc.SSLError):
            return LaunchError(f"TLS check failed while trying to {doing} at {where}: {exc} "
                               "(give verify= a CA bundle, or verify=False)")
        if isinstance(exc, ks_exc.ConnectTimeout):  # keystoneauth's name for any requests timeout
            return LaunchError(f"{where} did not answer within {self.request_timeout:g} s while trying to {doing} "
                               "(request_timeout)")
        if isinstance(exc, ks_exc.ConnectFailure):
            return LaunchError(f"cannot reach {where} while trying to {doing}: {exc}")
        if isinstance(exc, (ks_exc.EndpointNotFound, sdk_exc.EndpointNotFound, sdk_exc.ServiceDisabledException)):
            return LaunchError(f"cannot {doing}: {self._missing_endpoint()}")
        if isinstance(exc, ks_exc.RequestTimeout):
            return LaunchError(f"{where} did not answer within {self.request_timeout:g} s while trying to {doing}")
        if isinstance(exc, nova_exc.ClientException):
            verb = "failed" if isinstance(exc.code, int) and exc.code >= 500 else "refused"
            return LaunchError(f"Nova {verb} to {doing}: {exc.message} (HTTP {exc.code})")
        if isinstance(exc, sdk_exc.HttpException):
            verb = "failed" if (exc.status_code or 0) >= 500 else "refused"
            return LaunchError(f"{where} {verb} to {doing}: {exc.details or exc.message} (HTTP {exc.status_code})")
        if isinstance(exc, (ks_exc.ClientException, sdk_exc.SDKException)):
            return LaunchError(f"cannot {doing} on {where}: {exc}")
        return LaunchError(f"unexpected {type(exc).__name__} while trying to {doing} on {where}: {exc}")

    def _missing_endpoint(self) -> str:
        """Explain a missing catalog endpoint, listing the regions the catalog has."""
        regions: set[str] = set()
        try:
            access = self._session.auth.get_access(self._session)
            for service in access.service_catalog.catalog:
                regions.update(e.get("region_id") or e.get("region") or "" for e in service.get("endpoints", []))
        except Exception as exc:  # only for a better message; the original error is raised anyway
            logger.debug("could not read the service catalog: %s", exc)
        listed = ", ".join(sorted(r for r in regions if r)) or "(none)"
        return f"the service catalog has no public endpoint for it in region {self.region!r}; regions: {listed}"

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
        resolved: dict[str, Any] = {
            "image": pick("image", spec.image, images),
            "flavor": pick("flavor", spec.flavor, flavors),
            "network": pick("network", spec.network, [(n.id, n.name) for n in networks]),
            "security_group": pick("security group", spec.security_group, groups),
            "keypair": None,
            "external": [(n.id, n.name) for n in networks if n.is_router_external],
        }
        if spec.keypair is not None:
            keypairs = self._call("list key pairs", lambda: [(k.name, k.name) for k in nova.keypairs.list()])
            resolved["keypair"] = pick("key pair", spec.keypair, keypairs)
        if spec.floating_network is not None:
            resolved["external"] = [
                (n, n) for n in [pick("external network", spec.floating_network, resolved["external"])]
            ]
        return resolved

    def _floating_ip(
        self, external: list[tuple[str, str]], named: bool, name: str,
        undo: list[tuple[str, Callable[[], None]]], report: ProgressCallback,
    ) -> tuple[Any, bool]:
        """Return ``(floating IP, allocated_by_us)``: a free one, or a new one.

        An allocation registers its undo *before* the request, so an answer that
        never arrives still ends with the address released (found by its description).
        """
        sdk, _ = self._connect()
        external_ids = {net_id for net_id, _ in external}
        free = self._call("list floating IPs", lambda: [
            ip for ip in sdk.network.ips(project_id=self._project())  # never another project's address
            if not ip.port_id and (not named or ip.floating_network_id in external_ids)
            and not (ip.description or "").startswith(FLOATING_IP_MARK)  # another launch's, not free
        ])
        if free:
            report(STAGE, f"using free floating IP {free[0].floating_ip_address}")
            return free[0], False
        if not external:
            raise LaunchError("no unattached floating IP, and no external network to allocate one from")
        if len(external) > 1:
            names = ", ".join(sorted(name or net_id for net_id, name in external))
            raise LaunchError(f"no unattached floating IP, and several external networks ({names}); "
                              "choose one with floating_network=")
        network_id, network_name = external[0]
        description = f"{FLOATING_IP_MARK}{name}"
        made: list[Any] = []
        undo.append((f"release floating IP allocated for {name}",
                     lambda: self._release_allocated(made, description)))
        ip = self._call(f"allocate a floating IP from network '{network_name}'",
                        sdk.network.create_ip, floating_network_id=network_id, description=description)
        made.append(ip)
        report(STAGE, f"allocated floating IP {ip.floating_ip_address}")
        return ip, True

    def _release_allocated(self, made: list[Any], description: str) -> None:
        """Undo an allocation: the address made, or, if its answer was lost, those with its description."""
        sdk, _ = self._connect()
        if made:
            ids = [made[0].id]
        else:
            ids = self._call("list floating IPs", lambda: [
                # filtered here, not by the query: not every Neutron accepts a description filter
                ip.id for ip in sdk.network.ips(project_id=self._project())
                if ip.description == description and not ip.port_id])
        for fip_id in ids:
            self._release(fip_id)

    def _attach(self, ip: Any, port_id: str, name: str) -> bool:
        """Associate ``ip`` with the port unless it changed since it was listed; ``False`` if it did.

        Neutron's ``If-Match: revision_number`` makes this a compare-and-swap, so two
        launches that picked the same free address cannot both take it.
        """
        from openstack import exceptions as sdk_exc

        sdk, _ = self._connect()
        with self._cloud(f"attach floating IP {ip.floating_ip_address} to server {name}"):
            try:
                sdk.network.update_ip(ip.id, port_id=port_id, if_revision=getattr(ip, "revision_number", None))
            except sdk_exc.PreconditionFailedException:
                return False
        return True

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
        self.validate(spec)
        checks.seconds("timeout", timeout)
        report = as_callback(progress)
        deadline = time.monotonic() + timeout
        undo: list[tuple[str, Callable[[], None]]] = []
        try:
            return self._launch(spec, deadline, float(timeout), report, undo)
        except BaseException as exc:
            self._undo(undo, exc, report)
            raise

    def _launch(
        self, spec: LaunchSpec, deadline: float, total: float, report: ProgressCallback,
        undo: list[tuple[str, Callable[[], None]]],
    ) -> LaunchedVM:
        report(STAGE, f"logging in to {self.auth_url}")
        sdk, nova = self._connect()
        self._project()  # log in now, so a refusal or a timeout is reported as the login's
        resolved = self._resolve(spec)
        external, named = resolved["external"], spec.floating_network is not None
        ip, allocated = self._floating_ip(external, named, spec.name, undo, report)
        # The undo is registered before the request: if the answer is lost (timeout,
        # connection reset, Ctrl-C), the server may exist all the same; the token finds it.
        token = spec.launch_token
        created: list[str] = []
        undo.append((f"delete server {spec.name}", lambda: self._delete_launched(spec.name, token, created)))
        server = self._call(
            f"create server '{spec.name}'", nova.servers.create, spec.name, resolved["image"], resolved["flavor"],
            userdata=spec.user_data or None, key_name=resolved["keypair"], meta={LAUNCH_TAG: token},
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
                undo[:] = [step for step in undo if not step[0].startswith("release floating IP allocated")]
                logger.warning("floating IP %s allocated for %s was changed by someone else; left to them",
                               ip.floating_ip_address, spec.name)
            if attempt == ATTACH_ATTEMPTS:
                raise LaunchError(f"could not attach a floating IP to server {spec.name}: each of the "
                                  f"{ATTACH_ATTEMPTS} addresses chosen was taken by someone else first")
            report(STAGE, f"floating IP {ip.floating_ip_address} was taken meanwhile; choosing another")
            ip, allocated = self._floating_ip(external, named, spec.name, undo, report)
        undo.append((f"detach floating IP {ip.floating_ip_address}", lambda: self._detach(ip.id)))
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
                                  f"{fault.get('message') or 'Nova gave no fault message'}")
            return None

        what = f"server {name} ({server_id}) to become ACTIVE"
        try:
            wait_until(check, what=what, timeout=max(deadline - time.monotonic(), 0.0), stage=STAGE,
                       progress=report)
        except MicadoTimeout as exc:  # say which deadline ran out, and where the server was
            raise MicadoTimeout(
                f"server {name} ({server_id}) was still {last['status'] or 'not visible'} when the launch "
                f"timeout of {total:g} s ran out", what=what, timeout=total,
            ) from exc

    def _server_port(self, server_id: str, network_id: str) -> Any | None:
        sdk, _ = self._connect()
        ports = self._call("list the server's ports", lambda: list(sdk.network.ports(device_id=server_id)))
        on_network = [p for p in ports if p.network_id == network_id] or ports
        return on_network[0] if on_network else None

    def _undo(self, undo: list[tuple[str, Callable[[], None]]], error: BaseException,
              report: ProgressCallback) -> None:
        """Undo the launch's steps, newest first; a failing step is logged and noted on ``error``.

        A second Ctrl-C stops the undo (the user may have a reason); the steps not
        done are then noted on the error so that they can be cleaned up by hand.
        """
        steps = list(reversed(undo))
        for index, (what, action) in enumerate(steps):
            try:
                try:
                    report(STAGE, f"undoing: {what}")
                except Exception as exc:  # a failing progress callback must not stop the undo
                    logger.debug("progress callback failed: %s", exc)
                action()
            except Exception as exc:  # keep undoing; the original error stays the one raised
                logger.warning("could not %s after a failed launch: %s", what, exc)
                error.add_note(f"while undoing the launch, could not {what}: {exc}")
            except BaseException as interrupt:
                left = "; ".join(step for step, _ in steps[index:])
                logger.warning("undo of a failed launch interrupted; not done: %s", left)
                note = f"the undo of the launch was interrupted; not done: {left}"
                error.add_note(note)
                interrupt.add_note(note)
                raise

    # --- what our launches made ------------------------------------------------------------

    def marked(self) -> list[MarkedResource]:
        """Servers carrying ``micado-client-launch`` metadata and floating IPs we allocated.

        See :meth:`Launcher.marked`.
        """
        sdk, nova = self._connect()
        found = []
        for server in self._call("list servers", lambda: list(nova.servers.list())):
            token = (getattr(server, "metadata", None) or {}).get(LAUNCH_TAG)
            if token:
                found.append(MarkedResource(kind="server", id=server.id, name=server.name, token=token))
        for ip in self._call("list floating IPs", lambda: list(sdk.network.ips())):
            description = ip.description or ""
            if description.startswith(FLOATING_IP_MARK):
                ports = [] if not ip.port_id else self._call(
                    "get the floating IP's port", lambda: [sdk.network.get_port(ip.port_id)])
                found.append(MarkedResource(
                    kind="address", id=ip.id, name=description[len(FLOATING_IP_MARK):],
                    address=ip.floating_ip_address, attached_to=ports[0].device_id if ports else None))
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

    def _remove_floating_ip(self, fip_id: str, allocated: bool, server_id: str, removal: Removal,
                            report: ProgressCallback) -> None:
        from openstack import exceptions as sdk_exc

        sdk, _ = self._connect()
        with self._cloud(f"get floating IP {fip_id}"):
            try:
                ip = sdk.network.get_ip(fip_id)
            except sdk_exc.NotFoundException:
                removal.warnings.append(f"floating IP {fip_id} was already gone")
                return
        ports = self._call("list the server's ports", lambda: list(sdk.network.ports(device_id=server_id)))
        ours = {port.id for port in ports}
        if ip.port_id and ip.port_id not in ours:
            removal.warnings.append(f"floating IP {ip.floating_ip_address} now belongs to another port; left alone")
            return
        if ip.port_id:
            report("delete", f"detaching floating IP {ip.floating_ip_address}")
            if not self._detach(fip_id, getattr(ip, "revision_number", None)):
                removal.warnings.append(f"floating IP {ip.floating_ip_address} was changed by someone else "
                                        "while being detached; left alone")
                return
        if allocated:
            report("delete", f"releasing floating IP {ip.floating_ip_address}")
            self._release(fip_id)
            removal.floating_ip_released = True

    def _detach(self, fip_id: str, revision: int | None = None) -> bool:
        """Disassociate the floating IP; with ``revision``, only if unchanged since (``False`` if not)."""
        from openstack import exceptions as sdk_exc

        sdk, _ = self._connect()
        with self._cloud(f"detach floating IP {fip_id}"):
            try:
                sdk.network.update_ip(fip_id, port_id=None, if_revision=revision)
            except sdk_exc.PreconditionFailedException:
                return False
        return True

    def _release(self, fip_id: str) -> None:
        sdk, _ = self._connect()
        self._call(f"release floating IP {fip_id}", sdk.network.delete_ip, fip_id, ignore_missing=True)

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


def _disable_completion_cache(nova: Any) -> None:
    """Stop novaclient writing its shell-completion caches under ``~/.novaclient``.

    Every list and create would otherwise write files into the user's home; a
    library must not. The managers' cache hook becomes a no-op.
    """

    @contextmanager
    def no_cache(*args: Any, **kwargs: Any) -> Iterator[None]:
        yield

    for manager in (nova.flavors, nova.keypairs, nova.servers):
        manager.completion_cache = no_cache


def _normalise_auth_url(auth_url: str) -> str:
    """Check the Keystone URL and make it end in ``/v3``.

    Raises:
        InvalidArgument: not an http(s) URL with a host, or a Keystone v2 URL.
    """
    if not isinstance(auth_url, str) or not auth_url.strip():
        raise InvalidArgument("auth_url must be the Keystone URL, e.g. https://cloud.example:5000/v3")
    url = auth_url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidArgument(f"auth_url {auth_url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(
            f"auth_url {auth_url!r} is not an http(s) URL; expected e.g. https://cloud.example:5000/v3"
        )
    if parts.path.endswith(("/v2.0", "/v2")):
        raise InvalidArgument(f"auth_url {auth_url!r} is a Keystone v2 URL; give the v3 one (ending in /v3)")
    return url if parts.path.endswith("/v3") else url + "/v3"
