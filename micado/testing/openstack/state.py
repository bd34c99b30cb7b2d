"""The emulated cloud's state: the four services' models wired together, seeded and inspectable.

:class:`OpenStackCloud` is what tests read and change (``cloud.servers``,
``cloud.add_floating_ip(...)``, ``cloud.faults``); it knows nothing of HTTP.
:class:`~micado.testing.openstack.server.OpenStackEmulator` serves it.
"""

from __future__ import annotations

import copy
import threading
from typing import Any
from collections.abc import Callable

from micado.testing.openstack.compute.models import ComputeBackend
from micado.testing.openstack.core import Caller, Faults, Hooks, Scheduler, TokenValidator
from micado.testing.openstack.identity.external import ExternalKeystone
from micado.testing.openstack.identity.federation import OIDCUserinfo
from micado.testing.openstack.identity.models import Account, IdentityBackend, IdentityProvider
from micado.testing.openstack.image.models import ImageBackend
from micado.testing.openstack.network.models import NetworkBackend

__all__ = ["OpenStackCloud", "DEFAULT_POOL", "SEEDED"]

#: The floating addresses handed out when no pool is given.
DEFAULT_POOL = [f"127.100.0.{n}" for n in range(1, 9)]
#: The names of the seeded resources a master can be launched with.
SEEDED = {"image": "ubuntu-22.04", "flavor": "m1.medium", "network": "private", "keypair": "micado-key",
          "security_group": "all", "floating_network": "public"}


