"""The one exception hierarchy of micado-client.

Everything the library raises on purpose derives from :class:`MicadoException`,
so ``except MicadoException`` catches every failure of ours and nothing of
``requests``, openstacksdk or Ansible leaks through untranslated.

::

    MicadoException
    ├── InvalidArgument          bad input, detected before any request (also a ValueError)
    ├── CredentialsError         the cloud credentials file is missing or wrong
    ├── StoreError               the master store cannot be read or written
    ├── NotFound                 something looked up does not exist
    │   └── MasterNotFound       no stored master with that id
    ├── MicadoAPIError           the TOSCA Submitter answered with an error
    │   ├── BadRequest           400
    │   ├── AuthenticationError  401, or the proxy's HTML login page
    │   ├── ApplicationNotFound  404 (also a NotFound)
    │   ├── UnprocessableEntity  422
    │   ├── ServerError          5xx
    │   └── ProtocolError        an answer that is not the JSON the contract promises
    │       └── ResponseTooLarge an answer longer than the client reads
    ├── MicadoConnectionError    the server could not be reached
    │   └── TLSError             the TLS handshake or certificate check failed
    ├── MicadoTimeout            a request or a wait ran past its deadline
    ├── LaunchError              the cloud could not start or remove the master VM
    └── InstallError             SSH or the Ansible installer failed on the master
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "MicadoException",
    "InvalidArgument",
    "CredentialsError",
    "StoreError",
    "NotFound",
    "MasterNotFound",
    "MicadoAPIError",
    "BadRequest",
    "AuthenticationError",
    "ApplicationNotFound",
    "UnprocessableEntity",
    "ServerError",
    "ProtocolError",
    "ResponseTooLarge",
    "MicadoConnectionError",
    "TLSError",
    "MicadoTimeout",
    "LaunchError",
    "InstallError",
    "api_error_class",
    "server_text",
    "MASK",
]


class MicadoException(Exception):
    """Base class of every error raised by micado-client.

    Attributes:
        step: for an error of ``client.master.create()``, the step it failed at
            (``prepare``, ``launch``, ``ssh``, ``ansible``, ``api``, ``certificate``,
            ``store``); ``None`` otherwise.
    """

    step: str | None = None


class InvalidArgument(MicadoException, ValueError):
    """An argument is missing, malformed or contradicts another one.

    Raised before any request or cloud call is made.
    """


class CredentialsError(MicadoException):
    """The cloud credentials file is missing, unreadable or incomplete.

    Attributes:
        path: the credentials file concerned.
        key: the key (dotted path) that is wrong, when one is.
    """

    def __init__(self, message: str, path: Any = None, key: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.key = key


class StoreError(MicadoException):
    """The master store (``data.yml``) or its key cannot be read or written."""


class NotFound(MicadoException):
    """Something looked up (an application, a stored master) does not exist."""


class MasterNotFound(NotFound):
    """No master with the given id is recorded in the store."""


#: Characters of a server's message kept in an exception; the rest is cut, so a hostile or
#: broken server cannot make an error message (and every log line showing it) megabytes long.
MAX_EXPLANATION = 4000


def _shorten(text: str, limit: int = MAX_EXPLANATION) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters cut]"


#: What replaces a secret in text shown to the user.
MASK = "***"
# Characters a terminal acts on, or that hide or reorder text: C0 controls, DEL, C1 controls
# (ESC and CSI start escape sequences), bidirectional and invisible format characters, line and
# paragraph separators, lone surrogates. Tab, newline and carriage return become spaces.
_UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                      "\ufeff\ufff9-\ufffb\ud800-\udfff]")
_SPACES = frozenset("\t\n\r")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SPACES:
        return " "
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _secret_forms(secret: str) -> set[str]:
    """The ways a secret may come back: as is, form- or URL-encoded, JSON- or HTML-escaped, in a bytes repr,
    or its UTF-8 read as Latin-1 (how ``http.client`` decodes a status line or header that echoes it)."""
    utf8 = secret.encode("utf-8", "replace")
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], html.escape(secret),
             repr(utf8)[2:-1], utf8.decode("latin-1")}
    return {form for form in forms if form}


def server_text(text: object, *, secrets: Iterable[str | None] = (), limit: int | None = MAX_EXPLANATION) -> str:
    """Text a server sent us (or a message quoting it), made fit to show in an exception, a log or a terminal.

    A hostile or broken server can echo what it was sent (a password, a refresh token)
    and send terminal escape sequences (``\\x1b]0;...\\x07``, ``\\x1b[2J``). Every message
    built from a server's words goes through here first.

    Args:
        text: the server's text (anything: it is made a string).
        secrets: what we sent that must not be shown (passwords, tokens, keys); each is
            replaced by :data:`MASK`, also where the server encoded or escaped it.
        limit: the most characters to keep (the rest is cut, with a note); ``None`` for no limit.

    Returns:
        ``text`` with the secrets masked, tab and line breaks as spaces, and every other
        control or invisible format character written as a visible escape (``\\x1b``, ``\\u202e``).
    """
    result = str(text)
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _secret_forms(secret)
    for form in sorted(forms, key=len, reverse=True):  # longest first: no half-masked leftovers
        result = result.replace(form, MASK)
    result = _UNSHOWN.sub(_visible, result)
    return result if limit is None else _shorten(result, limit)


class MicadoAPIError(MicadoException):
    """The TOSCA Submitter REST API answered a request with an error.

    Attributes:
        status_code: the HTTP status of the answer.
        explanation: the server's own message (its ``message`` field), cut after
            :data:`MAX_EXPLANATION` characters.
        method: the HTTP method of the request.
        url: the URL of the request.
    """

    def __init__(
        self,
        explanation: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.explanation = server_text(explanation)
        self.status_code = status_code
        self.method = method
        self.url = url
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        status = f"{self.status_code}: " if self.status_code is not None else ""
        return f"{status}{self.explanation}{where}"


class BadRequest(MicadoAPIError):
    """400: the server refused the request (id taken, one application only, no ADT...)."""


class AuthenticationError(MicadoAPIError):
    """401, or the MiCADO proxy's login page: the user or password is wrong."""


