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
project-scoped ``X-Auth-Token``, checked with the identity service on every
request (a revoked token stops working at once): the emulator's own Keystone, or
an external one (``keystone_url=``) whose catalog points at this emulator
(register the URLs of :attr:`OpenStackEmulator.endpoints` as public endpoints).

Tenancy: each request acts for the project of its token. Servers, key pairs,
security groups, ports and floating IPs are that project's; networks too, except
shared and external ones, which every project sees (as in Neutron); public images
and flavors are everyone's. The seeded resources belong to ``project_id`` (give
the external Keystone's project id there); :meth:`OpenStackEmulator.add_project`
adds a second project to the emulator's own Keystone. Inspection (``servers``,
``floating_ips``, ``leftovers()``) sees every project.

"Booting" a server waits ``boot_delay`` seconds and then calls ``on_boot`` with the
server (including its decoded ``user_data``); associating a floating IP calls
``on_address``; deleting a server calls ``on_delete``. The local MiCADO stack uses
these hooks to turn servers into local SSH "VMs".

Run standalone with ``python -m micado.testing.openstack --port N --ready-file R``
(``--keystone-url URL --project-id P`` behind a real Keystone); R receives a JSON
document with the login, the seeded names and the endpoints once the server listens.

Layout, as moto lays out its emulators: each service has ``models`` (its state,
which never imports HTTP code), ``responses`` (requests to model calls and
answers) and ``urls`` (its routes); :mod:`.core` holds what they share,
:mod:`.state` wires the models into one cloud, :mod:`.wsgi` dispatches, and
:mod:`.server` serves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from micado.testing.openstack.core import REGION, EmulatorError, Faults
from micado.testing.openstack.state import DEFAULT_POOL, OpenStackCloud

if TYPE_CHECKING:
    from micado.testing.openstack.server import OpenStackEmulator, main

__all__ = ["OpenStackEmulator", "OpenStackCloud", "Faults", "EmulatorError", "main", "REGION", "DEFAULT_POOL"]


def __getattr__(name: str) -> Any:
    """The server's names, imported when first asked for: importing the state (this
    package's models) must not load the HTTP front end and werkzeug."""
    if name in ("OpenStackEmulator", "main"):
        from micado.testing.openstack import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the server's included (for ``dir()`` and autodoc)."""
    return sorted({*globals(), *__all__})
