"""Glance's routes, under ``/image``."""

from __future__ import annotations

from micado.testing.openstack.image.models import ImageBackend
from micado.testing.openstack.image.responses import ImageResponses, error
from micado.testing.openstack.wsgi import Route, Service

__all__ = ["service"]


def service(backend: ImageBackend) -> Service:
    """Glance's routes.

    Args:
        backend: Glance's state.

    Returns:
        The service to serve.
    """
    r = ImageResponses(backend)
    return Service("/image", [
        Route("GET", r"/image", r.versions, public=True),
        Route("GET", r"/image/v2/images", r.list_images),
        Route("GET", r"/image/v2/images/(?P<image_id>[^/]+)", r.show_image),
    ], error)
