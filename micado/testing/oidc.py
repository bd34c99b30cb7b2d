"""A loopback OpenID Connect provider: discovery, the refresh-token grant, userinfo, revocation.

Enough of a provider such as EGI Check-in for the federated OpenStack login, over
real HTTP on 127.0.0.1, laid out as EGI's (a Keycloak realm)::

    with OIDCProvider() as provider:
        refresh = provider.issue_refresh_token("alice@egi.eu")
        provider.token_endpoint            # what a credentials file's url holds (MiCADO's meaning)
        provider.issuer                    # http://127.0.0.1:PORT/auth/realms/egi
        provider.revoke(refresh)           # its next use answers 400 invalid_grant
        provider.faults.slow_answers = 5   # every answer waits 5 s
        provider.faults.junk = True        # every answer is an HTML page
        provider.faults.down = True        # every answer is 503

Endpoints, under the issuer: ``GET /.well-known/openid-configuration``;
``POST /protocol/openid-connect/token`` (``grant_type=refresh_token``; the client as
HTTP basic or form fields when the provider was made with ``client_id=``);
``GET /protocol/openid-connect/userinfo`` (``Authorization: Bearer``), which the
emulated Keystone asks to validate an access token, as mod_auth_openidc does for a
real one; ``POST /protocol/openid-connect/revoke`` (RFC 7009). Anything else is a
404, and a ``POST`` to the issuer itself a 405, as Keycloak answers. Access tokens
last :attr:`OIDCProvider.access_token_lifetime` seconds; refresh tokens until revoked.
:attr:`OIDCProvider.requests` records ``(method, path)`` of every request.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from werkzeug.wrappers import Request, Response

from micado.testing._serving import Background, serve_wsgi

__all__ = ["OIDCProvider", "OIDCFaults"]

# Keycloak's paths under a realm (EGI Check-in's issuer is such a realm).
_TOKEN = "/protocol/openid-connect/token"
_USERINFO = "/protocol/openid-connect/userinfo"
_REVOKE = "/protocol/openid-connect/revoke"


@dataclass
class OIDCFaults:
    """Fault switches of the provider; each holds while it is set.

    Attributes:
        slow_answers: seconds every answer waits (a provider that hangs).
        down: every answer is ``503 Service Unavailable``.
        junk: every answer is an HTML page with status 200 (a captive portal, a wrong URL).
        huge_answer: the token answer is this many bytes of JSON padding (0: off).
    """

    slow_answers: float = 0.0
    down: bool = False
    junk: bool = False
    huge_answer: int = 0


class OIDCProvider:
    """An OpenID Connect provider on loopback (see the module docstring).

    Args:
        host: the loopback address to listen on.
        port: the port; ``0`` picks a free one.
        realm: the issuer's path (EGI Check-in's: ``/auth/realms/egi``).
        client_id: when given, the token endpoint wants this client (basic or form).
        client_secret: that client's secret (a confidential client); ``None`` for a
            public client, which names itself with ``client_id`` only.
        access_token_lifetime: seconds an access token is valid.

    Attributes:
        faults: the fault switches (:class:`OIDCFaults`).
        requests: every request received, as ``(method, path)`` tuples.
        issued_access_tokens: how many access tokens the token endpoint issued.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, realm: str = "/auth/realms/egi",
                 client_id: str | None = None, client_secret: str | None = None,
                 access_token_lifetime: float = 3600.0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the provider listens on loopback only, not {host!r}")
        self.host = host
        self.port = port
        self.realm = "/" + realm.strip("/") if realm.strip("/") else ""
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token_lifetime = access_token_lifetime
        self.faults = OIDCFaults()
        self.requests: list[tuple[str, str]] = []
        self.issued_access_tokens = 0
        self._lock = threading.Lock()
        self._refresh_tokens: dict[str, str] = {}  # token -> subject
        self._access_tokens: dict[str, tuple[str, float]] = {}  # token -> (subject, expiry)
        self._stopping = threading.Event()
        self._server: Background | None = None

    # --- what tests do -------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer URL (discovery is at ``<issuer>/.well-known/openid-configuration``).

        Raises:
            RuntimeError: the provider is not running.
        """
        if self._server is None:
            raise RuntimeError("the provider is not running; call start() first")
        return f"http://{self.host}:{self.port}{self.realm}"

    @property
    def token_endpoint(self) -> str:
        """The token endpoint: what the ``url`` of MiCADO's ``openid`` block holds.

        Raises:
            RuntimeError: the provider is not running.
        """
        return f"{self.issuer}{_TOKEN}"

    def issue_refresh_token(self, subject: str) -> str:
        """A new refresh token for the user ``subject`` (what a token portal hands out).

        Args:
            subject: the user's ``sub`` claim.

        Returns:
            The refresh token.
        """
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[token] = subject
        return token

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and every access token of its user."""
        with self._lock:
            subject = self._refresh_tokens.pop(refresh_token, None)
            self._access_tokens = {k: v for k, v in self._access_tokens.items() if v[0] != subject}

    def expire_access_tokens(self) -> None:
        """Let every access token issued so far expire now."""
        with self._lock:
            self._access_tokens = {k: (s, 0.0) for k, (s, _) in self._access_tokens.items()}

    def subject_of(self, access_token: str) -> str | None:
        """The user of a valid access token, or ``None``."""
        with self._lock:
            subject, expiry = self._access_tokens.get(access_token, ("", 0.0))
        return subject if subject and expiry > time.time() else None

    # --- HTTP ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Answer one WSGI request."""
        request = Request(environ)
        with self._lock:
            self.requests.append((request.method, request.path))
        if self.faults.slow_answers > 0:
            self._stopping.wait(self.faults.slow_answers)
        if self.faults.down:
            response = Response("Service Unavailable", status=503)
        elif self.faults.junk:
            response = Response("<html><body>Welcome to the portal</body></html>", content_type="text/html")
        else:
            response = self._route(request)
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        realm = self.realm
        routes = {("GET", f"{realm}/.well-known/openid-configuration"): self._discovery,
                  ("POST", f"{realm}{_TOKEN}"): self._token,
                  ("GET", f"{realm}{_USERINFO}"): self._userinfo, ("POST", f"{realm}{_REVOKE}"): self._revoke}
        path = request.path.rstrip("/") or "/"
        handler = routes.get((request.method, path))
        if handler is None:
            if path == (realm or "/") and request.method != "GET":
                return Response("Method Not Allowed", status=405, headers={"Allow": "GET"})
            return Response("Not Found", status=404)
        return handler(request)

    def _discovery(self, request: Request) -> Response:
        base = request.host_url.rstrip("/") + self.realm
        return _json({
            "issuer": base, "token_endpoint": f"{base}{_TOKEN}", "userinfo_endpoint": f"{base}{_USERINFO}",
            "revocation_endpoint": f"{base}{_REVOKE}", "grant_types_supported": ["refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["openid", "email", "profile", "eduperson_entitlement"],
        })

    def _client_ok(self, request: Request) -> bool:
        if self.client_id is None:
            return True
        client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        return client_id == self.client_id and (self.client_secret is None or secret == self.client_secret)

    def _token(self, request: Request) -> Response:
        if not self._client_ok(request):
            return _json({"error": "invalid_client", "error_description": "Invalid client credentials"}, 401)
        if request.form.get("grant_type") != "refresh_token":
            return _json({"error": "unsupported_grant_type"}, 400)
        with self._lock:
            subject = self._refresh_tokens.get(request.form.get("refresh_token", ""))
        if subject is None:
            return _json({"error": "invalid_grant", "error_description": "Token is not active"}, 400)
        access = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access] = (subject, time.time() + self.access_token_lifetime)
            self.issued_access_tokens += 1
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer",
                                "expires_in": int(self.access_token_lifetime),
                                "scope": request.form.get("scope", "openid email profile")}
        if self.faults.huge_answer:
            body["padding"] = "x" * self.faults.huge_answer
        return _json(body)

    def _userinfo(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        subject = self.subject_of(header[7:]) if header.startswith("Bearer ") else None
        if subject is None:
            return _json({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return _json({"sub": subject, "email": subject, "name": subject,
                      "eduperson_entitlement": ["urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu"]})

    def _revoke(self, request: Request) -> Response:
        self.revoke(request.form.get("token", ""))
        return Response(status=200)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> OIDCProvider:
        """Start listening (in a background thread); return self."""
        self._stopping.clear()
        self._server = serve_wsgi(self.host, self.port, self, "oidc-provider")
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop listening (slow answers in progress end at once)."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> OIDCProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server is not None else "stopped"
        return f"<OIDCProvider {where}>"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")
