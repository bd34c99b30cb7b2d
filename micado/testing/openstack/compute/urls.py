"""Nova's routes, under ``/compute/v2.1`` (every answer carries the microversion headers)."""

from __future__ import annotations

from micado.testing.openstack.compute.models import ComputeBackend
from micado.testing.openstack.compute.responses import ComputeResponses, error, microversioned
from micado.testing.openstack.wsgi import Route, Service

__all__ = ["service"]


def service(backend: ComputeBackend) -> Service:
    """Nova's routes.

    Args:
        backend: Nova's state.

    Returns:
        The service to serve.
    """
    r = ComputeResponses(backend)
    base = r"/compute/v2\.1"
    routes = [
        Route("GET", r"/compute", r.versions, public=True),
        Route("GET", base, r.version, public=True),
        Route("GET", base + r"/flavors(?:/detail)?", r.list_flavors),
        Route("GET", base + r"/flavors/(?P<flavor_id>[^/]+)", r.show_flavor),
        Route("GET", base + r"/os-keypairs", r.list_keypairs),
        Route("GET", base + r"/os-keypairs/(?P<name>[^/]+)", r.show_keypair),
        Route("GET", base + r"/servers(?:/detail)?", r.list_servers),
        Route("POST", base + r"/servers", r.create_server),
        Route("GET", base + r"/servers/(?P<server_id>[^/]+)", r.show_server),
        Route("DELETE", base + r"/servers/(?P<server_id>[^/]+)", r.delete_server),
    ]
    return Service("/compute", [Route(x.method, x.path, microversioned(x.handler), x.public) for x in routes], error)
