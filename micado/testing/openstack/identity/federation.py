"""Access-token checks with an OpenID Connect provider, for the federated login of the emulated Keystone.

A real Keystone sits behind mod_auth_openidc, which validates the bearer token of
``POST /v3/OS-FEDERATION/identity_providers/<idp>/protocols/openid/auth`` with the
provider (introspection or userinfo) and hands Keystone the claims. Here the
provider's ``userinfo_endpoint`` (from its discovery document) is asked, on every
login, with the access token as the bearer: a revoked or expired token fails at once.
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from micado.testing.openstack.core import EmulatorError, unauthorized

__all__ = ["OIDCUserinfo"]


class OIDCUserinfo:
    """Turns an access token into its claims by asking the provider at ``issuer``.

    Args:
        issuer: the provider's issuer URL (``OIDCProvider.issuer``; discovery is under it).
        timeout: seconds to wait for each of the provider's answers.
    """

    def __init__(self, issuer: str, *, timeout: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()  # one keep-alive session per server thread

    def claims(self, access_token: str) -> dict[str, Any]:
        """The provider's claims about ``access_token`` (at least ``sub``).

        Args:
            access_token: the bearer token of the federated login.

        Returns:
            The userinfo claims.

        Raises:
            EmulatorError: 401 when the provider refuses the token; 503 when it cannot
                be asked or answers without a ``sub``.
        """
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            discovery = session.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout).json()
            answer = session.get(discovery["userinfo_endpoint"], timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {access_token}"})
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise EmulatorError(503, f"The OpenID Connect provider at {self.issuer} could not be asked: "
                                     f"{type(exc).__name__}", "ServiceUnavailable") from None
        if answer.status_code in (400, 401, 403):
            raise unauthorized("The request you have made requires authentication.")
        try:
            claims = answer.json()
            if answer.status_code != 200 or not isinstance(claims.get("sub"), str):
                raise ValueError
        except (ValueError, AttributeError):
            raise EmulatorError(503, f"The OpenID Connect provider at {self.issuer} answered without claims.",
                                "ServiceUnavailable") from None
        return dict(claims)
