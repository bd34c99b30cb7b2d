"""Exchange an OpenID Connect refresh token for an access token (the first step of federated login).

The flow EGI Check-in documents for its token portal, and any OpenID Connect
provider serves:

1. ``GET <url>/.well-known/openid-configuration`` (OIDC Discovery 1.0): the
   provider's ``token_endpoint``;
2. ``POST <token_endpoint>`` with ``grant_type=refresh_token``, the
   ``refresh_token``, the ``scope`` if the credentials name one (otherwise the
   refresh token's own scopes, RFC 6749 section 6) and the client: a public
   client (EGI's ``token-portal``) as the ``client_id`` field, a confidential one
   with HTTP basic authentication, or as form fields when the provider lists only
   ``client_secret_post``;
3. the answer's ``access_token`` goes to Keystone (keystoneauth's
   ``OidcAccessToken`` plugin) and is kept in memory only.

Both requests run under one wall-clock deadline (:func:`micado.transfer.deadline`)
and each answer is read up to :data:`MAX_ANSWER_BYTES`. A refused refresh token or
client is a :class:`~micado.exceptions.CredentialsError` naming the file and key; a
provider that cannot be reached, is too slow, fails or answers something that is not
the protocol is a :class:`~micado.exceptions.LaunchError`. Neither token ever
appears in a message or a log.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests

from micado import transfer
from micado.config._openid import is_loopback_host
from micado.config.credentials import OIDCAuth, OpenIDRefresh
from micado.exceptions import CredentialsError, LaunchError

__all__ = ["fetch_access_token", "MAX_ANSWER_BYTES"]

logger = logging.getLogger(__name__)

#: Bytes read at most from each of the provider's answers (a discovery document is a
#: few KiB; a token answer with a JWT access token rarely more than 8 KiB).
MAX_ANSWER_BYTES = 256 << 10
_FORM = "application/x-www-form-urlencoded"


class _Refused(Exception):
    """The provider answered with an error status (kept apart from transport failures)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def fetch_access_token(credentials: OIDCAuth, *, timeout: float, verify: bool | str = True) -> str:
    """Get a fresh access token for ``credentials`` from its provider.

    Args:
        credentials: OpenID Connect credentials with a ``refresh`` block.
        timeout: seconds for the whole exchange (discovery and token request).
        verify: TLS verification, as for the cloud (``True``, a CA bundle, ``False``).

    Returns:
        The access token.

    Raises:
        CredentialsError: the provider refused the refresh token (``invalid_grant``:
            expired, revoked, or issued to another client) or the client
            (``invalid_client``, ``unauthorized_client``), or the scope (``invalid_scope``).
        LaunchError: the provider could not be reached, did not answer within
            ``timeout``, failed (5xx or another error), or answered something that is
            not OpenID Connect (not JSON, no ``token_endpoint``, no ``access_token``,
            larger than :data:`MAX_ANSWER_BYTES`).
    """
    refresh = credentials.refresh
    if refresh is None:
        raise ValueError("these credentials hold a literal access token; nothing to exchange")
    started = time.monotonic()
    http = transfer.session()
    http.verify = verify
    http.trust_env = False  # no proxy from the environment: the token must go to the provider itself
    doing = "discover its token endpoint"
    try:
        with transfer.deadline(timeout) as watch:
            try:
                discovery = _json(http, "GET", f"{refresh.url}/.well-known/openid-configuration", timeout)
                endpoint = _token_endpoint(discovery, refresh)
                doing = "exchange the refresh token"
                token = _exchange(http, endpoint, refresh, discovery, timeout)
            except requests.RequestException as exc:
                if watch.expired or isinstance(exc, requests.Timeout):
                    raise LaunchError(
                        f"the OpenID Connect provider at {refresh.url} did not answer within {timeout:g} s "
                        f"while trying to {doing} (request_timeout)"
                    ) from None
                if isinstance(exc, requests.exceptions.SSLError):
                    raise LaunchError(
                        f"TLS check failed for the OpenID Connect provider at {refresh.url}: {_first_line(exc)} "
                        "(give verify= a CA bundle)"
                    ) from None
                raise LaunchError(
                    f"cannot reach the OpenID Connect provider at {refresh.url} to {doing}: {_first_line(exc)}"
                ) from None
            except _Refused as refused:
                raise _refusal(refused, credentials, doing) from None
    finally:
        http.close()
    logger.debug("got an OpenID Connect access token from %s in %.3f s", refresh.url, time.monotonic() - started)
    return token


