"""Live status of MiCADO masters: is each one reachable, is its certificate the recorded one, do the
API, the dashboards and SSH answer.

A master serves everything through its proxy on the web port of its endpoint: the TOSCA
Submitter under ``/toscasubmitter`` and the dashboards under :data:`DASHBOARDS`, all behind
the same login. :func:`check_master` looks at one master with live, bounded checks:

* ``tls``: a TCP connection and TLS handshake to the endpoint's host and port; the
  certificate presented must be the one recorded for the master (``cert_path``), or,
  without one, be trusted by the system's CA store;
* ``submitter``: ``GET <endpoint><api_version>/applications/`` with the master's login;
* ``dashboard:<name>``: a ``GET`` of each dashboard with the same login;
* ``ssh``: a TCP connection to the master's SSH port and the server's ``SSH-`` banner.

The checks of a master run at once, each with its own deadline for the whole exchange
and a cap on the bytes it reads, so a master that is down costs about one deadline. The
``submitter`` check goes through the API client (:class:`~micado.api.client.SubmitterClient`,
with the environment's proxy settings like every API call); the others connect directly.
:func:`check_masters` looks at many masters at once. Nothing here raises because a
master is down: a failed check says what failed (``connection refused``, ``timed out
after 5 s``...), and never shows the password.

    >>> from micado.config.store import MasterStore
    >>> from micado.master.status import check_masters
    >>> store = MasterStore()  # doctest: +SKIP
    >>> records = [store.get(record.id) for record in store.list() if record.state == "ready"]  # doctest: +SKIP
    >>> for status in check_masters(records):  # doctest: +SKIP
    ...     print(status.master_id, "ok" if status.ok else "FAILING", status.as_dict())
"""

from __future__ import annotations

import base64
import functools
import http.client
import os
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests.exceptions import Timeout as RequestTimeout
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout

from micado import checks, transfer
from micado.config.record import SEALED, MasterRecord
from micado.exceptions import (
    AuthenticationError,
    InvalidArgument,
    MicadoAPIError,
    MicadoException,
    MicadoTimeout,
    server_text,
)

__all__ = [
    "DASHBOARDS",
    "DEFAULT_TIMEOUT",
    "Check",
    "MasterStatus",
    "master_urls",
    "check_master",
    "check_masters",
]

#: The dashboards the master's proxy serves beside the API, by name: their path on the
#: endpoint's host and port.
DASHBOARDS: dict[str, str] = {
    "dashboard": "/dashboard",
    "grafana": "/grafana",
    "prometheus": "/prometheus",
    "kubernetes": "/kubernetes",
}
#: Seconds each check may take, by default.
DEFAULT_TIMEOUT = 5.0
#: Bytes of a dashboard's page read (enough to tell the proxy's login page from it).
MAX_PAGE_BYTES = 64 * 1024
#: Bytes of the submitter's answer read (a list of ids is a few hundred bytes).
MAX_API_BYTES = 1024 * 1024
#: Bytes an SSH server may send before its banner line (RFC 4253 allows lines before it).
MAX_BANNER_BYTES = 8 * 1024
#: Seconds :func:`check_master` waits past the deadline for a check that has not ended
#: (one blocked where no deadline reaches, e.g. resolving a host name), before reporting
#: it timed out and leaving it behind.
GRACE = 0.5
#: Characters of the recorded certificate file read (a certificate is 1-3 KB of PEM).
MAX_CERT_FILE_CHARS = 256 * 1024
# The MiCADO proxy's login form posts this field; no dashboard's own page has it.
_LOGIN_FORM_MARK = b'name="redirect_location"'
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class Check:
    """The result of one live check of a master.

    Attributes:
        name: ``tls``, ``submitter``, ``dashboard:<name>`` or ``ssh``.
        ok: whether it passed.
        detail: what was found (``2 applications``, ``200 OK``) or what failed
            (``connection refused``, ``timed out after 5 s``); never a password.
        seconds: how long it took.
    """

    name: str
    ok: bool
    detail: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The check as plain data: ``name``, ``ok``, ``detail``, ``seconds`` (rounded to ms)."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class MasterStatus:
    """The live checks of one master, in a fixed order (tls, submitter, the dashboards, ssh).

    Attributes:
        master_id: the master's id.
        checks: the checks' results.
    """

    master_id: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether there are checks and every one passed."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    def check(self, name: str) -> Check:
        """The check called ``name``.

        Args:
            name: ``tls``, ``submitter``, ``dashboard:grafana``...

        Raises:
            KeyError: no check has that name (the message lists those there are).
        """
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check {name!r} in the status of {self.master_id}; there are "
                       f"{', '.join(check.name for check in self.checks)}")

    def summary(self) -> str:
        """One line: ``ok``, or the names of the failed checks."""
        failed = [check.name for check in self.checks if not check.ok]
        return "ok" if self.ok else "FAILED: " + (", ".join(failed) or "no checks")

    def as_dict(self) -> dict[str, Any]:
        """The status as plain data (JSON-ready): ``master_id``, ``ok`` and the list of ``checks``."""
        return {"master_id": self.master_id, "ok": self.ok, "checks": [check.as_dict() for check in self.checks]}


