"""Nova 2.1's HTTP face: version documents, flavors, key pairs, servers, microversions, errors."""

from __future__ import annotations

import functools
import re
import secrets
from typing import Any
from collections.abc import Callable

from werkzeug.wrappers import Request, Response

from micado.testing.openstack.compute.models import ComputeBackend
from micado.testing.openstack.core import Caller, EmulatorError, now
from micado.testing.openstack.wsgi import base_url, body_of, json_response

__all__ = ["ComputeResponses", "error", "microversioned"]

NOVA_MIN, NOVA_MAX = (2, 1), (2, 1)
_ERROR_KINDS = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
                406: "notAcceptable", 409: "conflictingRequest"}


def error(exc: EmulatorError) -> Response:
    """Nova's error body (``{"itemNotFound": {"code", "message"}}``...)."""
    kind = _ERROR_KINDS.get(exc.status, "computeFault")
    return json_response({kind: {"code": exc.status, "message": exc.message}}, exc.status)


def _text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _microversion(request: Request) -> dict[str, str]:
    """Check Nova's microversion headers and return the ones to answer with."""
    wanted = request.headers.get("OpenStack-API-Version", "")
    wanted = wanted.split()[-1] if wanted.startswith("compute") else request.headers.get(
        "X-OpenStack-Nova-API-Version", "")
    version = NOVA_MIN
    if wanted and wanted != "latest":
        try:
            major, minor = (int(p) for p in wanted.split("."))
        except ValueError:
            raise EmulatorError(400, f"Invalid API version request string {wanted}") from None
        version = (major, minor)
        if not NOVA_MIN <= version <= NOVA_MAX:
            raise EmulatorError(406, f"Version {wanted} is not supported by the API. Minimum is "
                                     f"{_text(NOVA_MIN)} and maximum is {_text(NOVA_MAX)}.")
    text = _text(version)
    return {"OpenStack-API-Version": f"compute {text}", "X-OpenStack-Nova-API-Version": text,
            "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"}


def microversioned(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a Nova handler: refuse unknown microversions, answer with the version headers."""

    @functools.wraps(handler)
    def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
        headers = _microversion(request)
        response = handler(request, *args, **kwargs)
        response.headers.update(headers)
        return response

    return wrapped


class ComputeResponses:
    """The handlers of the Nova routes.

    Args:
        backend: Nova's state.
    """

    def __init__(self, backend: ComputeBackend) -> None:
        self.backend = backend

    @staticmethod
    def _version_doc(request: Request) -> dict[str, Any]:
        return {"id": "v2.1", "status": "CURRENT", "version": _text(NOVA_MAX),
                "min_version": _text(NOVA_MIN), "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": f"{base_url(request)}/compute/v2.1/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2.1"}]}

    def versions(self, request: Request) -> Response:
        """``GET /compute``."""
        return json_response({"versions": [self._version_doc(request)]})

    def version(self, request: Request) -> Response:
        """``GET /compute/v2.1``."""
        return json_response({"version": self._version_doc(request)})

    @staticmethod
    def _links(request: Request, kind: str, item_id: str) -> list[dict[str, str]]:
        link = f"{base_url(request)}/compute/v2.1/{kind}/{item_id}"
        return [{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}]

    def list_flavors(self, request: Request, caller: Caller) -> Response:
        """``GET /flavors`` and ``/flavors/detail``."""
        with self.backend.lock:
            flavors = [dict(f) for f in self.backend.flavors_by_id.values()]
        return json_response({"flavors": [{**f, "links": self._links(request, "flavors", f["id"])} for f in flavors]})

    def show_flavor(self, request: Request, caller: Caller, flavor_id: str) -> Response:
        """``GET /flavors/<id>``."""
        flavor = self.backend.flavor(flavor_id)
        return json_response({"flavor": {**flavor, "links": self._links(request, "flavors", flavor_id)}})

    def list_keypairs(self, request: Request, caller: Caller) -> Response:
        """``GET /os-keypairs``: the project's key pairs."""
        return json_response({"keypairs": [{"keypair": k} for k in self.backend.keypairs_of(caller)]})

    def show_keypair(self, request: Request, caller: Caller, name: str) -> Response:
        """``GET /os-keypairs/<name>``."""
        keypair = self.backend.keypair(caller, name)
        return json_response({"keypair": {**keypair, "user_id": caller.user_id, "deleted": False,
                                          "created_at": now(), "updated_at": None, "deleted_at": None, "id": 1}})

    def list_servers(self, request: Request, caller: Caller) -> Response:
        """``GET /servers`` and ``/servers/detail``: the project's servers (``name`` is a regex)."""
        servers = self.backend.servers_of(caller)
        if request.args.get("name"):
            servers = [s for s in servers if re.search(request.args["name"], s["name"])]
        if request.path.rstrip("/").endswith("detail"):
            return json_response({"servers": [self._view(request, s) for s in servers]})
        return json_response({"servers": [{"id": s["id"], "name": s["name"], "links": []} for s in servers]})

    def _view(self, request: Request, server: dict[str, Any]) -> dict[str, Any]:
        return {**server, "links": self._links(request, "servers", server["id"])}

    def show_server(self, request: Request, caller: Caller, server_id: str) -> Response:
        """``GET /servers/<id>``."""
        return json_response({"server": self._view(request, self.backend.server(caller, server_id))})

    def create_server(self, request: Request, caller: Caller) -> Response:
        """``POST /servers``: 202 with the id; the server boots in the background."""
        body = body_of(request, "server", "Invalid input for field/attribute server.")
        if not isinstance(body, dict):
            raise EmulatorError(400, "Invalid input for field/attribute server.")
        server = self.backend.create_server(caller, body)
        return json_response({"server": {"id": server["id"], "links": self._links(request, "servers", server["id"]),
                                         "OS-DCF:diskConfig": "MANUAL", "adminPass": secrets.token_urlsafe(9),
                                         "security_groups": server["security_groups"]}}, 202)

    def delete_server(self, request: Request, caller: Caller, server_id: str) -> Response:
        """``DELETE /servers/<id>``: 204; the server is gone after the delete delay."""
        self.backend.delete_server(caller, server_id)
        return Response(status=204)
