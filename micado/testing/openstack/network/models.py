"""Neutron's state, scoped per project as Neutron scopes it.

A project sees its own networks, subnets, security groups, ports and floating IPs,
plus the networks marked ``shared`` or ``router:external`` (and their subnets).
Anything else answers 404, as Neutron does for another project's resource. Like
Neutron, a project gets a ``default`` security group the first time it asks.
"""

from __future__ import annotations

import copy
import ipaddress
import secrets
import threading
from typing import Any

from micado.testing.openstack.core import Caller, EmulatorError, Faults, Hooks, new_id, now

__all__ = ["NetworkBackend", "KINDS"]

#: The collections of the API, by URL name: (JSON singular, the error type's prefix).
KINDS = {
    "networks": ("network", "Network"),
    "subnets": ("subnet", "Subnet"),
    "security-groups": ("security_group", "SecurityGroup"),
    "ports": ("port", "Port"),
    "floatingips": ("floatingip", "Floatingip"),
}
_INTERNAL = ("allocated_by",)


def _owned(owner: str) -> dict[str, str]:
    return {"project_id": owner, "tenant_id": owner}


class NetworkBackend:
    """The networking state of the emulated cloud.

    Args:
        lock: the cloud's lock.
        faults: the cloud's fault switches.
        hooks: the cloud's hooks (``on_address`` hears of floating IP changes).
        pool: the addresses external networks hand out as floating IPs.

    Attributes:
        networks_by_id, subnets_by_id, security_groups_by_id, ports_by_id,
        floating_ips_by_id: every resource of every project, by id.
    """

    def __init__(self, lock: threading.RLock, faults: Faults, hooks: Hooks, pool: list[str]) -> None:
        self.lock = lock
        self.faults = faults
        self.hooks = hooks
        self.pool = list(pool)
        self.networks_by_id: dict[str, dict[str, Any]] = {}
        self.subnets_by_id: dict[str, dict[str, Any]] = {}
        self.security_groups_by_id: dict[str, dict[str, Any]] = {}
        self.ports_by_id: dict[str, dict[str, Any]] = {}
        self.floating_ips_by_id: dict[str, dict[str, Any]] = {}
        self._next_fixed = 10

    # --- seeding -----------------------------------------------------------------------

    def add_network(self, name: str, *, owner: str, cidr: str = "10.1.0.0/24", external: bool = False,
                    shared: bool | None = None) -> str:
        """Register a network with one subnet.

        Args:
            name: the network's name.
            owner: the owning project.
            cidr: the subnet's range.
            external: whether it is an external network (floating IPs come from it).
            shared: whether every project may use it (default: as ``external``).

        Returns:
            The network id.
        """
        net_id, subnet_id = new_id(), new_id()
        with self.lock:
            self.subnets_by_id[subnet_id] = {
                "id": subnet_id, "name": f"{name}-subnet", "network_id": net_id, "cidr": cidr,
                "ip_version": 4, "enable_dhcp": True, **_owned(owner),
            }
            self.networks_by_id[net_id] = {
                "id": net_id, "name": name, "status": "ACTIVE", "admin_state_up": True,
                "shared": external if shared is None else shared, "router:external": external,
                "subnets": [subnet_id], "mtu": 1450, **_owned(owner),
                "availability_zones": ["nova"], "description": "", "tags": [],
                "port_security_enabled": True, "is_default": external,
                "created_at": now(), "updated_at": now(), "revision_number": 1,
            }
        return net_id

    def add_security_group(self, name: str, *, owner: str) -> str:
        """Register a security group (without rules).

        Args:
            name: its name.
            owner: the owning project.

        Returns:
            The group id.
        """
        group_id = new_id()
        with self.lock:
            self.security_groups_by_id[group_id] = {
                "id": group_id, "name": name, "description": name, "stateful": True, **_owned(owner),
                "security_group_rules": [], "tags": [], "revision_number": 1,
                "created_at": now(), "updated_at": now(),
            }
        return group_id

    def ensure_default_group(self, project_id: str) -> None:
        """Create the project's ``default`` security group unless it has one (as Neutron does)."""
        with self.lock:
            if not any(g["project_id"] == project_id and g["name"] == "default"
                       for g in self.security_groups_by_id.values()):
                self.add_security_group("default", owner=project_id)

    def find_network(self, name_or_id: str) -> dict[str, Any]:
        """The network with this id or name, whatever its project (the record itself).

        Raises:
            EmulatorError: 404 when there is none.
        """
        with self.lock:
            for net in self.networks_by_id.values():
                if name_or_id in (net["id"], net["name"]):
                    return net
        raise EmulatorError(404, f"Network {name_or_id} could not be found.", "NetworkNotFound")

    # --- what a project sees -------------------------------------------------------------

    def _collection(self, kind: str) -> dict[str, dict[str, Any]]:
        return {"networks": self.networks_by_id, "subnets": self.subnets_by_id,
                "security-groups": self.security_groups_by_id, "ports": self.ports_by_id,
                "floatingips": self.floating_ips_by_id}[kind]

    def _sees(self, kind: str, item: dict[str, Any], caller: Caller) -> bool:
        if item["project_id"] == caller.project_id:
            return True
        if kind == "networks":
            return bool(item["shared"] or item["router:external"])
        if kind == "subnets":
            network = self.networks_by_id.get(item["network_id"])
            return network is not None and bool(network["shared"] or network["router:external"])
        return False

    @staticmethod
    def public(item: dict[str, Any]) -> dict[str, Any]:
        """A copy of a record as the API shows it (without the emulator's own fields)."""
        return {k: copy.deepcopy(v) for k, v in item.items() if k not in _INTERNAL}

    def visible(self, kind: str, caller: Caller) -> list[dict[str, Any]]:
        """What the caller's project sees of a collection (copies, as the API shows them).

        Args:
            kind: a key of :data:`KINDS`.
            caller: who asks.

        Returns:
            The resources.
        """
        if kind == "security-groups":
            self.ensure_default_group(caller.project_id)
        with self.lock:
            return [self.public(i) for i in self._collection(kind).values() if self._sees(kind, i, caller)]

    def _get(self, kind: str, caller: Caller, item_id: str | None) -> dict[str, Any]:
        """The record itself (callers hold the lock); 404 when absent or not the caller's to see."""
        item = self._collection(kind).get(item_id or "")
        if item is None or not self._sees(kind, item, caller):
            prefix = KINDS[kind][1]
            raise EmulatorError(404, f"{prefix} {item_id} could not be found.", f"{prefix}NotFound")
        return item

    def get(self, kind: str, caller: Caller, item_id: str) -> dict[str, Any]:
        """One resource the caller's project sees (a copy, as the API shows it).

        Raises:
            EmulatorError: 404 when there is none or it is another project's.
        """
        with self.lock:
            return self.public(self._get(kind, caller, item_id))

    # --- floating IPs --------------------------------------------------------------------

    def allocate_floating_ip(self, network_id: str, address: str | None = None, *, owner: str, by: str,
                             description: str = "") -> dict[str, Any]:
        """Take an address from the pool and register a floating IP on an external network.

        Args:
            network_id: the external network.
            address: the address wanted; the first free one of the pool by default.
            owner: the owning project.
            by: ``"api"`` (a client asked) or ``"seed"`` (someone else, outside the API).
            description: its description.

        Returns:
            The record itself.

        Raises:
            EmulatorError: 404 when the network is not external, 409 when the pool is
                empty or :attr:`Faults.floating_ip_pool_empty` is set.
        """
        with self.lock:
            net = self.networks_by_id.get(network_id)
            if net is None or not net["router:external"]:
                raise EmulatorError(404, f"External network {network_id} could not be found.",
                                    "ExternalNetworkNotFound")
            used = {f["floating_ip_address"] for f in self.floating_ips_by_id.values()}
            free = [a for a in self.pool if a not in used]
            if address is None:
                if self.faults.floating_ip_pool_empty or not free:
                    raise EmulatorError(409, f"No more IP addresses available on network {network_id}.",
                                        "IpAddressGenerationFailure")
                address = free[0]
            fip_id = new_id()
            fip: dict[str, Any] = {
                "id": fip_id, "floating_ip_address": address, "floating_network_id": network_id,
                "port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN",
                **_owned(owner), "description": description, "dns_domain": "", "dns_name": "",
                "port_details": None, "tags": [], "qos_policy_id": None, "revision_number": 0,
                "created_at": now(), "updated_at": now(), "allocated_by": by,
            }
            self.floating_ips_by_id[fip_id] = fip
            return fip

    def associate(self, caller: Caller, fip_id: str, port_id: str | None,
                  revision: int | None = None) -> dict[str, Any]:
        """Point a floating IP at a port (or at none) and tell ``on_address``.

        Args:
            caller: who asks; the floating IP and the port must be its project's.
            fip_id: the floating IP.
            port_id: the port; ``None`` detaches.
            revision: the client's ``If-Match: revision_number=N``: Neutron's
                compare-and-swap, refused with 412 when the floating IP changed since.

        Returns:
            The floating IP as the API shows it.

        Raises:
            EmulatorError: 404 for an unknown floating IP or port, 412 for a stale revision.
        """
        with self.lock:
            fip = self._get("floatingips", caller, fip_id)
            if revision is not None and revision != fip["revision_number"]:
                raise EmulatorError(412, f"Constrained to {revision}, but current revision is "
                                         f"{fip['revision_number']}", "RevisionNumberConstraintFailed")
            old_port = self.ports_by_id.get(fip["port_id"] or "")
            new_port = self._get("ports", caller, port_id) if port_id is not None else None
            fip.update(port_id=port_id, updated_at=now(), status="ACTIVE" if new_port else "DOWN",
                       revision_number=fip["revision_number"] + 1,
                       fixed_ip_address=new_port["fixed_ips"][0]["ip_address"] if new_port else None,
                       router_id=new_id() if new_port else None)
            result = self.public(fip)
        on_address = self.hooks.on_address
        if on_address is not None:
            if old_port is not None and (new_port is None or old_port["device_id"] != new_port["device_id"]):
                on_address(old_port["device_id"], None)
            if new_port is not None:
                on_address(new_port["device_id"], fip["floating_ip_address"])
        return result

    def delete_floating_ip(self, caller: Caller, fip_id: str) -> None:
        """Release a floating IP of the caller's project (detaching it first).

        Raises:
            EmulatorError: 404 when there is none or it is another project's.
        """
        with self.lock:
            attached = self._get("floatingips", caller, fip_id)["port_id"]
        if attached:
            self.associate(caller, fip_id, None)
        with self.lock:
            self.floating_ips_by_id.pop(fip_id, None)

    # --- what Nova asks of Neutron -------------------------------------------------------

    def server_networks(self, caller: Caller, wanted: list[str]) -> list[str]:
        """The networks a new server is plugged into.

        Args:
            caller: whose server it is.
            wanted: the network ids asked for; none picks the project's only
                non-external network, as Nova does.

        Returns:
            The network ids.

        Raises:
            EmulatorError: 400 for a network the project cannot use, 409 when none
                was asked for and the choice is not unique.
        """
        with self.lock:
            if not wanted:
                usable = [n["id"] for n in self.networks_by_id.values()
                          if not n["router:external"] and self._sees("networks", n, caller)]
                if len(usable) != 1:
                    raise EmulatorError(409, "Multiple possible networks found, use a Network ID to be more "
                                             "specific.")
                return usable
            for network_id in wanted:
                network = self.networks_by_id.get(network_id)
                if network is None or not self._sees("networks", network, caller):
                    raise EmulatorError(400, f"Network {network_id} could not be found.")
            return list(wanted)

    def server_groups(self, caller: Caller, wanted: list[str]) -> list[dict[str, Any]]:
        """The caller's security groups named (or numbered) in a server request.

        Raises:
            EmulatorError: 400 naming the first group the project does not have.
        """
        self.ensure_default_group(caller.project_id)
        groups = []
        with self.lock:
            own = [g for g in self.security_groups_by_id.values() if g["project_id"] == caller.project_id]
            for name_or_id in wanted:
                found = [g for g in own if name_or_id in (g["id"], g["name"])]
                if not found:
                    raise EmulatorError(400, f"Unable to find security_group with name or id '{name_or_id}'")
                groups.append(found[0])
        return groups

    def plug(self, caller: Caller, server_id: str, network_ids: list[str], group_ids: list[str]) -> None:
        """Create the server's ports, one per network, in the caller's project."""
        with self.lock:
            for network_id in network_ids:
                network = self.networks_by_id[network_id]
                port_id = new_id()
                self.ports_by_id[port_id] = {
                    "id": port_id, "name": "", "network_id": network_id, "device_id": server_id,
                    "device_owner": "compute:nova",
                    "mac_address": "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)),
                    "fixed_ips": [{"subnet_id": network["subnets"][0], "ip_address": self._next_fixed_ip(network)}],
                    "status": "ACTIVE", "admin_state_up": True, **_owned(caller.project_id),
                    "security_groups": list(group_ids), "binding:vnic_type": "normal",
                    "allowed_address_pairs": [], "extra_dhcp_opts": [], "tags": [], "description": "",
                    "port_security_enabled": True, "revision_number": 1, "created_at": now(), "updated_at": now(),
                }

    def _next_fixed_ip(self, network: dict[str, Any]) -> str:
        subnet = self.subnets_by_id[network["subnets"][0]]
        self._next_fixed += 1
        return str(ipaddress.ip_network(subnet["cidr"])[self._next_fixed])

    def addresses(self, server_id: str) -> dict[str, list[dict[str, Any]]]:
        """Nova's ``addresses`` of a server: fixed and floating, by network name."""
        addresses: dict[str, list[dict[str, Any]]] = {}
        with self.lock:
            for port in self.ports_by_id.values():
                if port["device_id"] != server_id:
                    continue
                network = self.networks_by_id.get(port["network_id"], {"name": port["network_id"]})
                entries = addresses.setdefault(network["name"], [])
                mac = port["mac_address"]
                for fixed in port["fixed_ips"]:
                    entries.append({"version": 4, "addr": fixed["ip_address"], "OS-EXT-IPS:type": "fixed",
                                    "OS-EXT-IPS-MAC:mac_addr": mac})
                for fip in self.floating_ips_by_id.values():
                    if fip["port_id"] == port["id"]:
                        entries.append({"version": 4, "addr": fip["floating_ip_address"],
                                        "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac})
        return addresses

    def unplug(self, server_id: str) -> list[str]:
        """Remove a deleted server's ports and detach their floating IPs.

        Returns:
            The floating addresses that were detached.
        """
        released: list[str] = []
        with self.lock:
            for port_id, port in list(self.ports_by_id.items()):
                if port["device_id"] != server_id:
                    continue
                del self.ports_by_id[port_id]
                for fip in self.floating_ips_by_id.values():
                    if fip["port_id"] == port_id:
                        fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
                        released.append(fip["floating_ip_address"])
        return released