class _Failed(Exception):
    """A check failed for a reason it describes itself (its message is the detail)."""


# -- where things are ------------------------------------------------------------------------


def master_urls(record: MasterRecord) -> dict[str, str]:
    """The master's web addresses, on the scheme, host and port of its endpoint.

    Args:
        record: the master's record.

    Returns:
        ``dashboard``, ``grafana``, ``prometheus``, ``kubernetes`` (each ending with a
        slash, e.g. ``https://<ip>:<port>/grafana/``) and ``submitter`` (the endpoint,
        with one trailing slash).

    Raises:
        InvalidArgument: the record's endpoint is not an http(s) URL with a host.
    """
    scheme, host, port, path = _endpoint_parts(record)
    origin = f"{scheme}://{_bracketed(host)}" + (f":{port}" if port is not None else "")
    urls = {name: f"{origin}{dashboard_path}/" for name, dashboard_path in DASHBOARDS.items()}
    urls["submitter"] = f"{origin}{path.rstrip('/')}/"
    return urls


def _endpoint_parts(record: MasterRecord) -> tuple[str, str, int | None, str]:
    """``(scheme, host, port or None, path)`` of the record's endpoint (never its user or password)."""
    endpoint = checks.http_url(f"the endpoint of master {record.id}", record.endpoint,
                               "its TOSCA Submitter, e.g. https://<ip>/toscasubmitter/", query=False)
    parts = urlsplit(endpoint.strip())
    assert parts.hostname is not None  # http_url checked it
    return parts.scheme, parts.hostname, parts.port, parts.path


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- the checks ----------------------------------------------------------------------------------
# Each check runs under its own transfer.deadline: the sockets it opens are shut down when the
# deadline passes, wherever the check is blocked (connecting, in the handshake, reading).


def _left(watch: transfer.Watch) -> float:
    """Seconds left before the check's deadline; past it, the check fails as timed out."""
    left = watch.end - time.monotonic()
    if left <= 0:
        raise TimeoutError("the deadline passed")
    return left


def _open(host: str, port: int, watch: transfer.Watch) -> socket.socket:
    """A TCP connection to ``host:port``, shut down when the check's deadline passes."""
    sock = socket.create_connection((host, port), timeout=_left(watch))
    transfer.watch_socket(sock)
    return sock


def _check_tls(host: str, port: int, cert_path: str | None, watch: transfer.Watch) -> str:
    """Handshake with ``host:port``; the certificate must be the recorded one (or trusted by the system)."""
    recorded = _recorded_certificates(cert_path) if cert_path else None
    context = _tls_context(pinned=recorded is not None)
    with _open(host, port, watch) as plain, context.wrap_socket(plain, server_hostname=host) as tls:
        version, leaf = tls.version(), tls.getpeercert(binary_form=True)
    if recorded is None:
        return f"{version}, certificate trusted by the system's CA store"
    if leaf not in recorded:
        raise _Failed(f"certificate differs from the recorded one ({cert_path})")
    return f"{version}, the recorded certificate"


