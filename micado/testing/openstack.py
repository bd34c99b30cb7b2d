"""A loopback OpenStack emulator: Keystone v3, Nova 2.1, Glance v2 and Neutron v2.0 in one server.

The real openstacksdk, python-novaclient and keystoneauth1 talk to it over HTTP on
127.0.0.1, so the OpenStack launcher is tested through the same code paths it uses
on a real cloud. The emulator is stateful and inspectable (tests assert that nothing
leaked) and faults can be switched on (see :class:`Faults`)::

    with OpenStackEmulator(boot_delay=0.01) as cloud:
        cloud.login["auth_url"]          # http://127.0.0.1:<port>/identity/v3
        cloud.seeded["image"]            # "ubuntu-22.04"
        cloud.faults.quota_exceeded = True
        ...
        assert cloud.servers == []

Endpoints (one port): ``/identity/v3`` (Keystone), ``/compute/v2.1`` (Nova),
``/image`` (Glance, ``v2``) and ``/network`` (Neutron, ``v2.0``). Like the real
services, compute, image and network accept a request only with a valid
``X-Auth-Token``, checked with the identity service: the emulator's own Keystone,
or an external one (``keystone_url=``) whose catalog points at this emulator
(register the URLs of :attr:`OpenStackEmulator.endpoints` as public endpoints).

"Booting" a server waits ``boot_delay`` seconds and then calls ``on_boot`` with the
server (including its decoded ``user_data``); associating a floating IP calls
``on_address``; deleting a server calls ``on_delete``. The local MiCADO stack uses
these hooks to turn servers into local SSH "VMs".

Run standalone with ``python -m micado.testing.openstack --port N --ready-file R``;
R receives a JSON document with the login and seeded names once the server listens.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import datetime
import ipaddress
import json
import logging
import os
import secrets
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)

__all__ = ["OpenStackEmulator", "Faults", "EmulatorError", "main"]

#: The region of the emulated cloud.
REGION = "RegionOne"
#: The floating addresses handed out when no pool is given.
DEFAULT_POOL = [f"127.100.0.{n}" for n in range(1, 9)]


class EmulatorError(Exception):
    """A request the emulated service refuses; becomes an HTTP error answer.

    Attributes:
        status: the HTTP status.
        message: the service's explanation.
        kind: the error type name in the service's error body (``badRequest``,
            ``IpAddressGenerationFailure``...).
    """

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass
class Faults:
    """Fault switches: while an attribute is set, every matching request fails (reset it to stop).

    Attributes:
        auth_failure: Keystone answers every token request with 401.
        image_missing: Nova refuses to create a server because its image "no longer
            exists" (400), as when an image is deleted between lookup and boot.
        server_error: when set, booting servers end in ERROR with this fault message.
        boot_hangs: servers stay in BUILD forever.
        quota_exceeded: Nova refuses to create a server with 403 (instance quota).
        floating_ip_pool_empty: Neutron cannot allocate a floating IP (409).
        lose_create_answer: Nova creates the server but answers 500, as when an API
            node fails after accepting the request: the client cannot know the id.
        lose_floating_ip_answer: Neutron allocates the floating IP but answers 500.
        slow_answers: seconds every request waits before it is answered (a cloud
            that hangs; a client's request timeout should fire).
    """

    auth_failure: bool = False
    image_missing: bool = False
    server_error: str | None = None
    boot_hangs: bool = False
    quota_exceeded: bool = False
    floating_ip_pool_empty: bool = False
    lose_create_answer: bool = False
    lose_floating_ip_answer: bool = False
    slow_answers: float = 0.0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id() -> str:
    return str(uuid.uuid4())


class OpenStackEmulator:
    """A stateful emulated OpenStack cloud listening on loopback.

    Args:
        host: the loopback address to listen on.
        port: the port; ``0`` picks a free one.
        boot_delay: seconds a server stays in BUILD before it becomes ACTIVE.
        floating_ip_pool: the addresses the external network hands out
            (default ``127.100.0.1`` to ``127.100.0.8``).
        on_boot: called with the server (a dict with ``id``, ``name``, ``user_data``
            as text, ``key_name``...) when its boot finishes; if it raises, the server
            goes to ERROR with the exception text as its fault message.
        on_create: called with the new server (as ``on_boot``) once Nova has
            registered it, before the answer is sent; if it raises, the answer is a
            500 but the server exists (like :attr:`Faults.lose_create_answer`).
        on_address: called with ``(server_id, address)`` when a floating IP is
            associated with the server, and ``(server_id, None)`` when it is removed.
        on_delete: called with the server id when a server is deleted.
        keystone_url: an external Keystone (``http://host:port/v3``) that issues and
            validates the tokens; ``None`` uses the emulator's own.
        delete_delay: seconds a deleted server stays visible (task state ``deleting``) before it is gone.

    Attributes:
        faults: the fault switches (:class:`Faults`).
        requests: every request received, as ``(method, path)`` tuples.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        boot_delay: float = 0.2,
        floating_ip_pool: list[str] | None = None,
        on_boot: Callable[[dict], None] | None = None,
        on_create: Callable[[dict], None] | None = None,
        on_address: Callable[[str, str | None], None] | None = None,
        on_delete: Callable[[str], None] | None = None,
        keystone_url: str | None = None,
        delete_delay: float = 0.0,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the emulator listens on loopback only, not {host!r}")
        self.host = host
        self.port = port
        self.boot_delay = boot_delay
        self.delete_delay = delete_delay
        self.on_boot = on_boot
        self.on_create = on_create
        self.on_address = on_address
        self.on_delete = on_delete
        self.keystone_url = keystone_url.rstrip("/") if keystone_url else None
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._pool = list(floating_ip_pool if floating_ip_pool is not None else DEFAULT_POOL)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._tokens: dict[str, dict] = {}
        self._validated: dict[str, float] = {}
        self._next_fixed = 10
        # identity
        self.project_id = uuid.uuid4().hex
        self.project_name = "micado-project"
        self.user_id = uuid.uuid4().hex
        self.username = "micado-user"
        self.password = secrets.token_urlsafe(12)
        self.user_domain_name = "Default"
        self.app_cred_id = uuid.uuid4().hex
        self.app_cred_secret = secrets.token_urlsafe(16)
        # resources, keyed by id
        self.images_by_id: dict[str, dict] = {}
        self.flavors_by_id: dict[str, dict] = {}
        self.keypairs_by_name: dict[str, dict] = {}
        self.networks_by_id: dict[str, dict] = {}
        self.subnets_by_id: dict[str, dict] = {}
        self.security_groups_by_id: dict[str, dict] = {}
        self.servers_by_id: dict[str, dict] = {}
        self.ports_by_id: dict[str, dict] = {}
        self.floating_ips_by_id: dict[str, dict] = {}
        self._seed()

    # --- seeding and test helpers -----------------------------------------------------

    def _seed(self) -> None:
        self.add_image("ubuntu-22.04")
        self.add_flavor("m1.small", vcpus=1, ram=2048, disk=20, flavor_id="1")
        self.add_flavor("m1.medium", vcpus=2, ram=4096, disk=40, flavor_id="2")
        self.add_keypair("micado-key")
        self.add_network("private", cidr="10.0.0.0/24")
        self.add_network("public", cidr="127.100.0.0/24", external=True)
        self.add_security_group("default")
        self.add_security_group("all")

    @property
    def seeded(self) -> dict[str, str]:
        """The names of the seeded resources a master can be launched with."""
        return {
            "image": "ubuntu-22.04",
            "flavor": "m1.medium",
            "network": "private",
            "keypair": "micado-key",
            "security_group": "all",
            "floating_network": "public",
        }

    def add_image(self, name: str, image_id: str | None = None) -> str:
        """Register a Glance image (names may repeat, as in Glance); return its id."""
        image_id = image_id or _new_id()
        with self.lock:
            self.images_by_id[image_id] = {
                "id": image_id, "name": name, "status": "active", "visibility": "public",
                "disk_format": "qcow2", "container_format": "bare", "min_disk": 0,
                "min_ram": 0, "size": 1073741824, "virtual_size": None, "checksum": None,
                "os_hash_algo": None, "os_hash_value": None, "os_hidden": False,
                "owner": self.project_id, "protected": False, "tags": [],
                "created_at": _now(), "updated_at": _now(),
                "self": f"/v2/images/{image_id}", "file": f"/v2/images/{image_id}/file",
                "schema": "/v2/schemas/image",
            }
        return image_id

    def remove_image(self, name_or_id: str) -> None:
        """Delete every image with this id or name."""
        with self.lock:
            for image_id, image in list(self.images_by_id.items()):
                if name_or_id in (image_id, image["name"]):
                    del self.images_by_id[image_id]

    def add_flavor(
        self, name: str, *, vcpus: int = 1, ram: int = 2048, disk: int = 20, flavor_id: str | None = None
    ) -> str:
        """Register a Nova flavor; return its id."""
        flavor_id = flavor_id or _new_id()
        with self.lock:
            self.flavors_by_id[flavor_id] = {
                "id": flavor_id, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                "OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "rxtx_factor": 1.0,
                "os-flavor-access:is_public": True, "OS-FLV-DISABLED:disabled": False,
            }
        return flavor_id

    def add_keypair(self, name: str) -> str:
        """Register a Nova key pair; return its name (key pairs are named, not numbered)."""
        with self.lock:
            self.keypairs_by_name[name] = {
                "name": name, "type": "ssh",
                "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatedKeyOnly emulator",
                "fingerprint": ":".join(secrets.token_hex(1) for _ in range(16)),
            }
        return name

    def add_network(self, name: str, *, cidr: str = "10.1.0.0/24", external: bool = False) -> str:
        """Register a Neutron network with one subnet; return the network id."""
        net_id, subnet_id = _new_id(), _new_id()
        with self.lock:
            self.subnets_by_id[subnet_id] = {
                "id": subnet_id, "name": f"{name}-subnet", "network_id": net_id, "cidr": cidr,
                "ip_version": 4, "enable_dhcp": True, "project_id": self.project_id,
                "tenant_id": self.project_id,
            }
            self.networks_by_id[net_id] = {
                "id": net_id, "name": name, "status": "ACTIVE", "admin_state_up": True,
                "shared": external, "router:external": external, "subnets": [subnet_id],
                "mtu": 1450, "project_id": self.project_id, "tenant_id": self.project_id,
                "availability_zones": ["nova"], "description": "", "tags": [],
                "port_security_enabled": True, "is_default": external,
                "created_at": _now(), "updated_at": _now(), "revision_number": 1,
            }
        return net_id

    def add_security_group(self, name: str, *, project_id: str | None = None) -> str:
        """Register a Neutron security group (in another project if ``project_id`` is given)."""
        group_id = _new_id()
        project_id = project_id or self.project_id
        with self.lock:
            self.security_groups_by_id[group_id] = {
                "id": group_id, "name": name, "description": name, "stateful": True,
                "project_id": project_id, "tenant_id": project_id,
                "security_group_rules": [], "tags": [], "revision_number": 1,
                "created_at": _now(), "updated_at": _now(),
            }
        return group_id

    def add_floating_ip(
        self, address: str | None = None, *, network: str = "public", project_id: str | None = None
    ) -> str:
        """Allocate a floating IP "by someone else" (not through the API); return its id.

        Args:
            address: the address; the next free one of the pool by default.
            network: the external network's name or id.
            project_id: the owner, when not the emulator's project.
        """
        with self.lock:
            fip = self.allocate_floating_ip(self.find_network(network)["id"], address, by="seed")
            if project_id is not None:
                fip.update(project_id=project_id, tenant_id=project_id)
            return fip["id"]

    # --- inspection ------------------------------------------------------------------

    @property
    def servers(self) -> list[dict]:
        """A snapshot of the servers (internal records, including ``user_data``)."""
        with self.lock:
            return copy.deepcopy(list(self.servers_by_id.values()))

    def server_snapshot(self, server_id: str) -> dict:
        """A copy of one server's internal record (with ``user_data``), for the hooks."""
        with self.lock:
            return copy.deepcopy(self.servers_by_id[server_id])

    @property
    def floating_ips(self) -> list[dict]:
        """A snapshot of the floating IPs; ``allocated_by`` is ``"api"`` or ``"seed"``."""
        with self.lock:
            return copy.deepcopy(list(self.floating_ips_by_id.values()))

    @property
    def ports(self) -> list[dict]:
        """A snapshot of the Neutron ports."""
        with self.lock:
            return copy.deepcopy(list(self.ports_by_id.values()))

    def leftovers(self) -> dict[str, list]:
        """What a failed or undone launch may have left: servers, attached floating IPs,
        floating IPs allocated through the API. All three lists are empty when clean."""
        with self.lock:
            return {
                "servers": [s["id"] for s in self.servers_by_id.values()],
                "attached_floating_ips": [
                    f["floating_ip_address"] for f in self.floating_ips_by_id.values() if f["port_id"]
                ],
                "allocated_floating_ips": [
                    f["floating_ip_address"]
                    for f in self.floating_ips_by_id.values()
                    if f["allocated_by"] == "api"
                ],
            }

    @property
    def endpoints(self) -> dict[str, str]:
        """The public URL of each service, by catalog type (what a Keystone catalog lists)."""
        return {
            "identity": f"{self.url}/identity",
            "compute": f"{self.url}/compute/v2.1",
            "image": f"{self.url}/image",
            "network": f"{self.url}/network",
        }

    @property
    def login(self) -> dict[str, str | None]:
        """How to log in: auth_url, region, project_id, user_domain_name, username,
        password, application_credential_id and application_credential_secret.

        Behind an external Keystone only ``auth_url`` and ``region`` are known; the
        other values are ``None`` (the accounts are that Keystone's).
        """
        if self.keystone_url is not None:
            return {
                "auth_url": self.keystone_url, "region": REGION, "project_id": None,
                "user_domain_name": None, "username": None, "password": None,
                "application_credential_id": None, "application_credential_secret": None,
            }
        return {
            "auth_url": f"{self.url}/identity/v3",
            "region": REGION,
            "project_id": self.project_id,
            "user_domain_name": self.user_domain_name,
            "username": self.username,
            "password": self.password,
            "application_credential_id": self.app_cred_id,
            "application_credential_secret": self.app_cred_secret,
        }

    @property
    def url(self) -> str:
        """The base URL of the running emulator."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    # --- lookups used by the HTTP layer (callers hold the lock) -----------------------

    def find_network(self, name_or_id: str) -> dict:
        """Return the network with this id or name."""
        for net in self.networks_by_id.values():
            if name_or_id in (net["id"], net["name"]):
                return net
        raise EmulatorError(404, f"Network {name_or_id} could not be found.", "NetworkNotFound")

    def allocate_floating_ip(self, network_id: str, address: str | None = None, *, by: str) -> dict:
        """Take an address from the pool and register a floating IP on ``network_id``."""
        net = self.networks_by_id.get(network_id)
        if net is None or not net["router:external"]:
            raise EmulatorError(404, f"External network {network_id} could not be found.", "ExternalNetworkNotFound")
        used = {f["floating_ip_address"] for f in self.floating_ips_by_id.values()}
        free = [a for a in self._pool if a not in used]
        if address is None:
            if self.faults.floating_ip_pool_empty or not free:
                raise EmulatorError(
                    409, f"No more IP addresses available on network {network_id}.",
                    "IpAddressGenerationFailure",
                )
            address = free[0]
        fip_id = _new_id()
        fip = {
            "id": fip_id, "floating_ip_address": address, "floating_network_id": network_id,
            "port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN",
            "project_id": self.project_id, "tenant_id": self.project_id, "description": "",
            "dns_domain": "", "dns_name": "", "port_details": None, "tags": [],
            "qos_policy_id": None, "revision_number": 0, "created_at": _now(), "updated_at": _now(),
            "allocated_by": by,
        }
        self.floating_ips_by_id[fip_id] = fip
        return fip

    def next_fixed_ip(self, network: dict) -> str:
        """The next free fixed address on the network's subnet."""
        subnet = self.subnets_by_id[network["subnets"][0]]
        self._next_fixed += 1
        return str(ipaddress.ip_network(subnet["cidr"])[self._next_fixed])

    # --- token handling ---------------------------------------------------------------

    def issue_token(self, info: dict) -> str:
        """Store a token of the emulator's own Keystone; return its id."""
        token = secrets.token_hex(32)
        with self.lock:
            self._tokens[token] = info
        return token

    def token_info(self, token: str) -> dict | None:
        """The token body of a token the emulator's own Keystone issued, if valid."""
        with self.lock:
            return self._tokens.get(token)

    def check_token(self, token: str | None) -> None:
        """Validate a service request's ``X-Auth-Token`` with the identity service.

        Raises:
            EmulatorError: 401 when there is no token or it is not valid.
        """
        if not token:
            raise EmulatorError(401, "The request you have made requires authentication.", "Unauthorized")
        if self.keystone_url is None:
            if self.token_info(token) is None:
                raise EmulatorError(401, "The request you have made requires authentication.", "Unauthorized")
            return
        import requests

        with self.lock:
            if self._validated.get(token, 0.0) > time.monotonic():
                return
        # A user may validate their own token, so the token is its own service token.
        response = requests.get(
            f"{self.keystone_url}/auth/tokens",
            headers={"X-Auth-Token": token, "X-Subject-Token": token},
            timeout=10,
        )
        if response.status_code != 200:
            raise EmulatorError(401, "The request you have made requires authentication.", "Unauthorized")
        with self.lock:
            self._validated[token] = time.monotonic() + 60.0

    # --- server lifecycle -------------------------------------------------------------

    def decode_user_data(self, value: str | None) -> str | None:
        """Decode Nova's base64 ``user_data`` (400 when it is not base64)."""
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError) as exc:
            raise EmulatorError(400, "User data needs to be valid base 64.", "badRequest") from exc

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` seconds on a timer the emulator cancels at stop."""
        timer = threading.Timer(delay, action)
        timer.daemon = True
        with self.lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def finish_boot(self, server_id: str) -> None:
        """End a server's BUILD phase: ACTIVE, or ERROR with a fault."""
        with self.lock:
            server = self.servers_by_id.get(server_id)
            if server is None or server["status"] != "BUILD" or self.faults.boot_hangs:
                return
            fault = self.faults.server_error
            snapshot = copy.deepcopy(server)
        if fault is None and self.on_boot is not None:
            try:
                self.on_boot(snapshot)
            except Exception as exc:  # the hook's failure is the server's fault, by design
                logger.info("on_boot failed for server %s: %s", server_id, exc)
                fault = str(exc) or type(exc).__name__
        with self.lock:
            server = self.servers_by_id.get(server_id)
            if server is None or server["status"] != "BUILD":
                return
            server["updated"] = _now()
            server["OS-EXT-STS:task_state"] = None
            if fault is None:
                server.update({"status": "ACTIVE", "OS-EXT-STS:vm_state": "active",
                               "OS-EXT-STS:power_state": 1, "OS-SRV-USG:launched_at": _now()})
            else:
                server.update({"status": "ERROR", "OS-EXT-STS:vm_state": "error",
                               "fault": {"code": 500, "message": fault, "created": _now()}})

    def remove_server(self, server_id: str) -> None:
        """Remove a deleted server, its ports, and disassociate its floating IPs."""
        released: list[str] = []
        with self.lock:
            if self.servers_by_id.pop(server_id, None) is None:
                return
            for port_id, port in list(self.ports_by_id.items()):
                if port["device_id"] != server_id:
                    continue
                del self.ports_by_id[port_id]
                for fip in self.floating_ips_by_id.values():
                    if fip["port_id"] == port_id:
                        fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
                        released.append(fip["floating_ip_address"])
        if released and self.on_address is not None:
            self.on_address(server_id, None)
        if self.on_delete is not None:
            self.on_delete(server_id)

    # --- running ----------------------------------------------------------------------

    def start(self) -> OpenStackEmulator:
        """Start listening (in a background thread); return self."""
        from werkzeug.serving import make_server

        from micado.testing.openstack_http import QuietHandler, make_app

        self._server = make_server(
            self.host, self.port, make_app(self), threaded=True, request_handler=QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="openstack-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cancel pending boots and deletions."""
        with self.lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> OpenStackEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server is not None else "stopped"
        return f"<OpenStackEmulator {where} servers={len(self.servers_by_id)}>"


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT (``python -m micado.testing.openstack``).

    Args:
        argv: command-line arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m micado.testing.openstack", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, help="write the login JSON here once listening")
    parser.add_argument("--keystone-url", help="an external Keystone v3 URL that issues the tokens")
    parser.add_argument("--boot-delay", type=float, default=0.2)
    parser.add_argument("--floating-ip", action="append", help="an address of the floating IP pool (repeat)")
    args = parser.parse_args(argv)
    emulator = OpenStackEmulator(
        args.host, args.port, boot_delay=args.boot_delay,
        floating_ip_pool=args.floating_ip, keystone_url=args.keystone_url,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    emulator.start()
    try:
        if args.ready_file is not None:
            ready = {**emulator.login, **emulator.seeded, "pid": os.getpid(), "url": emulator.url}
            temporary = args.ready_file.with_name(args.ready_file.name + ".tmp")
            temporary.write_text(json.dumps(ready, indent=2))
            os.chmod(temporary, 0o600)  # it holds the emulated cloud's password
            temporary.replace(args.ready_file)
        while not stopped.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
