"""Token checks with a real Keystone, for an emulator whose users log in there.

Like keystonemiddleware, the services ask Keystone about every request's token
(``GET /v3/auth/tokens`` with the token as ``X-Subject-Token``) and take the
project and user from the answer. Unlike keystonemiddleware, nothing is cached:
a token revoked in Keystone stops working with the next request, which is what
tests of revocation need (keystonemiddleware trusts a validated token for up to
``token_cache_time``, 300 s by default). A validation costs one loopback request.
"""

from __future__ import annotations

import threading

import requests

from micado.testing.openstack.core import Caller, EmulatorError, unauthorized
from micado.testing.openstack.identity.models import caller_of

__all__ = ["ExternalKeystone"]


class ExternalKeystone:
    """Validates tokens with a Keystone v3 at ``url`` (see the module docstring).

    The token is its own service token: Keystone lets a token's holder validate it
    (policy ``identity:validate_token``), so the emulator needs no account there.

    Args:
        url: the Keystone v3 URL (``http://127.0.0.1:5000/v3``).
        timeout: seconds to wait for Keystone's answer.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()  # one keep-alive session per server thread

    def caller(self, token: str | None) -> Caller:
        """Validate ``token`` with Keystone now (see :class:`~micado.testing.openstack.core.TokenValidator`).

        Args:
            token: the ``X-Auth-Token`` header, if sent.

        Returns:
            The project and user of Keystone's answer.

        Raises:
            EmulatorError: 401 when there is no token, Keystone refuses it (unknown,
                expired, revoked) or it is not scoped to a project; 503 when Keystone
                cannot be asked.
        """
        if not token:
            raise unauthorized()
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            answer = session.get(f"{self.url}/auth/tokens", timeout=self.timeout,
                                 headers={"X-Auth-Token": token, "X-Subject-Token": token})
        except requests.RequestException as exc:
            raise EmulatorError(503, f"The identity service at {self.url} could not be reached: {exc}",
                                "ServiceUnavailable") from None
        if answer.status_code != 200:
            raise unauthorized()
        try:
            body = answer.json()["token"]
        except (ValueError, KeyError, TypeError):
            raise EmulatorError(503, f"The identity service at {self.url} answered without a token.",
                                "ServiceUnavailable") from None
        return caller_of(body)