@functools.cache
def _tls_context(*, pinned: bool) -> ssl.SSLContext:
    """A client context made once per process (loading the system's CA store takes tens of
    milliseconds): pinned, it accepts any certificate, for the caller to compare with the
    recorded one; otherwise it checks the chain against the system's CA store and the host name."""
    if not pinned:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _recorded_certificates(cert_path: str) -> list[bytes]:
    """The DER of each certificate in the master's stored PEM file."""
    try:
        with open(cert_path, encoding="ascii", errors="replace") as handle:
            text = handle.read(MAX_CERT_FILE_CHARS)
    except OSError as error:
        raise _Failed(f"cannot read the recorded certificate {cert_path}: {error.strerror or error}") from None
    try:
        found = [ssl.PEM_cert_to_DER_cert(block) for block in _PEM_CERTIFICATE.findall(text)]
    except ValueError as error:  # bad base64 inside the markers
        raise _Failed(f"the recorded certificate {cert_path} is not valid PEM: {error}") from None
    if not found:
        raise _Failed(f"the recorded certificate file {cert_path} holds no certificate")
    return found


def _web_context(cert_path: str | None) -> ssl.SSLContext:
    """The context the dashboards are fetched with: verified against the recorded certificate
    (as the API client's ``verify=``), or against the system's CA store without one."""
    if not cert_path:
        return _tls_context(pinned=False)
    try:
        return ssl.create_default_context(cafile=cert_path)
    except (ssl.SSLError, OSError) as error:
        raise _Failed(f"the recorded certificate {cert_path} cannot be used: {error}") from None


def _check_ssh(host: str, port: int, watch: transfer.Watch) -> str:
    """Connect to ``host:port`` and read the SSH server's banner line."""
    received = b""
    with _open(host, port, watch) as sock:
        while len(received) < MAX_BANNER_BYTES:
            for line in received.split(b"\n")[:-1]:  # complete lines only
                if line.startswith(b"SSH-"):
                    return server_text(line.rstrip(b"\r").decode("ascii", "replace"), limit=255)
            chunk = sock.recv(MAX_BANNER_BYTES - len(received))
            if not chunk:
                said = server_text(received[:80].decode("ascii", "replace"), limit=80)
                raise _Failed(f"the connection closed before an SSH banner (it sent {said!r})")
            received += chunk
    raise _Failed(f"no SSH banner in the first {MAX_BANNER_BYTES} bytes")


def _check_submitter(record: MasterRecord, watch: transfer.Watch) -> str:
    """List the applications with the master's login (through the API client, which keeps its own deadline)."""
    from micado.api.client import SubmitterClient

    client = SubmitterClient(record.endpoint, version=record.api_version or "v2.0", verify=record.cert_path or True,
                             auth=(record.micado_user, record.micado_password), timeout=_left(watch),
                             max_answer=MAX_API_BYTES)
    try:
        ids = client.list_applications()
    except AuthenticationError as error:
        if error.status_code in (401, 403):
            raise _Failed(f"login refused ({error.status_code}) for user {record.micado_user!r}") from None
        raise _Failed(f"login refused: {error.explanation}") from None
    finally:
        client.close()
    return "no applications" if not ids else f"{len(ids)} application{'s' if len(ids) > 1 else ''}"


