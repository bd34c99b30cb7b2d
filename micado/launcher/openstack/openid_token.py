"""Exchange an OpenID Connect refresh token for an access token (the first step of federated login).

The ``url`` of MiCADO's ``openid`` block is the provider's **token endpoint**: MiCADO
itself (ansible-micado's EGI token script on the master) posts the refresh token
straight to it, and the same credentials file is copied to the master. So do we:

1. ``POST <url>`` with ``grant_type=refresh_token``, the ``refresh_token``, the
   ``scope`` if the credentials name one (otherwise the refresh token's own scopes,
   RFC 6749 section 6) and the client: a public client (EGI's ``token-portal``) as the
   ``client_id`` field, a confidential one with HTTP basic authentication (RFC 6749
   section 2.3.1, which every provider supports). No discovery, no redirects followed.
2. The answer's ``access_token`` goes to Keystone (keystoneauth's ``OidcAccessToken``
   plugin) and is kept in memory only.

When that fails in a way a token endpoint would not (a 404, a redirect, a page that is
not OAuth's JSON), ``<url>/.well-known/openid-configuration`` is fetched, only to
diagnose: if it names a ``token_endpoint``, ``url`` is the provider's issuer and the
error (a :class:`~micado.exceptions.CredentialsError`) names the token endpoint to
write instead.

Everything runs under one wall-clock deadline (:func:`micado.transfer.deadline`) and
each answer is read up to :data:`MAX_ANSWER_BYTES`. A refused refresh token or client
is a :class:`~micado.exceptions.CredentialsError` naming the file and key; a provider
that cannot be reached, is too slow, fails or answers something that is not the
protocol is a :class:`~micado.exceptions.LaunchError`. The provider's words reach a
message only through :func:`~micado.exceptions.server_text`: what we sent it masked,
control characters made visible. Neither token ever appears in a message or a log.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import requests

from micado import transfer
from micado.checks import is_loopback_host
from micado.config.credentials import OIDCAuth, OpenIDRefresh
from micado.exceptions import CredentialsError, LaunchError, server_text

__all__ = ["fetch_access_token", "MAX_ANSWER_BYTES"]

logger = logging.getLogger(__name__)

#: Bytes read at most from each of the provider's answers (a token answer with a JWT
#: access token rarely has more than 8 KiB; a discovery document a few KiB).
MAX_ANSWER_BYTES = 256 << 10
_FORM = "application/x-www-form-urlencoded"
_DISCOVERY = "/.well-known/openid-configuration"
#: The error codes of a token endpoint (RFC 6749 section 5.2).
_OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                           "unsupported_grant_type", "invalid_scope"})


class _Answer(Exception):
    """The provider's answer was not an access token (an error status, or not the protocol's JSON)."""

    def __init__(self, status: int, body: Any, content_type: str) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


def fetch_access_token(credentials: OIDCAuth, *, timeout: float, verify: bool | str = True) -> str:
    """Get a fresh access token for ``credentials`` from its provider's token endpoint.

    Args:
        credentials: OpenID Connect credentials with a ``refresh`` block.
        timeout: seconds for the whole exchange (and the diagnosis, if it fails).
        verify: TLS verification, as for the cloud (``True``, a CA bundle, ``False``).

    Returns:
        The access token.

    Raises:
        CredentialsError: the provider refused the refresh token (``invalid_grant``:
            expired, revoked, or issued to another client), the client
            (``invalid_client``, ``unauthorized_client``) or the scope
            (``invalid_scope``); or ``url`` is the provider's issuer, not its token
            endpoint (the message names the token endpoint to write).
        LaunchError: the provider could not be reached, did not answer within
            ``timeout``, failed (5xx or another error), or answered something that is
            not OAuth's (not JSON, no ``access_token``, larger than
            :data:`MAX_ANSWER_BYTES`).
    """
    refresh = credentials.refresh
    if refresh is None:
        raise ValueError("these credentials hold a literal access token; nothing to exchange")
    started = time.monotonic()
    http = transfer.session()
    http.verify = verify
    http.trust_env = False  # no proxy from the environment: the token must go to the provider itself
    where = f"the OpenID Connect token endpoint {transfer.display_url(refresh.url)}"
    secrets = _sent(refresh)
    try:
        with transfer.deadline(timeout) as watch:
            try:
                token = _exchange(http, watch, refresh, timeout, where)
            except requests.RequestException as exc:
                raise _transport_error(exc, watch, where, timeout, secrets) from None
            except _Answer as answer:
                if _oauth_error(answer) is None:  # not a token endpoint's refusal: is url the issuer?
                    _refuse_issuer(http, watch, refresh, credentials, timeout)
                raise _refusal(answer, credentials, where, secrets) from None
    finally:
        http.close()
    logger.debug("got an OpenID Connect access token from %s in %.3f s",
                 transfer.display_url(refresh.url), time.monotonic() - started)
    return token


def _sent(refresh: OpenIDRefresh) -> tuple[str, ...]:
    """What we send the provider that must never be shown, in every form it travels in."""
    secrets = [refresh.refresh_token]
    if refresh.client_secret is not None:
        secrets.append(refresh.client_secret)
        pair = f"{refresh.client_id}:{refresh.client_secret}".encode()
        secrets.append(base64.b64encode(pair).decode("ascii"))
    return tuple(secrets)


def _read(http: requests.Session, watch: transfer.Watch, method: str, url: str, timeout: float,
          where: str, **kwargs: Any) -> tuple[int, Any, str]:
    """One request: ``(status, JSON body or None, content type)``, read whole within the deadline."""
    response = http.request(method, url, timeout=timeout, stream=True, allow_redirects=False, **kwargs)
    with response:
        def too_large(declared: int | None) -> LaunchError:
            size = f"{declared} bytes" if declared is not None else f"more than {MAX_ANSWER_BYTES} bytes"
            return LaunchError(f"the answer of {where} to {method} is too large ({size})")

        body = b"".join(transfer.bounded_chunks(response, MAX_ANSWER_BYTES, too_large))
    if watch.expired:  # the deadline cut the answer off: what was read may look whole
        raise requests.Timeout()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        data = None
    return response.status_code, data, server_text(response.headers.get("Content-Type", "no content type"), limit=100)


def _exchange(http: requests.Session, watch: transfer.Watch, refresh: OpenIDRefresh, timeout: float,
              where: str) -> str:
    form = {"grant_type": "refresh_token", "refresh_token": refresh.refresh_token}
    if refresh.scope:
        form["scope"] = refresh.scope
    auth = None
    if refresh.client_id is not None:
        if refresh.client_secret is None:
            form["client_id"] = refresh.client_id  # a public client names itself
        else:
            auth = (refresh.client_id, refresh.client_secret)  # RFC 6749 2.3.1: every server supports it
    status, answer, content_type = _read(http, watch, "POST", refresh.url, timeout, where, data=form, auth=auth,
                                         headers={"Accept": "application/json", "Content-Type": _FORM})
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if status >= 300 or not isinstance(token, str):
        raise _Answer(status, answer, content_type)
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise LaunchError(f"{where} answered the refresh with an access_token that is not one (empty or spaced)")
    kind = answer.get("token_type")
    if isinstance(kind, str) and kind.lower() != "bearer":
        raise LaunchError(f"{where} issued a {server_text(repr(kind), limit=60)} token; Keystone takes bearer tokens")
    return token


def _refuse_issuer(http: requests.Session, watch: transfer.Watch, refresh: OpenIDRefresh,
                   credentials: OIDCAuth, timeout: float) -> None:
    """Raise the CredentialsError "write the token endpoint instead" if ``url`` is an issuer.

    Asked only after the token request failed, to diagnose; any failure here leaves the
    original error to be reported.
    """
    try:
        status, document, _ = _read(http, watch, "GET", refresh.url.rstrip("/") + _DISCOVERY, timeout, "the issuer")
    except (requests.RequestException, LaunchError):
        return
    endpoint = document.get("token_endpoint") if status == 200 and isinstance(document, dict) else None
    if not isinstance(endpoint, str) or len(endpoint) > 2000 or not endpoint.isprintable() or " " in endpoint:
        return  # nothing we would advise writing
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or endpoint == refresh.url:
        return
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return  # never advise sending the refresh token in the clear
    key = f"{refresh.key}.url"
    file = f"{credentials.path}: " if credentials.path is not None else ""
    raise CredentialsError(
        f"{file}{key} is the OpenID Connect provider's issuer, not its token endpoint: "
        f"MiCADO posts the refresh token to url itself; write url: "
        f"{server_text(transfer.display_url(endpoint), secrets=_sent(refresh), limit=300)}",
        path=credentials.path, key=key,
    )


def _oauth_error(answer: _Answer) -> str | None:
    """The ``error`` code of a token endpoint's refusal (RFC 6749 5.2), or ``None`` if it is not one.

    Only the RFC's codes count: a web framework's JSON 404 or 405 (Keycloak's own says
    ``{"error": "RESTEASY003650: No resource method found ..."}``) is not a token endpoint speaking.
    """
    body = answer.body
    code = body.get("error") if isinstance(body, dict) and 400 <= answer.status < 500 else None
    return code if code in _OAUTH_ERRORS else None


def _refusal(answer: _Answer, credentials: OIDCAuth, where: str, secrets: tuple[str, ...]) -> Exception:
    refresh = credentials.refresh
    assert refresh is not None
    code = _oauth_error(answer)
    body = answer.body if isinstance(answer.body, dict) else {}
    described = body.get("error_description")
    detail = (f": {server_text(described, secrets=secrets, limit=200)}"
              if isinstance(described, str) and described.strip() else "")
    if code == "invalid_grant":
        return CredentialsError(
            f"{where} refused the refresh token in {credentials.path} ({refresh.key}.refresh_token): "
            f"invalid_grant{detail}. It has expired or was revoked, or it was issued to another client: "
            "get a new refresh token (for EGI Check-in: https://aai.egi.eu/token) and put it in the file",
            path=credentials.path, key=f"{refresh.key}.refresh_token",
        )
    if code in ("invalid_client", "unauthorized_client") or (code is None and answer.status == 401):
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
    said = body.get("error")
    reason = (f"{server_text(said, secrets=secrets, limit=100)}{detail}, " if code is not None or (
        isinstance(said, str) and said.strip()) else "")
    hint = (f"; is {refresh.key}.url the provider's token endpoint "
            "(e.g. https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token)?")
    if answer.status >= 500:
        return LaunchError(f"{where} failed the refresh ({reason}HTTP {answer.status})")
    if code is not None:
        return LaunchError(f"{where} refused the refresh ({reason}HTTP {answer.status})")
    if 300 <= answer.status < 400:
        return LaunchError(f"{where} answered the refresh with a redirect (HTTP {answer.status}), "
                           f"which is not followed{hint}")
    if answer.status >= 400:
        return LaunchError(f"{where} refused the refresh ({reason}HTTP {answer.status}, {answer.content_type}){hint}")
    return LaunchError(f"{where} answered the refresh with something that is not a JSON object with an "
                       f"access_token ({answer.content_type}, HTTP {answer.status}){hint}")


def _transport_error(exc: requests.RequestException, watch: transfer.Watch, where: str, timeout: float,
                     secrets: tuple[str, ...]) -> LaunchError:
    if watch.expired or isinstance(exc, requests.Timeout):
        return LaunchError(f"{where} did not answer within {timeout:g} s (request_timeout)")
    reason = server_text(_first_line(exc), secrets=secrets, limit=300)
    if isinstance(exc, requests.exceptions.SSLError):
        return LaunchError(f"TLS check failed for {where}: {reason} (give verify= a CA bundle)")
    return LaunchError(f"cannot reach {where}: {reason}")


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:1000]
