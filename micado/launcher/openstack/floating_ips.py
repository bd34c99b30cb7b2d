"""The OpenStack launcher's floating IPs: take a free one or allocate one, attach, detach, release.

Every address a launch allocates carries the description ``allocated by micado-client
for <name>`` (:data:`FLOATING_IP_MARK`), followed by the launch's marks
(``; store=<store identity>; launched=<UTC time>; creator=...; launch=<token>``, see
:func:`~micado.launcher.base.launch_marks`): an allocation whose answer was lost is still
found and released, and no other launch takes such an address as free. Attach and
detach are compare-and-swaps on Neutron's ``revision_number``, so two launches that
picked the same free address cannot both take it.
"""

from __future__ import annotations

from typing import Any

from micado.exceptions import LaunchError
from micado.launcher.openstack.session import OpenStackSession
from micado.launcher.base import CREATOR_TAG, LAUNCH_TAG, LAUNCHED_TAG, STORE_TAG, Removal
from micado.progress import ProgressCallback
from micado.undo import UndoStack

__all__ = ["FLOATING_IP_MARK", "FloatingIPs", "floating_ip_description", "read_floating_ip_description"]

STAGE = "launch"
#: Start of the description of the floating IPs a launch allocates. Other launches
#: never take such an address as "free": it belongs to a launch still in progress.
FLOATING_IP_MARK = "allocated by micado-client for "
#: The launch marks in a floating IP's description, by their short names there (Neutron
#: allows 255 characters).
_DESCRIPTION_KEYS = {STORE_TAG: "store", LAUNCHED_TAG: "launched", CREATOR_TAG: "creator", LAUNCH_TAG: "launch"}


def floating_ip_description(name: str, marks: dict[str, str]) -> str:
    """The description of a floating IP allocated for server ``name`` with the launch's ``marks``."""
    return FLOATING_IP_MARK + name + "".join(
        f"; {short}={marks[key]}" for key, short in _DESCRIPTION_KEYS.items() if marks.get(key))


def read_floating_ip_description(description: str) -> tuple[str, dict[str, str]] | None:
    """``(server name, marks)`` from a description :func:`floating_ip_description` made; ``None``
    if it is none of ours. A description with the name alone (an earlier micado-client, or other
    tooling) gives no marks."""
    if not description.startswith(FLOATING_IP_MARK):
        return None
    name, *parts = description[len(FLOATING_IP_MARK):].split("; ")
    by_short = {short: key for key, short in _DESCRIPTION_KEYS.items()}
    marks = {}
    for part in parts:
        short, _, value = part.partition("=")
        if short in by_short and value:
            marks[by_short[short]] = value
    return name, marks


class FloatingIPs(OpenStackSession):
    """Floating-IP steps of the OpenStack launcher (a mixin)."""

    def _floating_ip(
        self, external: list[tuple[str, str]], named: bool, name: str,
        undo: UndoStack, report: ProgressCallback, marks: dict[str, str] | None = None,
    ) -> tuple[Any, bool]:
        """Return ``(floating IP, allocated_by_us)``: a free one, or a new one (with ``marks``
        in its description).

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
        description = floating_ip_description(name, marks or {})
        made: list[Any] = []
        undo.push(f"release floating IP allocated for {name}", lambda: self._release_allocated(made, description))
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
