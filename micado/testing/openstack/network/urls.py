"""Neutron's routes, under ``/network``."""

from __future__ import annotations

from micado.testing.openstack.network.models import KINDS, NetworkBackend
from micado.testing.openstack.network.responses import NetworkResponses, error
from micado.testing.openstack.wsgi import Route, Service

__all__ = ["service"]


def service(backend: NetworkBackend) -> Service:
    """Neutron's routes.

    Args:
        backend: Neutron's state.

    Returns:
        The service to serve.
    """
    r = NetworkResponses(backend)
    base = r"/network/v2\.0"
    routes = [Route("GET", r"/network", r.versions, public=True)]
    for kind in KINDS:
        routes.append(Route("GET", rf"{base}/{kind}", r.lister(kind)))
        routes.append(Route("GET", rf"{base}/{kind}/(?P<item_id>[^/]+)", r.shower(kind)))
    fip = rf"{base}/floatingips/(?P<fip_id>[^/]+)"
    routes += [
        Route("POST", rf"{base}/floatingips", r.create_floating_ip),
        Route("PUT", fip, r.update_floating_ip),
        Route("DELETE", fip, r.delete_floating_ip),
    ]
    return Service("/network", routes, error)