class OpenStackCloud:
    """Keystone, Nova, Glance and Neutron state, scoped per project (see the package docstring).

    Args:
        boot_delay: seconds a server stays in BUILD before it becomes ACTIVE.
        delete_delay: seconds a deleted server stays visible (task state ``deleting``).
        floating_ip_pool: the addresses external networks hand out.
        on_boot, on_create, on_address, on_delete: the hooks (:class:`~.core.Hooks`).
        keystone_url: an external Keystone v3 that issues and validates the tokens;
            ``None`` uses the emulator's own.
        project_id: the project the seeded resources belong to; the emulator's own
            Keystone then issues tokens for a project of that id. Behind an external
            Keystone, give the id of the project its users log in to.

    Attributes:
        faults: the fault switches (:class:`~.core.Faults`).
        requests: every request received, as ``(method, path)`` tuples.
        lock: held while the state changes; hold it to change records by hand.
        identity, images, network, compute: the services' models.
        tokens: what validates the services' tokens: :attr:`identity` or the external Keystone.
    """

    def __init__(
        self,
        *,
        boot_delay: float = 0.2,
        delete_delay: float = 0.0,
        floating_ip_pool: list[str] | None = None,
        on_boot: Callable[[dict[str, Any]], object] | None = None,
        on_create: Callable[[dict[str, Any]], object] | None = None,
        on_address: Callable[[str, str | None], object] | None = None,
        on_delete: Callable[[str], object] | None = None,
        keystone_url: str | None = None,
        project_id: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.hooks = Hooks(on_boot=on_boot, on_create=on_create, on_address=on_address, on_delete=on_delete)
        self.scheduler = Scheduler()
        self.identity = IdentityBackend(self.lock, self.faults)
        self.images = ImageBackend(self.lock)
        self.network = NetworkBackend(self.lock, self.faults, self.hooks,
                                      DEFAULT_POOL if floating_ip_pool is None else floating_ip_pool)
        self.compute = ComputeBackend(self.lock, self.faults, self.hooks, self.scheduler, self.images, self.network)
        self.compute.boot_delay = boot_delay
        self.compute.delete_delay = delete_delay
        self.keystone_url = keystone_url.rstrip("/") if keystone_url else None
        self.tokens: TokenValidator = ExternalKeystone(self.keystone_url) if self.keystone_url else self.identity
        self.account = self.identity.add_account("micado-project", "micado-user", project_id=project_id)
        self._seed()

    def _seed(self) -> None:
        self.add_image(SEEDED["image"])
        self.add_flavor("m1.small", vcpus=1, ram=2048, disk=20, flavor_id="1")
        self.add_flavor("m1.medium", vcpus=2, ram=4096, disk=40, flavor_id="2")
        self.add_keypair(SEEDED["keypair"])
        self.add_network(SEEDED["network"], cidr="10.0.0.0/24")
        self.add_network(SEEDED["floating_network"], cidr="127.100.0.0/24", external=True)
        self.add_security_group("default")
        self.add_security_group(SEEDED["security_group"])

    # --- the seeded account (the emulator's own Keystone) --------------------------------

    @property
    def project_id(self) -> str:
        """The project the seeded resources belong to."""
        return self.account.project_id

    @property
    def project_name(self) -> str:
        """The seeded project's name in the emulator's own Keystone."""
        return self.account.project_name

    @property
    def user_id(self) -> str:
        """The seeded project's user in the emulator's own Keystone."""
        return self.account.user_id

    @property
    def username(self) -> str:
        """That user's name."""
        return self.account.username

    @property
    def password(self) -> str:
        """That user's password."""
        return self.account.password

    @property
    def user_domain_name(self) -> str:
        """That user's domain."""
        return self.account.user_domain_name

    @property
    def app_cred_id(self) -> str:
        """The id of that user's application credential."""
        return self.account.application_credential_id

    @property
    def app_cred_secret(self) -> str:
        """Its secret."""
        return self.account.application_credential_secret

    @property
    def seeded(self) -> dict[str, str]:
        """The names of the seeded resources a master can be launched with."""
        return dict(SEEDED)

    def add_project(self, name: str, *, project_id: str | None = None, username: str | None = None) -> Account:
        """Add a project with one user to the emulator's own Keystone (a second tenant).

        The project starts empty: it sees the public image and flavors and the shared
        external network; seed its own resources with ``project_id=`` of the ``add_*`` methods.

        Args:
            name: the project's name.
            project_id: its id; a new one by default.
            username: its user's name; ``<name>-user`` by default.

        Returns:
            The account: its :meth:`~.identity.models.Account.login` takes the ``auth_url``.

        Raises:
            ValueError: the name, id or user name is taken.
        """
        return self.identity.add_account(name, username or f"{name}-user", project_id=project_id)

    def add_identity_provider(self, idp_id: str, issuer: str, *, project_id: str | None = None) -> IdentityProvider:
        """Let the emulator's own Keystone take OpenID Connect logins through ``idp_id`` (protocol ``openid``).

        Each login's access token is checked with the provider at ``issuer`` (its
        userinfo endpoint); every user it vouches for is mapped into ``project_id``.

        Args:
            idp_id: the identity provider's id (``egi.eu``).
            issuer: the provider's issuer URL (e.g. :attr:`micado.testing.oidc.OIDCProvider.issuer`).
            project_id: the project its users work in; the seeded project by default.

        Returns:
            The identity provider.

        Raises:
            ValueError: the cloud takes an external Keystone's tokens (register it there).
        """
        if self.keystone_url is not None:
            raise ValueError("behind an external Keystone, register identity providers in that Keystone")
        return self.identity.add_identity_provider(idp_id, OIDCUserinfo(issuer), project_id or self.project_id)

    # --- seeding ---------------------------------------------------------------------------

    def add_image(self, name: str, image_id: str | None = None, *, project_id: str | None = None,
                  visibility: str = "public") -> str:
        """Register a Glance image (names may repeat, as in Glance); return its id.

        Args:
            name: its name.
            image_id: its id; a new one by default.
            project_id: its owner; the seeded project by default.
            visibility: ``public`` (every project) or ``private`` (its owner only).
        """
        return self.images.add(name, owner=project_id or self.project_id, image_id=image_id, visibility=visibility)

    def remove_image(self, name_or_id: str) -> None:
        """Delete every image with this id or name."""
        self.images.remove(name_or_id)

    def add_flavor(self, name: str, *, vcpus: int = 1, ram: int = 2048, disk: int = 20,
                   flavor_id: str | None = None) -> str:
        """Register a public Nova flavor; return its id."""
        return self.compute.add_flavor(name, vcpus=vcpus, ram=ram, disk=disk, flavor_id=flavor_id)

    def add_keypair(self, name: str, *, project_id: str | None = None) -> str:
        """Register a Nova key pair of the seeded project (or ``project_id``); return its name."""
        return self.compute.add_keypair(name, owner=project_id or self.project_id)

    def add_network(self, name: str, *, cidr: str = "10.1.0.0/24", external: bool = False,
                    project_id: str | None = None) -> str:
        """Register a Neutron network with one subnet; return the network id.

        Args:
            name: its name.
            cidr: its subnet's range.
            external: an external (and shared) network, where floating IPs come from.
            project_id: its owner; the seeded project by default.
        """
        return self.network.add_network(name, owner=project_id or self.project_id, cidr=cidr, external=external)

    def add_security_group(self, name: str, *, project_id: str | None = None) -> str:
        """Register a Neutron security group of the seeded project (or ``project_id``); return its id."""
        return self.network.add_security_group(name, owner=project_id or self.project_id)

    def add_floating_ip(
        self, address: str | None = None, *, network: str = "public", project_id: str | None = None,
        description: str = "",
    ) -> str:
        """Allocate a floating IP "by someone else" (not through the API); return its id.

        Args:
            address: the address; the next free one of the pool by default.
            network: the external network's name or id.
            project_id: the owner; the seeded project by default.
            description: its description (e.g. another tool's marks).
        """
        network_id = self.network.find_network(network)["id"]
        fip = self.network.allocate_floating_ip(network_id, address, owner=project_id or self.project_id, by="seed",
                                                description=description)
        return str(fip["id"])

    def set_server_metadata(self, server_id: str, metadata: dict[str, str]) -> None:
        """Replace a server's metadata as someone else would (e.g. to make its launch marks older)."""
        with self.lock:
            self.compute.servers_by_id[server_id]["metadata"] = dict(metadata)

    def set_floating_ip_description(self, fip_id: str, description: str) -> None:
        """Change a floating IP's description as someone else would."""
        with self.lock:
            self.network.floating_ips_by_id[fip_id]["description"] = description

    # --- inspection ------------------------------------------------------------------------

    @property
    def servers(self) -> list[dict[str, Any]]:
        """A snapshot of every project's servers (internal records, including ``user_data``)."""
        with self.lock:
            return copy.deepcopy(list(self.compute.servers_by_id.values()))

    def server_snapshot(self, server_id: str) -> dict[str, Any]:
        """A copy of one server's internal record (with ``user_data``)."""
        with self.lock:
            return copy.deepcopy(self.compute.servers_by_id[server_id])

    @property
    def floating_ips(self) -> list[dict[str, Any]]:
        """A snapshot of every project's floating IPs; ``allocated_by`` is ``"api"`` or ``"seed"``."""
        with self.lock:
            return copy.deepcopy(list(self.network.floating_ips_by_id.values()))

    @property
    def ports(self) -> list[dict[str, Any]]:
        """A snapshot of every project's Neutron ports."""
        with self.lock:
            return copy.deepcopy(list(self.network.ports_by_id.values()))

    def leftovers(self) -> dict[str, list[str]]:
        """What a failed or undone launch may have left, in any project: servers, attached
        floating IPs, floating IPs allocated through the API. All three lists are empty when clean."""
        with self.lock:
            fips = list(self.network.floating_ips_by_id.values())
            return {
                "servers": list(self.compute.servers_by_id),
                "attached_floating_ips": [f["floating_ip_address"] for f in fips if f["port_id"]],
                "allocated_floating_ips": [f["floating_ip_address"] for f in fips if f["allocated_by"] == "api"],
            }

    def find_network(self, name_or_id: str) -> dict[str, Any]:
        """The network record with this id or name, in any project."""
        return self.network.find_network(name_or_id)

    def remove_server(self, server_id: str) -> None:
        """Remove a server at once, as if it had been deleted outside the API."""
        self.compute.remove_server(server_id)

    def authenticate(self, token: str | None) -> Caller:
        """Validate a service request's ``X-Auth-Token`` with the identity service (every request).

        Raises:
            EmulatorError: 401 for a missing, invalid, revoked or unscoped token.
        """
        return self.tokens.caller(token)

    # --- the records by id (change them under :attr:`lock`) --------------------------------

    @property
    def images_by_id(self) -> dict[str, dict[str, Any]]:
        """Glance's images, by id."""
        return self.images.images_by_id

    @property
    def flavors_by_id(self) -> dict[str, dict[str, Any]]:
        """Nova's flavors, by id."""
        return self.compute.flavors_by_id

    @property
    def servers_by_id(self) -> dict[str, dict[str, Any]]:
        """Nova's servers, by id."""
        return self.compute.servers_by_id

    @property
    def networks_by_id(self) -> dict[str, dict[str, Any]]:
        """Neutron's networks, by id."""
        return self.network.networks_by_id

    @property
    def subnets_by_id(self) -> dict[str, dict[str, Any]]:
        """Neutron's subnets, by id."""
        return self.network.subnets_by_id

    @property
    def security_groups_by_id(self) -> dict[str, dict[str, Any]]:
        """Neutron's security groups, by id."""
        return self.network.security_groups_by_id

    @property
    def ports_by_id(self) -> dict[str, dict[str, Any]]:
        """Neutron's ports, by id."""
        return self.network.ports_by_id

    @property
    def floating_ips_by_id(self) -> dict[str, dict[str, Any]]:
        """Neutron's floating IPs, by id."""
        return self.network.floating_ips_by_id

    # --- settings and hooks tests change while the cloud runs -------------------------------

    @property
    def boot_delay(self) -> float:
        """Seconds a server stays in BUILD."""
        return self.compute.boot_delay

    @boot_delay.setter
    def boot_delay(self, value: float) -> None:
        self.compute.boot_delay = value

    @property
    def delete_delay(self) -> float:
        """Seconds a deleted server stays visible."""
        return self.compute.delete_delay

    @delete_delay.setter
    def delete_delay(self, value: float) -> None:
        self.compute.delete_delay = value

    @property
    def on_boot(self) -> Callable[[dict[str, Any]], object] | None:
        """The ``on_boot`` hook (:class:`~.core.Hooks`)."""
        return self.hooks.on_boot

    @on_boot.setter
    def on_boot(self, value: Callable[[dict[str, Any]], object] | None) -> None:
        self.hooks.on_boot = value

    @property
    def on_create(self) -> Callable[[dict[str, Any]], object] | None:
        """The ``on_create`` hook (:class:`~.core.Hooks`)."""
        return self.hooks.on_create

    @on_create.setter
    def on_create(self, value: Callable[[dict[str, Any]], object] | None) -> None:
        self.hooks.on_create = value

    @property
    def on_address(self) -> Callable[[str, str | None], object] | None:
        """The ``on_address`` hook (:class:`~.core.Hooks`)."""
        return self.hooks.on_address

    @on_address.setter
    def on_address(self, value: Callable[[str, str | None], object] | None) -> None:
        self.hooks.on_address = value

    @property
    def on_delete(self) -> Callable[[str], object] | None:
        """The ``on_delete`` hook (:class:`~.core.Hooks`)."""
        return self.hooks.on_delete

    @on_delete.setter
    def on_delete(self, value: Callable[[str], object] | None) -> None:
        self.hooks.on_delete = value