class ApplicationNotFound(MicadoAPIError, NotFound):
    """404: the application does not exist.

    A 404 that is not the API's JSON (a web server's page: the endpoint's path is wrong)
    is a :class:`ProtocolError` instead.
    """


class UnprocessableEntity(MicadoAPIError):
    """422: the server could not map the request's fields."""


class ServerError(MicadoAPIError):
    """5xx: the server failed, e.g. the ADT did not validate or deploy."""


class ProtocolError(MicadoAPIError):
    """The answer is not the JSON document the TOSCA Submitter contract promises."""


class ResponseTooLarge(ProtocolError):
    """The answer is longer than the client reads (``max_answer`` of the API client).

    Attributes:
        limit: the most bytes the client accepts.
    """

    def __init__(self, explanation: str, *, limit: int, **where: Any) -> None:
        self.limit = limit
        super().__init__(explanation, **where)


class MicadoConnectionError(MicadoException):
    """The server could not be reached (refused, reset, name not resolved)."""


class TLSError(MicadoConnectionError):
    """The TLS handshake or the server certificate check failed.

    Attributes:
        url: the URL of the request, when known.
        reason: the TLS library's own words, when known (a program can give its own
            advice with them: the message advises Python's ``verify=``).
    """

    def __init__(self, message: str, *, url: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class MicadoTimeout(MicadoException):
    """A request or a wait did not finish before its deadline.

    Attributes:
        what: what was being waited for.
        timeout: the deadline in seconds.
    """

    def __init__(self, message: str, *, what: str | None = None, timeout: float | None = None) -> None:
        super().__init__(message)
        self.what = what
        self.timeout = timeout


class LaunchError(MicadoException):
    """The cloud could not start, find or remove what the master needs."""


class InstallError(MicadoException):
    """Deploying MiCADO on the master VM failed (SSH, playbooks, certificate).

    Attributes:
        task: the failing Ansible task, when known.
        log_path: the log file with the full output, when there is one.
    """

    def __init__(self, message: str, *, task: str | None = None, log_path: Any = None) -> None:
        super().__init__(message)
        self.task = task
        self.log_path = log_path


_STATUS_CLASSES: dict[int, type[MicadoAPIError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: AuthenticationError,
    404: ApplicationNotFound,
    422: UnprocessableEntity,
}


def api_error_class(status_code: int) -> type[MicadoAPIError]:
    """Return the :class:`MicadoAPIError` subclass for an HTTP status code."""
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, MicadoAPIError)
