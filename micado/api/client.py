"""Low-level client of the TOSCA Submitter REST API: one method, one HTTP call, plain data out."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from micado import checks
from micado.api.applications import ApplicationsMixin
from micado.exceptions import (
    AuthenticationError,
    InvalidArgument,
    MicadoConnectionError,
    MicadoTimeout,
    ProtocolError,
    TLSError,
    api_error_class,
)

__all__ = ["SubmitterClient", "MicadoInsecureWarning", "DEFAULT_TIMEOUT", "DEFAULT_DEPLOY_TIMEOUT"]

#: Seconds allowed for quick calls (list, get).
DEFAULT_TIMEOUT = 30.0
#: Seconds allowed for calls that validate and deploy synchronously (create, update, delete).
DEFAULT_DEPLOY_TIMEOUT = 900.0
#: Seconds allowed to open a connection, whatever the call.
CONNECT_TIMEOUT = 10.0


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
        timeout: seconds for list and get.
        deploy_timeout: seconds for create, update and delete.
        session: a session to use instead of a new one (e.g. to add proxies).

    Raises:
        InvalidArgument: the endpoint, version, verify, auth or a timeout is malformed.
    """

    def __init__(
        self,
        endpoint: str,
        version: str = "v2.0",
        verify: bool | str | os.PathLike = True,
        auth: tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deploy_timeout: float = DEFAULT_DEPLOY_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = _base_url(endpoint, version)
        self.verify = _check_verify(verify)
        self.timeout = checks.seconds("timeout", timeout)
        self.deploy_timeout = checks.seconds("deploy_timeout", deploy_timeout)
        self.session = session or requests.Session()
        self.session.auth = _check_auth(auth)
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

        Raises:
            MicadoAPIError: (a subclass by status) the server answered with an error.
            AuthenticationError: 401, or the MiCADO proxy's HTML login page.
            ProtocolError: the answer is not a JSON object, or is a redirect.
            TLSError: the TLS handshake or certificate check failed.
            MicadoTimeout: no answer within ``timeout`` seconds.
            MicadoConnectionError: the server could not be reached.
        """
        try:
            response = self.session.request(
                method,
                url,
                json=json_body,
                data=data,
                files=files,
                verify=self.verify,
                timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as error:
            raise TLSError(
                f"TLS failure talking to {url}: {_reason(error)}. Pass verify=<path of the "
                "master's certificate>, or verify=False to skip the check"
            ) from error
        except requests.exceptions.Timeout as error:
            raise _timeout_error(method, url, timeout) from error
        except requests.exceptions.ConnectionError as error:
            if _timed_out(error):  # the answer stalled after its headers: requests reports it so
                raise _timeout_error(method, url, timeout) from error
            raise MicadoConnectionError(f"cannot reach {url}: {_reason(error)}") from error
        except requests.exceptions.RequestException as error:  # a broken answer (chunking, encoding)
            raise MicadoConnectionError(f"{method} {url}: the answer broke off: {_reason(error)}") from error
        return _decode(response, method, url)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __repr__(self) -> str:
        return f"<SubmitterClient {self.base_url}>"


def _decode(response: requests.Response, method: str, url: str) -> dict[str, Any]:
    """Turn an HTTP answer into the JSON dict it carries, or raise the matching error."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if status >= 400:
        explanation = str(message) if message is not None else _snippet(response)
        raise api_error_class(status)(explanation, status_code=status, method=method, url=url)
    if 300 <= status < 400:
        raise ProtocolError(
            f"redirected to {response.headers.get('Location')!r}; check the endpoint URL",
            status_code=status,
            method=method,
            url=url,
        )
    if isinstance(body, dict):
        return body
    content_type = response.headers.get("Content-Type", "unknown")
    text = response.text.lower()
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
        f"expected a JSON object from the TOSCA Submitter, got {content_type}: {_snippet(response)}",
        status_code=status,
        method=method,
        url=url,
    )


def _timeout_error(method: str, url: str, timeout: float) -> MicadoTimeout:
    message = f"{method} {url} got no answer within {timeout:g} s"
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


def _snippet(response: requests.Response, limit: int = 200) -> str:
    text = " ".join(response.text.split())
    return text[:limit] + ("..." if len(text) > limit else "") if text else f"HTTP {response.status_code}"


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
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidArgument(f"endpoint must be a URL such as https://<ip>/toscasubmitter/, not {endpoint!r}")
    parts = urlsplit(endpoint)
    # Shown without any user:password@ part: messages must not carry secrets.
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if "@" in parts.netloc:
        raise InvalidArgument(
            f"endpoint {shown!r} must not carry a user or password; give them as auth=(user, password)"
        )
    try:
        parts.port
    except ValueError:
        raise InvalidArgument(f"endpoint {shown!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"endpoint {shown!r} is not an http(s) URL such as https://<ip>/toscasubmitter/")
    if parts.query or parts.fragment:
        raise InvalidArgument(f"endpoint {shown!r} must not have a query (?...) or fragment (#...)")
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
        raise InvalidArgument(f"auth user {user!r} must not contain ':' (basic auth puts one between user and password)")
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
