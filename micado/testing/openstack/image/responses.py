"""Glance v2's HTTP face: the version list, images (filtered, paged), errors."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from micado.testing.openstack.core import Caller, EmulatorError
from micado.testing.openstack.image.models import ImageBackend
from micado.testing.openstack.wsgi import base_url, filtered, json_response, paged

__all__ = ["ImageResponses", "error"]

_REASONS = {401: "Unauthorized", 404: "Not Found", 400: "Bad Request", 409: "Conflict"}


def error(exc: EmulatorError) -> Response:
    """Glance's plain-text error page."""
    reason = _REASONS.get(exc.status, "Error")
    return Response(f"{exc.status} {reason}\n\n{exc.message}\n\n", status=exc.status, content_type="text/plain")


class ImageResponses:
    """The handlers of the Glance routes.

    Args:
        backend: Glance's state.
    """

    def __init__(self, backend: ImageBackend) -> None:
        self.backend = backend

    def versions(self, request: Request) -> Response:
        """``GET /image``: the version list (300 Multiple Choices)."""
        link = [{"rel": "self", "href": f"{base_url(request)}/image/v2/"}]
        versions = [{"id": f"v2.{minor}", "status": "CURRENT" if minor == 16 else "SUPPORTED", "links": link}
                    for minor in (16, 15, 9, 0)]
        return json_response({"versions": versions}, 300)

    def list_images(self, request: Request, caller: Caller) -> Response:
        """``GET /image/v2/images``: the images the project sees."""
        page, next_marker = paged(filtered(self.backend.visible(caller), request.args), request.args)
        body: dict[str, Any] = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if next_marker:
            body["next"] = f"/v2/images?marker={next_marker}&limit={request.args.get('limit')}"
        return json_response(body)

    def show_image(self, request: Request, caller: Caller, image_id: str) -> Response:
        """``GET /image/v2/images/<id>``."""
        return json_response(self.backend.get(caller, image_id))