def _json(http: requests.Session, method: str, url: str, timeout: float, **kwargs: Any) -> Any:
    """One request; the answer's JSON body (``_Refused`` for an error status)."""
    response = http.request(method, url, timeout=timeout, stream=True, allow_redirects=False, **kwargs)
    with response:
        def too_large(declared: int | None) -> LaunchError:
            size = f"{declared} bytes" if declared is not None else f"more than {MAX_ANSWER_BYTES} bytes"
            return LaunchError(f"the OpenID Connect provider's answer to {method} {url} is too large ({size})")

        body = b"".join(transfer.bounded_chunks(response, MAX_ANSWER_BYTES, too_large))
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if response.status_code >= 300:
            raise _Refused(response.status_code, data)
        if not isinstance(data, dict):
            kind = response.headers.get("Content-Type", "no content type")
            raise LaunchError(
                f"the OpenID Connect provider answered {method} {url} with something that is not a JSON "
                f"object ({kind}, HTTP {response.status_code}); is the url its issuer URL?"
            )
        return data


def _token_endpoint(discovery: dict[str, Any], refresh: OpenIDRefresh) -> str:
    from urllib.parse import urlsplit

    endpoint = discovery.get("token_endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise LaunchError(
            f"the OpenID Connect discovery document of {refresh.url} names no http(s) token_endpoint"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise LaunchError(
            f"the OpenID Connect provider at {refresh.url} names a plain-http token endpoint "
            f"({parts.hostname}); the refresh token is not sent unencrypted"
        )
    return str(endpoint)


def _exchange(
    http: requests.Session, endpoint: str, refresh: OpenIDRefresh, discovery: dict[str, Any], timeout: float
) -> str:
    form = {"grant_type": "refresh_token", "refresh_token": refresh.refresh_token}
    if refresh.scope:
        form["scope"] = refresh.scope
    auth = None
    if refresh.client_id is not None:
        methods = discovery.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if refresh.client_secret is None:
            form["client_id"] = refresh.client_id  # a public client names itself
        elif "client_secret_basic" not in methods and "client_secret_post" in methods:
            form.update(client_id=refresh.client_id, client_secret=refresh.client_secret)
        else:
            auth = (refresh.client_id, refresh.client_secret)  # RFC 6749 2.3.1: every server supports it
    answer = _json(http, "POST", endpoint, timeout, data=form, auth=auth,
                   headers={"Accept": "application/json", "Content-Type": _FORM})
    token = answer.get("access_token")
    if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
        raise LaunchError(f"the OpenID Connect provider at {refresh.url} answered the refresh without an access_token")
    kind = answer.get("token_type")
    if isinstance(kind, str) and kind.lower() != "bearer":
        raise LaunchError(
            f"the OpenID Connect provider at {refresh.url} issued a {kind!r} token; Keystone takes bearer tokens"
        )
    return token.strip()


def _refusal(refused: _Refused, credentials: OIDCAuth, doing: str) -> Exception:
    refresh = credentials.refresh
    assert refresh is not None
    body = refused.body if isinstance(refused.body, dict) else {}
    code = body.get("error") if isinstance(body.get("error"), str) else None
    described = body.get("error_description")
    detail = f": {str(described)[:200]}" if isinstance(described, str) and described.strip() else ""
    where = f"the OpenID Connect provider at {refresh.url}"
    if code == "invalid_grant":
        return CredentialsError(
            f"{where} refused the refresh token in {credentials.path} ({refresh.key}.refresh_token): "
            f"invalid_grant{detail}. It has expired or was revoked, or it was issued to another client: "
            "get a new refresh token (for EGI Check-in: https://aai.egi.eu/token) and put it in the file",
            path=credentials.path, key=f"{refresh.key}.refresh_token",
        )
    if code in ("invalid_client", "unauthorized_client") or (code is None and refused.status == 401
                                                              and doing.startswith("exchange")):
        return CredentialsError(
            f"{where} refused the client ({code or 'HTTP 401'}{detail}): check client_id and client_secret "
            f"in {refresh.key} of {credentials.path} (a public client such as EGI's token-portal needs "
            "client_id only)",
            path=credentials.path, key=f"{refresh.key}.client_id",
        )
    if code == "invalid_scope":
        return CredentialsError(
            f"{where} refused the scope {refresh.scope!r} ({code}{detail}); fix or remove "
            f"{refresh.key}.scope in {credentials.path}",
            path=credentials.path, key=f"{refresh.key}.scope",
        )
    verb = "failed" if refused.status >= 500 else "refused"
    reason = f"{code}{detail}, " if code else ""
    hint = "; is the url its issuer URL?" if doing.startswith("discover") and refused.status == 404 else ""
    return LaunchError(f"{where} {verb} to {doing} ({reason}HTTP {refused.status}){hint}")


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
