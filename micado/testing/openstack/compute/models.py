"""Nova's state: flavors (public), key pairs and servers (per project), and the servers' lifecycle.

A server is BUILD until ``boot_delay`` has passed, then ACTIVE (or ERROR when a
fault is set or the ``on_boot`` hook raises); a deleted one stays visible for
``delete_delay`` seconds. Nova asks Glance (:mod:`..image.models`) and Neutron
(:mod:`..network.models`) for the image, networks, security groups and ports.

Key pairs belong to a project here (Nova keys them by user) so that they can be
seeded for a project whose users live in another Keystone.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import secrets
import threading
from typing import Any

from micado.testing.openstack.core import Caller, EmulatorError, Faults, Hooks, Scheduler, new_id, now
from micado.testing.openstack.image.models import ImageBackend
from micado.testing.openstack.network.models import NetworkBackend

__all__ = ["ComputeBackend"]

logger = logging.getLogger(__name__)

_INTERNAL = ("user_data", "network_ids")


class ComputeBackend:
    """The compute state of the emulated cloud.

    Args:
        lock: the cloud's lock.
        faults: the cloud's fault switches.
        hooks: the cloud's hooks.
        scheduler: runs the delayed boots and deletions.
        images: Glance, for the servers' images.
        network: Neutron, for networks, security groups and ports.

    Attributes:
        boot_delay: seconds a server stays in BUILD.
        delete_delay: seconds a deleted server stays visible (task state ``deleting``).
        flavors_by_id: the flavors (every project sees every one).
        keypairs: the key pairs, by ``(project_id, name)``.
        servers_by_id: every project's servers (internal records, with ``user_data``).
    """

    def __init__(self, lock: threading.RLock, faults: Faults, hooks: Hooks, scheduler: Scheduler,
                 images: ImageBackend, network: NetworkBackend) -> None:
        self.lock = lock
        self.faults = faults
        self.hooks = hooks
        self.scheduler = scheduler
        self.images = images
        self.network = network
        self.boot_delay = 0.2
        self.delete_delay = 0.0
        self.flavors_by_id: dict[str, dict[str, Any]] = {}
        self.keypairs: dict[tuple[str, str], dict[str, Any]] = {}
        self.servers_by_id: dict[str, dict[str, Any]] = {}

    # --- seeding -----------------------------------------------------------------------

    def add_flavor(self, name: str, *, vcpus: int = 1, ram: int = 2048, disk: int = 20,
                   flavor_id: str | None = None) -> str:
        """Register a public flavor.

        Returns:
            The flavor id.
        """
        flavor_id = flavor_id or new_id()
        with self.lock:
            self.flavors_by_id[flavor_id] = {
                "id": flavor_id, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                "OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "rxtx_factor": 1.0,
                "os-flavor-access:is_public": True, "OS-FLV-DISABLED:disabled": False,
            }
        return flavor_id

    def add_keypair(self, name: str, *, owner: str) -> str:
        """Register a key pair of project ``owner``.

        Returns:
            Its name (key pairs are named, not numbered).
        """
        with self.lock:
            self.keypairs[(owner, name)] = {
                "name": name, "type": "ssh",
                "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatedKeyOnly emulator",
                "fingerprint": ":".join(secrets.token_hex(1) for _ in range(16)),
            }
        return name

    # --- reads -------------------------------------------------------------------------

    def flavor(self, flavor_id: str) -> dict[str, Any]:
        """A copy of one flavor.

        Raises:
            EmulatorError: 404 when there is none.
        """
        with self.lock:
            flavor = self.flavors_by_id.get(flavor_id)
            if flavor is None:
                raise EmulatorError(404, f"Flavor {flavor_id} could not be found.")
            return dict(flavor)

    def keypairs_of(self, caller: Caller) -> list[dict[str, Any]]:
        """Copies of the caller's project's key pairs."""
        with self.lock:
            return [dict(k) for (owner, _), k in self.keypairs.items() if owner == caller.project_id]

    def keypair(self, caller: Caller, name: str) -> dict[str, Any]:
        """A copy of one of the caller's key pairs.

        Raises:
            EmulatorError: 404 when the project has none of that name.
        """
        with self.lock:
            keypair = self.keypairs.get((caller.project_id, name))
            if keypair is None:
                raise EmulatorError(404, f"Keypair {name} not found for user {caller.user_id}")
            return dict(keypair)

    def servers_of(self, caller: Caller) -> list[dict[str, Any]]:
        """Copies of the caller's project's servers, with Nova's ``addresses``, without the internal fields."""
        with self.lock:
            return [self._view(s) for s in self.servers_by_id.values() if s["tenant_id"] == caller.project_id]

    def server(self, caller: Caller, server_id: str) -> dict[str, Any]:
        """A copy of one of the caller's servers, as :meth:`servers_of`.

        Raises:
            EmulatorError: 404 when there is none or it is another project's.
        """
        with self.lock:
            return self._view(self._own_server(caller, server_id))

    def _own_server(self, caller: Caller, server_id: str) -> dict[str, Any]:
        server = self.servers_by_id.get(server_id)
        if server is None or server["tenant_id"] != caller.project_id:
            raise EmulatorError(404, f"Instance {server_id} could not be found.")
        return server

    def _view(self, server: dict[str, Any]) -> dict[str, Any]:
        view = {k: copy.deepcopy(v) for k, v in server.items() if k not in _INTERNAL}
        view["addresses"] = self.network.addresses(server["id"])
        return view

    # --- create ------------------------------------------------------------------------

    def create_server(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        """Register a server in BUILD for the caller's project and schedule the end of its boot.

        Args:
            caller: whose server it is.
            body: the ``server`` object of ``POST /servers``.

        Returns:
            A copy of the new server's record.

        Raises:
            EmulatorError: 400 for an unknown image, flavor, key pair, network or
                security group, or user data that is not base64; 403 when
                :attr:`Faults.quota_exceeded`; 409 when the network is ambiguous.
                The server exists when :attr:`Faults.lose_create_answer` raises 500
                or the ``on_create`` hook fails.
        """
        if not body.get("name"):
            raise EmulatorError(400, "Invalid input for field/attribute name.")
        image_id, flavor_id, key_name = body.get("imageRef"), body.get("flavorRef"), body.get("key_name")
        try:
            if self.faults.image_missing:
                raise EmulatorError(404, "gone")
            self.images.get(caller, str(image_id))
        except EmulatorError:
            raise EmulatorError(400, f"Image {image_id} could not be found.") from None
        with self.lock:
            if flavor_id not in self.flavors_by_id:
                raise EmulatorError(400, f"Flavor {flavor_id} could not be found.")
            if key_name is not None and (caller.project_id, key_name) not in self.keypairs:
                raise EmulatorError(400, "Invalid key_name provided.")
        # Nova takes security groups by name or id and shows names
        groups = self.network.server_groups(
            caller, [g.get("name") for g in body.get("security_groups") or [{"name": "default"}]])
        network_ids = self.network.server_networks(
            caller, [str(n.get("uuid")) for n in body.get("networks") or [] if isinstance(n, dict)])
        if self.faults.quota_exceeded:
            raise EmulatorError(403, "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances")
        user_data = _decode_user_data(body.get("user_data"))
        _check_metadata(body.get("metadata"))
        server_id = new_id()
        server = {
            "id": server_id, "name": body["name"], "status": "BUILD", "tenant_id": caller.project_id,
            "user_id": caller.user_id, "metadata": body.get("metadata") or {}, "hostId": "",
            "image": {"id": image_id, "links": []}, "flavor": {"id": flavor_id, "links": []},
            "created": now(), "updated": now(), "accessIPv4": "", "accessIPv6": "",
            "OS-DCF:diskConfig": "MANUAL", "progress": 0, "OS-EXT-AZ:availability_zone": "nova",
            "config_drive": "", "key_name": key_name, "OS-SRV-USG:launched_at": None,
            "OS-SRV-USG:terminated_at": None, "security_groups": [{"name": g["name"]} for g in groups],
            "OS-EXT-STS:task_state": "spawning", "OS-EXT-STS:vm_state": "building",
            "OS-EXT-STS:power_state": 0, "os-extended-volumes:volumes_attached": [],
            "user_data": user_data, "network_ids": network_ids,
        }
        with self.lock:
            self.servers_by_id[server_id] = server
            self.network.plug(caller, server_id, network_ids, [g["id"] for g in groups])
            snapshot = copy.deepcopy(server)
        self.scheduler.schedule(self.boot_delay, lambda: self.finish_boot(server_id))
        if self.hooks.on_create is not None:
            self.hooks.on_create(copy.deepcopy(snapshot))
        if self.faults.lose_create_answer:
            raise EmulatorError(500, "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ "
                                     "and attach the Nova API log if possible.")
        return snapshot

    def finish_boot(self, server_id: str) -> None:
        """End a server's BUILD phase: ACTIVE, or ERROR with a fault."""
        with self.lock:
            server = self.servers_by_id.get(server_id)
            if server is None or server["status"] != "BUILD" or self.faults.boot_hangs:
                return
            fault = self.faults.server_error
            snapshot = copy.deepcopy(server)
        on_boot = self.hooks.on_boot
        if fault is None and on_boot is not None:
            try:
                on_boot(snapshot)
            except Exception as exc:  # the hook's failure is the server's fault, by design
                logger.info("on_boot failed for server %s: %s", server_id, exc)
                fault = str(exc) or type(exc).__name__
        with self.lock:
            server = self.servers_by_id.get(server_id)
            if server is None or server["status"] != "BUILD":
                return
            server["updated"] = now()
            server["OS-EXT-STS:task_state"] = None
            if fault is None:
                server.update({"status": "ACTIVE", "OS-EXT-STS:vm_state": "active",
                               "OS-EXT-STS:power_state": 1, "OS-SRV-USG:launched_at": now()})
            else:
                server.update({"status": "ERROR", "OS-EXT-STS:vm_state": "error",
                               "fault": {"code": 500, "message": fault, "created": now()}})

    # --- delete ------------------------------------------------------------------------

    def delete_server(self, caller: Caller, server_id: str) -> None:
        """Start deleting one of the caller's servers (gone after :attr:`delete_delay`).

        Raises:
            EmulatorError: 404 when there is none or it is another project's.
        """
        with self.lock:
            self._own_server(caller, server_id).update({"OS-EXT-STS:task_state": "deleting", "updated": now()})
        if self.delete_delay > 0:
            self.scheduler.schedule(self.delete_delay, lambda: self.remove_server(server_id))
        else:
            self.remove_server(server_id)

    def remove_server(self, server_id: str) -> None:
        """Remove a server at once (whatever its project) with its ports; detach its floating IPs."""
        with self.lock:
            if self.servers_by_id.pop(server_id, None) is None:
                return
            released = self.network.unplug(server_id)
        if released and self.hooks.on_address is not None:
            self.hooks.on_address(server_id, None)
        if self.hooks.on_delete is not None:
            self.hooks.on_delete(server_id)


def _decode_user_data(value: str | None) -> str | None:
    """Decode Nova's base64 ``user_data`` (400 when it is not base64)."""
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError) as exc:
        raise EmulatorError(400, "User data needs to be valid base 64.", "badRequest") from exc


def _check_metadata(metadata: Any) -> None:
    """Nova's rule for server metadata: string keys of 1-255 characters, string values of at most 255."""
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255 and len(v) <= 255
            for k, v in metadata.items()):
        raise EmulatorError(400, f"Invalid input for field/attribute metadata. Value: {metadata}.")