def _check_dashboard(url: str, authorization: str, context: ssl.SSLContext | None, watch: transfer.Watch) -> str:
    """``GET`` a dashboard with the master's login; 2xx and 3xx pass, the proxy's login page fails.

    Plain ``http.client`` on a socket of our own, not requests: less than half the CPU time
    of a requests call, which adds up with many masters checked at once.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None  # made by master_urls
    port = parts.port or (443 if context is not None else 80)
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(parts.hostname, port, context=context) if context is not None
        else http.client.HTTPConnection(parts.hostname, port))
    with _open(parts.hostname, port, watch) as plain:
        connection.sock = context.wrap_socket(plain, server_hostname=parts.hostname) if context else plain
        try:
            connection.request("GET", parts.path, headers={"Authorization": authorization, "Accept": "*/*"})
            response = connection.getresponse()
            page = response.read(MAX_PAGE_BYTES)
        finally:
            connection.close()
    return _dashboard_verdict(response.status, response.reason, response.getheader("Location"), page)


def _dashboard_verdict(code: int, reason: str | None, location: str | None, page: bytes) -> str:
    status = f"{code} {server_text(reason or '', limit=80)}".strip()
    if 200 <= code < 300:
        if _LOGIN_FORM_MARK in page:
            raise _Failed(f"{status}, but it is the MiCADO proxy's login page: the login was not accepted")
        return status
    if 300 <= code < 400:
        return f"{status} to {server_text(location or '(no Location)', limit=200)}"
    if code in (401, 403):
        raise _Failed(f"{status}: login refused")
    if code == 404:
        raise _Failed(f"{status}: the master does not serve this dashboard")
    raise _Failed(status)


# -- running them ------------------------------------------------------------------------------


#: A check: given its deadline, returns what it found, or raises what failed.
_Call = Callable[[transfer.Watch], str]


def _plan(record: MasterRecord) -> list[tuple[str, _Call]]:
    """The checks of a master, by name, in their order."""
    web_names = ["tls", "submitter", *(f"dashboard:{name}" for name in DASHBOARDS)]
    ssh = ("ssh", _bind(_check_ssh_port, record))
    try:
        scheme, host, port, _ = _endpoint_parts(record)
        if record.cert_path and not os.path.isfile(record.cert_path):
            raise _Failed(f"the recorded certificate {record.cert_path} is missing")
        context = _web_context(record.cert_path) if scheme == "https" else None
    except (InvalidArgument, _Failed) as error:  # nothing on the web can be checked; SSH still can
        return [*((name, _raising(error)) for name in web_names), ssh]
    urls = master_urls(record)
    if scheme == "https":
        tls = _bind(_check_tls, host, port if port is not None else 443, record.cert_path)
    else:
        tls = _raising(_Failed(f"the endpoint {urls['submitter']} is plain http: no TLS"))
    login = base64.b64encode(f"{record.micado_user}:{record.micado_password}".encode()).decode("ascii")
    calls = [tls, _bind(_check_submitter, record)]
    calls += [_bind(_check_dashboard, urls[name], f"Basic {login}", context) for name in DASHBOARDS]
    return [*zip(web_names, calls, strict=True), ssh]


def _bind(function: Callable[..., str], *args: Any) -> _Call:
    return lambda watch: function(*args, watch)


def _raising(problem: Exception) -> _Call:
    def fail(watch: transfer.Watch) -> str:
        raise problem

    return fail


def _check_ssh_port(record: MasterRecord, watch: transfer.Watch) -> str:
    if not record.ip:
        raise _Failed(f"master {record.id} has no recorded IP address")
    port = checks.port(f"the SSH port of master {record.id} (extra['ssh_port'])", record.extra.get("ssh_port", 22))
    return _check_ssh(record.ip, port, watch)


def _secrets(record: MasterRecord) -> list[str]:
    """The password as it could appear in a detail: as is and in a basic-auth header."""
    password = record.micado_password
    header = base64.b64encode(f"{record.micado_user}:{password}".encode("utf-8", "replace")).decode()
    return [password, header] if password else []


def _run(name: str, call: _Call, timeout: float, secrets: list[str], results: queue.Queue[Check]) -> None:
    """Run one check under a deadline of ``timeout`` and put its result in ``results``; a failure
    becomes its detail (secrets masked)."""
    start = time.monotonic()
    with transfer.deadline(timeout) as watch:
        try:
            ok, detail = True, call(watch)
        except Exception as error:  # noqa: BLE001 - a failed check is a result, never an exception
            ok, detail = False, _describe(error, timeout)
    if watch.expired:  # whatever the check saw last, the deadline cut it off
        ok, detail = False, f"timed out after {timeout:g} s"
    results.put(Check(name, ok, server_text(detail, secrets=secrets, limit=500), time.monotonic() - start))


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions behind it (causes, contexts, requests' and urllib3's reasons)."""
    seen: list[BaseException] = []
    pending: list[object] = [error]
    while pending:
        item = pending.pop(0)
        if isinstance(item, BaseException) and not any(item is known for known in seen):
            seen.append(item)
            pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return seen


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, NewConnectionError):  # a ConnectTimeoutError in urllib3, for compatibility only
        return False
    return isinstance(error, (MicadoTimeout, TimeoutError, RequestTimeout, TransportTimeout))


