"""Low-level client of the TOSCA Submitter REST API: one method, one HTTP call, plain data out."""

from __future__ import annotations

import base64
import json
import os
import re
import warnings
from http.client import HTTPException
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from micado import checks, transfer
from micado.api.applications import ApplicationsMixin
from micado.exceptions import (
    AuthenticationError,
    InvalidArgument,
    MicadoConnectionError,
    MicadoException,
    MicadoTimeout,
    ProtocolError,
    ResponseTooLarge,
    TLSError,
    api_error_class,
    server_text,
)

__all__ = [
    "SubmitterClient",
    "MicadoInsecureWarning",
    "DEFAULT_TIMEOUT",
    "DEFAULT_DEPLOY_TIMEOUT",
    "DEFAULT_MAX_ANSWER",
]

#: Seconds allowed for quick calls (list, get).
DEFAULT_TIMEOUT = 30.0
#: Seconds allowed for calls that validate and deploy synchronously (create, update, delete).
DEFAULT_DEPLOY_TIMEOUT = 900.0
#: Seconds allowed to open a connection, whatever the call.
CONNECT_TIMEOUT = 10.0
#: Bytes an answer may have. The real server's largest answers (an application's details,
#: a long validation error) are a few kilobytes; this leaves room and bounds memory.
DEFAULT_MAX_ANSWER = 16 * 1024 * 1024


class MicadoInsecureWarning(UserWarning):
    """Issued once per client when the master's certificate is not checked (``verify=False``)."""


