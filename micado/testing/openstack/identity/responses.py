"""Keystone v3's HTTP face: version documents, ``/v3/auth/tokens`` (issue, validate, revoke), the
federated login (``OS-FEDERATION``), errors."""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from micado.testing.openstack.core import REGION, SERVICE_PATHS, EmulatorError
from micado.testing.openstack.identity.models import IdentityBackend
from micado.testing.openstack.wsgi import base_url, body_of, json_response

__all__ = ["IdentityResponses", "error"]

_TITLES = {401: "Unauthorized", 404: "Not Found", 400: "Bad Request", 503: "Service Unavailable"}
_NAMES = {"identity": "keystone", "compute": "nova", "image": "glance", "network": "neutron"}


def error(exc: EmulatorError) -> Response:
    """Keystone's error body (``{"error": {"code", "title", "message"}}``)."""
    body = {"error": {"code": exc.status, "title": _TITLES.get(exc.status, "Error"), "message": exc.message}}
    headers = {"WWW-Authenticate": 'Keystone uri="identity"'} if exc.status == 401 else {}
    return json_response(body, exc.status, headers)


class IdentityResponses:
    """The handlers of the Keystone routes.

    Args:
        backend: the accounts and tokens.
    """

    def __init__(self, backend: IdentityBackend) -> None:
        self.backend = backend

    @staticmethod
    def _version_doc(request: Request) -> dict[str, Any]:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{base_url(request)}/identity/v3/"}],
                "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}

    def versions(self, request: Request) -> Response:
        """``GET /identity``: the version list (300 Multiple Choices, as Keystone answers)."""
        return json_response({"versions": {"values": [self._version_doc(request)]}}, 300)

    def version(self, request: Request) -> Response:
        """``GET /identity/v3``."""
        return json_response({"version": self._version_doc(request)})

    @staticmethod
    def _catalog(request: Request) -> list[dict[str, Any]]:
        base = base_url(request)
        return [{"type": kind, "name": _NAMES[kind], "id": secrets.token_hex(16), "endpoints": [
                    {"id": secrets.token_hex(16), "interface": "public", "region": REGION, "region_id": REGION,
                     "url": base + path}]}
                for kind, path in SERVICE_PATHS.items()]

    def issue_token(self, request: Request) -> Response:
        """``POST /identity/v3/auth/tokens``: log in (password or application credential)."""
        auth = body_of(request, "auth", "Expecting to find identity in auth.")
        token_id, token = self.backend.issue_token(auth, self._catalog(request))
        return json_response({"token": token}, 201, {"X-Subject-Token": token_id})

    def federated_login(self, request: Request, idp: str, protocol: str) -> Response:
        """``POST``/``GET /identity/v3/OS-FEDERATION/identity_providers/<idp>/protocols/<protocol>/auth``:
        an unscoped token for the bearer access token's user."""
        token_id, token = self.backend.federated_login(idp, protocol, request.headers.get("Authorization"))
        return json_response({"token": token}, 201, {"X-Subject-Token": token_id})

    def validate_token(self, request: Request) -> Response:
        """``GET``/``HEAD /identity/v3/auth/tokens``: the body of ``X-Subject-Token``."""
        subject = request.headers.get("X-Subject-Token")
        token = self.backend.validate(request.headers.get("X-Auth-Token"), subject)
        return json_response({"token": token}, 200, {"X-Subject-Token": subject or ""})

    def revoke_token(self, request: Request) -> Response:
        """``DELETE /identity/v3/auth/tokens``: ``X-Subject-Token`` stops working."""
        self.backend.revoke(request.headers.get("X-Auth-Token"), request.headers.get("X-Subject-Token"))
        return Response(status=204)