def _describe(error: Exception, timeout: float) -> str:
    """A short account of why a check failed: ``connection refused``, ``timed out after 5 s``..."""
    if isinstance(error, (_Failed, InvalidArgument, MicadoAPIError)):
        return str(error)
    chain = _chain(error)
    if any(isinstance(item, ConnectionRefusedError) for item in chain):
        return "connection refused"
    if any(_is_timeout(item) for item in chain):
        return f"timed out after {timeout:g} s"
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return f"certificate not trusted: {item.verify_message or item.reason}"
    for item in chain:
        if isinstance(item, ssl.SSLError):
            return f"TLS handshake failed: {item.reason or item}"
        if isinstance(item, socket.gaierror):
            return f"cannot resolve the host name: {item.strerror or item}"
        if isinstance(item, ConnectionResetError):
            return "connection reset by the server"
    for item in chain:
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
    if isinstance(error, MicadoException):
        return str(error)
    return f"{type(error).__name__}: {error}"


def check_master(record: MasterRecord, *, timeout: float = DEFAULT_TIMEOUT) -> MasterStatus:
    """Check one master live: TLS, the API, each dashboard and SSH, all at once.

    Each check has its own deadline of ``timeout`` seconds for its whole exchange, so the
    call takes about ``timeout`` at most (``timeout`` + :data:`GRACE` whatever happens);
    a master that is down is reported, never raised.

    Args:
        record: the master's record, with its password (``MasterStore.get``); its
            ``endpoint``, ``api_version``, ``cert_path``, ``micado_user``,
            ``micado_password``, ``ip`` and ``extra["ssh_port"]`` (default 22) are used.
        timeout: seconds each check may take.

    Returns:
        The checks in the order ``tls``, ``submitter``, ``dashboard:dashboard``,
        ``dashboard:grafana``, ``dashboard:prometheus``, ``dashboard:kubernetes``, ``ssh``.

    Raises:
        InvalidArgument: ``record`` is not a :class:`~micado.config.record.MasterRecord`,
            its password is still sealed (a record from ``MasterStore.list``), or
            ``timeout`` is not a positive number.
    """
    _check_arguments(record, timeout)
    start = time.monotonic()
    plan = _plan(record)
    secrets = _secrets(record)
    results: queue.Queue[Check] = queue.Queue()
    for name, call in plan:
        # Daemon threads: a check stuck where no deadline reaches is left behind, not waited for.
        threading.Thread(target=_run, args=(name, call, timeout, secrets, results), name=f"micado-status-{name}",
                         daemon=True).start()
    done: dict[str, Check] = {}
    end = start + timeout + GRACE
    while len(done) < len(plan) and (left := end - time.monotonic()) > 0:
        try:
            check = results.get(timeout=left)
        except queue.Empty:
            break
        done[check.name] = check
    elapsed = time.monotonic() - start
    late = f"timed out after {timeout:g} s (the check did not end)"
    return MasterStatus(record.id, tuple(done.get(name) or Check(name, False, late, elapsed) for name, _ in plan))


def _check_arguments(record: object, timeout: object) -> None:
    if not isinstance(record, MasterRecord):
        raise InvalidArgument(f"check_master needs a MasterRecord, not {type(record).__name__}")
    if record.micado_password == SEALED:
        raise InvalidArgument(f"the record of master {record.id} has its password sealed (a record from "
                              "MasterStore.list()); pass the one MasterStore.get(id) returns")
    checks.seconds("timeout", timeout)


def check_masters(
    records: Iterable[MasterRecord], *, timeout: float = DEFAULT_TIMEOUT, workers: int = 16
) -> list[MasterStatus]:
    """Check many masters live, ``workers`` at a time (each one's checks at once, see :func:`check_master`).

    With no more masters than ``workers`` the call takes about one ``timeout`` however
    many are down; beyond that, masters wait for a free worker.

    Args:
        records: the masters' records, with their passwords (``MasterStore.get``).
        timeout: seconds each check may take.
        workers: how many masters are checked at once.

    Returns:
        One status per record, in the order given.

    Raises:
        InvalidArgument: a record is not a ``MasterRecord`` or has its password sealed,
            ``timeout`` is not a positive number or ``workers`` not a positive whole number
            (all checked before any connection is made).
    """
    masters = list(records)
    for record in masters:
        _check_arguments(record, timeout)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgument(f"workers must be a positive whole number, not {workers!r}")
    if not masters:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(masters)), thread_name_prefix="micado-status") as pool:
        return list(pool.map(lambda record: check_master(record, timeout=timeout), masters))