class SubmitterClient(ApplicationsMixin):
    """A connection to one TOSCA Submitter (``{endpoint}/{version}/``).

    It *has* a :class:`requests.Session` (keep-alive, basic auth) and passes
    ``verify`` with every request, so ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` in the
    environment cannot override the caller's choice. Every failure comes out as a
    :mod:`micado.exceptions` error; nothing of ``requests`` leaks.

    Args:
        endpoint: ``https://<host>[:port]/toscasubmitter/``.
        version: API version, the path segment after the endpoint.
        verify: ``True``, a CA bundle/certificate path, or ``False``.
        auth: ``(user, password)`` for HTTP basic auth.
        timeout: seconds for list and get, for the whole exchange: connecting, sending,
            and reading the whole answer (a server that answers slowly byte by byte
            cannot stretch it).
        deploy_timeout: seconds for create, update and delete, likewise.
        session: a session to use instead of a new one (e.g. to add proxies); the client
            mounts its own transport adapters on it for http:// and https:// (they
            enforce the timeouts), keeping their ``max_retries``.
        max_answer: the most bytes of an answer to read (:data:`DEFAULT_MAX_ANSWER`,
            16 MiB); a longer one is a :class:`~micado.exceptions.ResponseTooLarge`.

    Raises:
        InvalidArgument: the endpoint, version, verify, auth, a timeout or ``max_answer``
            is malformed.
    """

    def __init__(
        self,
        endpoint: str,
        version: str = "v2.0",
        verify: bool | str | os.PathLike[str] = True,
        auth: tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deploy_timeout: float = DEFAULT_DEPLOY_TIMEOUT,
        session: requests.Session | None = None,
        max_answer: int = DEFAULT_MAX_ANSWER,
    ) -> None:
        self.base_url = _base_url(endpoint, version)
        self.verify = _check_verify(verify)
        self.timeout = checks.seconds("timeout", timeout)
        self.deploy_timeout = checks.seconds("deploy_timeout", deploy_timeout)
        self.max_answer = checks.byte_count("max_answer", max_answer)
        self.session = transfer.session(session)
        # requests sends a (bytes, bytes) pair as is; types-requests only allows (str, str).
        self.session.auth = _check_auth(auth)  # type: ignore[assignment]
        self.session.headers["Accept"] = "application/json"
        if self.verify is False:
            _warn_insecure(urlsplit(self.base_url).hostname or "")

    def url(self, *segments: str) -> str:
        """The absolute URL of ``segments`` under the base URL, always with a trailing slash."""
        return self.base_url + "".join(f"{segment}/" for segment in segments)

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        json_body: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, IO[bytes] | bytes]] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the JSON answer as a dict.

        This is the one place where HTTP and transport failures become our exceptions.
        ``timeout`` bounds the whole exchange (see :mod:`micado.transfer`) and
        :attr:`max_answer` the answer's size.

        Raises:
            MicadoAPIError: (a subclass by status) the server answered with an error.
            AuthenticationError: 401, or the MiCADO proxy's HTML login page.
            ProtocolError: the answer is not a JSON object, or is a redirect.
            ResponseTooLarge: the answer is longer than :attr:`max_answer` bytes.
            TLSError: the TLS handshake or certificate check failed.
            MicadoTimeout: the exchange did not complete within ``timeout`` seconds.
            MicadoConnectionError: the server could not be reached, or the answer broke off.
        """
        timeout = checks.seconds("timeout", timeout)
        with transfer.deadline(timeout) as watch:
            try:
                with self.session.request(
                    method,
                    url,
                    json=json_body,
                    data=data,
                    files=files,
                    verify=self.verify,
                    timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
                    allow_redirects=False,
                    stream=True,
                ) as response:
                    too_large = _too_large_error(response, method, url, self.max_answer)
                    body = b"".join(transfer.bounded_chunks(response, self.max_answer, too_large))
            except (requests.exceptions.RequestException, OSError, HTTPException) as error:
                raise _transport_error(error, method, url, timeout, watch.expired, self._secrets()) from error
            if watch.expired:  # cut off by the deadline, what was read can look like a whole answer
                raise _timeout_error(method, url, timeout)
        return _decode(response.status_code, response.headers, body, method, url, self._secrets())

    def _secrets(self) -> tuple[str, ...]:
        """What the server must not be seen to echo: the basic-auth password, also inside its header."""
        auth: object = self.session.auth
        if not (isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(part, bytes) for part in auth)):
            return ()
        user, password = auth
        assert isinstance(user, bytes) and isinstance(password, bytes)
        return (password.decode("utf-8"), base64.b64encode(user + b":" + password).decode("ascii"))

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __repr__(self) -> str:
        return f"<SubmitterClient {self.base_url}>"


def _transport_error(
    error: Exception, method: str, url: str, timeout: float, expired: bool, secrets: tuple[str, ...] = ()
) -> MicadoException:
    """The error of ours for a failed exchange (``expired``: the deadline cut it off)."""
    if expired or isinstance(error, requests.exceptions.Timeout) or _timed_out(error):
        return _timeout_error(method, url, timeout)
    reason = server_text(_reason(error), secrets=secrets, limit=500)  # may quote the server's bytes
    if isinstance(error, requests.exceptions.SSLError):
        return TLSError(
            f"TLS failure talking to {url}: {reason}. Pass verify=<path of the "
            "master's certificate>, or verify=False to skip the check",
            url=url,
            reason=reason,
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        return MicadoConnectionError(f"cannot reach {url}: {reason}")
    # A broken answer: bad chunking or encoding, a malformed status line or header.
    return MicadoConnectionError(f"{method} {url}: the answer broke off or is malformed: {reason}")


def _too_large_error(
    response: requests.Response, method: str, url: str, limit: int
) -> Callable[[int | None], ResponseTooLarge]:
    def error(declared: int | None) -> ResponseTooLarge:
        size = f"of {declared} bytes" if declared is not None else "of more than that"
        return ResponseTooLarge(
            f"the {response.status_code} answer is over the limit of {limit} bytes (an answer {size}, "
            "not read further); raise max_answer= if the server's answers really are that long",
            status_code=response.status_code,
            method=method,
            url=url,
            limit=limit,
        )

    return error


def _decode(
    status: int, headers: Mapping[str, str], body: bytes, method: str, url: str, secrets: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Turn an HTTP answer into the JSON dict it carries, or raise the matching error.

    The server's words in an error go through :func:`~micado.exceptions.server_text`:
    ``secrets`` (what we sent it) masked, control characters made visible.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        document = None
    message = document.get("message") if isinstance(document, dict) else None
    if status == 404 and document is None:
        # The API answers every 404 in JSON; an HTML page is a web server's or a proxy's.
        raise ProtocolError(
            "the endpoint does not look like a TOSCA Submitter: the path is not found and the answer is "
            f"{server_text(headers.get('Content-Type') or 'untyped', limit=100)}, not the API's JSON; check "
            "the endpoint URL, e.g. https://<ip>/toscasubmitter/",
            status_code=status,
            method=method,
            url=url,
        )
    if status >= 400:
        explanation = str(message) if message is not None else _snippet(body, status, secrets=secrets)
        raise api_error_class(status)(server_text(explanation, secrets=secrets), status_code=status,
                                      method=method, url=url)
    if 300 <= status < 400:
        raise ProtocolError(
            f"redirected to {server_text(repr(headers.get('Location')), secrets=secrets, limit=300)}; "
            "check the endpoint URL",
            status_code=status,
            method=method,
            url=url,
        )
    if isinstance(document, dict):
        return document
    content_type = server_text(headers.get("Content-Type", "unknown"), limit=100)
    text = body[:65536].decode("utf-8", "replace").lower()
    if "html" in content_type and ("login" in text or "authentication" in text):
        page = "'Authentication failed' page" if "authentication failed" in text else "login page"
        raise AuthenticationError(
            f"the MiCADO proxy answered with its HTML {page} instead of the API: "
            "check the user and password (auth=) and the endpoint",
            status_code=status,
            method=method,
            url=url,
        )
    raise ProtocolError(
        f"expected a JSON object from the TOSCA Submitter, got {content_type}: "
        f"{_snippet(body, status, secrets=secrets)}",
        status_code=status,
        method=method,
        url=url,
    )


def _timeout_error(method: str, url: str, timeout: float) -> MicadoTimeout:
    message = f"{method} {url} got no complete answer within {timeout:g} s"
    if method != "GET":
        # The server deploys synchronously and carries on without us.
        message += "; the server may still complete the change: check with applications.list()"
    return MicadoTimeout(message, what=f"{method} {url}", timeout=timeout)


def _timed_out(error: BaseException) -> bool:
    """Whether a requests error was caused by a read timeout (socket or urllib3)."""
    from urllib3.exceptions import ReadTimeoutError

    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (ReadTimeoutError, TimeoutError)):
            return True
        pending.extend([*item.args, item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


def _snippet(body: bytes, status: int, limit: int = 200, *, secrets: tuple[str, ...] = ()) -> str:
    """The start of ``body`` as one line of at most ``limit`` characters, for messages (secrets masked)."""
    shown = server_text(body[: limit * 4 + 4096].decode("utf-8", "replace"), secrets=secrets, limit=None)
    text = " ".join(shown.split())
    return text[:limit] + ("..." if len(text) > limit or len(body) > limit * 4 else "") if text else f"HTTP {status}"


def _reason(error: Exception) -> str:
    """The innermost useful reason of a requests/urllib3 exception chain."""
    reason: BaseException = error
    while reason.__context__ is not None or getattr(reason, "reason", None) is not None:
        nested = getattr(reason, "reason", None) or reason.__context__
        if not isinstance(nested, BaseException) or nested is reason:
            break
        reason = nested
    return str(reason) or type(reason).__name__


def _base_url(endpoint: object, version: object) -> str:
    try:
        checks.http_url("endpoint", endpoint, "a TOSCA Submitter such as https://<ip>/toscasubmitter/",
                        userinfo=False, query=False)
    except InvalidArgument as exc:
        if "user or password" in str(exc):
            raise InvalidArgument(f"{exc}; give them as auth=(user, password)") from None
        raise
    assert isinstance(endpoint, str)
    if not isinstance(version, str) or not re.fullmatch(r"v\d+(\.\d+)*", version):
        raise InvalidArgument(f"version must look like 'v2.0', not {version!r}")
    return f"{endpoint.rstrip('/')}/{version}/"


def _check_verify(verify: object) -> bool | str:
    if isinstance(verify, bool):
        return verify
    if isinstance(verify, (str, os.PathLike)):
        path = Path(verify)
        if not path.exists():
            raise InvalidArgument(f"verify={str(path)!r}: no such certificate file or directory")
        return str(path.absolute())  # a later chdir must not lose it
    raise InvalidArgument(f"verify must be True, False or a certificate path, not {verify!r}")


def _check_auth(auth: object) -> tuple[bytes, bytes] | None:
    """The basic-auth pair as UTF-8 bytes (requests would send latin-1 and fail on other text)."""
    if auth is None:
        return None
    if not (
        isinstance(auth, (tuple, list))
        and len(auth) == 2
        and all(isinstance(part, str) and part for part in auth)
    ):
        raise InvalidArgument("auth must be a (user, password) pair of non-empty strings")
    user, password = auth
    if ":" in user:
        raise InvalidArgument(
            f"auth user {user!r} must not contain ':' (basic auth puts one between user and password)"
        )
    try:
        return (user.encode("utf-8"), password.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument("auth user and password must be valid text (they hold unpaired surrogates)") from None


def _warn_insecure(host: str) -> None:
    """Warn once that ``host``'s certificate is not checked, and silence urllib3's per-request warning."""
    warnings.warn(
        f"TLS certificate of {host} is not verified (verify=False); pass the master's "
        "certificate path as verify= to check it",
        MicadoInsecureWarning,
        stacklevel=5,
    )
    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings(
        "ignore",
        message=rf"Unverified HTTPS request is being made to host '{re.escape(host)}'",
        category=InsecureRequestWarning,
    )
