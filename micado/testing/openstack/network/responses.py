"""Neutron v2.0's HTTP face: the version list, the collections (filtered, paged), floating IPs, errors."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from werkzeug.wrappers import Request, Response

from micado.testing.openstack.core import Caller, EmulatorError
from micado.testing.openstack.network.models import KINDS, NetworkBackend
from micado.testing.openstack.wsgi import base_url, body_of, filtered, json_response, paged

__all__ = ["NetworkResponses", "error"]


def error(exc: EmulatorError) -> Response:
    """Neutron's error body (``{"NeutronError": {"type", "message", "detail"}}``)."""
    return json_response({"NeutronError": {"type": exc.kind or "NeutronError", "message": exc.message,
                                           "detail": ""}}, exc.status)


def _if_match_revision(request: Request) -> int | None:
    """The revision of Neutron's ``If-Match: revision_number=N`` header, if sent."""
    for value in request.headers.get("If-Match", "").split(","):
        name, _, number = value.strip().strip('"').partition("=")
        if name == "revision_number":
            try:
                return int(number)
            except ValueError:
                raise EmulatorError(400, f"Invalid If-Match value {value.strip()!r}", "HTTPBadRequest") from None
    return None


class NetworkResponses:
    """The handlers of the Neutron routes.

    Args:
        backend: Neutron's state.
    """

    def __init__(self, backend: NetworkBackend) -> None:
        self.backend = backend

    def versions(self, request: Request) -> Response:
        """``GET /network``."""
        return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                            "links": [{"rel": "self", "href": f"{base_url(request)}/network/v2.0/"}]}]})

    def lister(self, kind: str) -> Callable[..., Response]:
        """The handler of ``GET /v2.0/<kind>``: what the project sees, filtered and paged."""
        key = kind.replace("-", "_")

        def handler(request: Request, caller: Caller) -> Response:
            page, next_marker = paged(filtered(self.backend.visible(kind, caller), request.args), request.args)
            body: dict[str, Any] = {key: page}
            if next_marker:
                body[f"{key}_links"] = [{"rel": "next", "href": f"{base_url(request)}/network/v2.0/{kind}?"
                                                               f"limit={request.args['limit']}&marker={next_marker}"}]
            return json_response(body)

        return handler

    def shower(self, kind: str) -> Callable[..., Response]:
        """The handler of ``GET /v2.0/<kind>/<id>``."""
        singular = KINDS[kind][0]

        def handler(request: Request, caller: Caller, item_id: str) -> Response:
            return json_response({singular: self.backend.get(kind, caller, item_id)})

        return handler

    def create_floating_ip(self, request: Request, caller: Caller) -> Response:
        """``POST /v2.0/floatingips``: allocate (and associate, with ``port_id``)."""
        body = body_of(request, "floatingip", "Invalid input: floating_network_id is required.", "HTTPBadRequest")
        if not isinstance(body, dict) or "floating_network_id" not in body:
            raise EmulatorError(400, "Invalid input: floating_network_id is required.", "HTTPBadRequest")
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 255:
            raise EmulatorError(400, f"Invalid input for description. Reason: '{description}' exceeds maximum "
                                "length of 255.", "HTTPBadRequest")
        fip = self.backend.allocate_floating_ip(body["floating_network_id"], body.get("floating_ip_address"),
                                                owner=caller.project_id, by="api",
                                                description=body.get("description") or "")
        if self.backend.faults.lose_floating_ip_answer:
            raise EmulatorError(500, "Request Failed: internal server error while processing your request.",
                                "HTTPInternalServerError")
        if body.get("port_id"):
            return json_response({"floatingip": self.backend.associate(caller, fip["id"], body["port_id"])}, 201)
        return json_response({"floatingip": self.backend.get("floatingips", caller, fip["id"])}, 201)

    def update_floating_ip(self, request: Request, caller: Caller, fip_id: str) -> Response:
        """``PUT /v2.0/floatingips/<id>``: (dis)associate, compare-and-swap with ``If-Match``."""
        body = body_of(request, "floatingip", "Invalid input: a floatingip object is required.", "HTTPBadRequest")
        if not isinstance(body, dict):
            raise EmulatorError(400, "Invalid input: a floatingip object is required.", "HTTPBadRequest")
        fip = self.backend.associate(caller, fip_id, body.get("port_id"), _if_match_revision(request))
        return json_response({"floatingip": fip})

    def delete_floating_ip(self, request: Request, caller: Caller, fip_id: str) -> Response:
        """``DELETE /v2.0/floatingips/<id>``."""
        self.backend.delete_floating_ip(caller, fip_id)
        return Response(status=204)
