"""A thin loopback HTTP proxy in front of moto's EC2 server: the request log and the faults moto lacks.

moto answers every EC2 request correctly and at once; a real cloud also loses
answers, answers slowly, refuses credentials and hits quotas, and instances spend
time ``pending``. :class:`FaultProxy` forwards each request to moto and, while a switch
of :class:`EC2Faults` is set, changes what the client sees:

* an error answer instead of forwarding (``AuthFailure``, ``InstanceLimitExceeded``,
  ``AddressLimitExceeded``), so nothing is made;
* a lost answer: the request is carried out by moto, then the connection is closed
  without an answer (the client cannot know the id of what was made);
* a slow answer: the request is carried out, the answer waits (a client's read
  timeout fires first);
* instances reported ``pending`` for a while, or forever, in ``DescribeInstances``.

It also records the ``Action`` of every request it receives (:attr:`FaultProxy.requests`),
so a test can assert that bad input made no request at all.
"""

from __future__ import annotations

import http.client
import http.server
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from micado.testing._serving import Background

__all__ = ["EC2Faults", "FaultProxy"]

logger = logging.getLogger(__name__)

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")
_INSTANCE_ID_RE = re.compile(r"<instanceId>(i-[0-9a-f]+)</instanceId>")
# An instance item's id, then its state (never crossing into the next instance's id).
_RUNNING_RE = re.compile(
    r"(<instanceId>(i-[0-9a-f]+)</instanceId>(?:(?!<instanceId>).)*?<instanceState>\s*<code>)16(</code>\s*<name>)"
    r"running(</name>)",
    re.DOTALL,
)
_UPSTREAM_TIMEOUT = 60.0
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})


@dataclass
class EC2Faults:
    """Fault switches of the EC2 emulator (set one, reset it to stop).

    Attributes:
        auth_failure: every request is answered ``AuthFailure`` (401), as for a revoked key.
        instance_limit: ``RunInstances`` is refused with ``InstanceLimitExceeded`` (quota).
        address_limit: ``AllocateAddress`` is refused with ``AddressLimitExceeded`` (quota).
        lose_answer: actions (``"RunInstances"``) carried out whose answer is lost:
            the connection closes without one.
        slow: seconds the answer to an action waits, after the action is carried out
            (``"*"`` for every action).
        boot_delay: seconds an instance is reported ``pending`` after it is first seen.
        boot_hangs: instances are reported ``pending`` forever.
        terminate_at_boot: each instance ``RunInstances`` makes is terminated at once
            (as when EC2 lacks capacity after accepting the request).
    """

    auth_failure: bool = False
    instance_limit: bool = False
    address_limit: bool = False
    lose_answer: set[str] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    boot_delay: float = 0.0
    boot_hangs: bool = False
    terminate_at_boot: bool = False


def error_document(code: str, message: str) -> bytes:
    """An EC2 error answer body."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>micado-testing-fault</RequestID></Response>"
    ).encode()


class FaultProxy:
    """Forwards EC2 requests from a loopback port to moto, applying :class:`EC2Faults`.

    Args:
        upstream_port: moto's port on 127.0.0.1.
        access_key_id: the only access key accepted (others get ``AuthFailure``; the
            signature itself is not checked).
        terminate: called with the instance ids a ``RunInstances`` made, when
            :attr:`EC2Faults.terminate_at_boot` is set.

    Attributes:
        faults: the switches.
        requests: the ``Action`` of every request received, in order.
    """

    def __init__(self, upstream_port: int, access_key_id: str,
                 terminate: Callable[[list[str]], None] | None = None) -> None:
        self.upstream_port = upstream_port
        self.access_key_id = access_key_id
        self.terminate = terminate
        self.faults = EC2Faults()
        self.requests: list[str] = []
        #: Guards :attr:`requests`.
        self._first_seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Background | None = None

    @property
    def url(self) -> str:
        """The proxy's URL (the EC2 endpoint clients use)."""
        assert self._server is not None, "the proxy is not started"
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> FaultProxy:
        """Listen on a free port of 127.0.0.1; return self."""
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                proxy._handle(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a slow answer must not hold up stop()
        self._server = Background(server, "ec2-fault-proxy")
        return self

    def stop(self) -> None:
        """Stop listening; slow answers in progress end at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    # --- one request ----------------------------------------------------------------------

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        params = parse_qs(urlsplit(handler.path).query)
        if "x-www-form-urlencoded" in (handler.headers.get("Content-Type") or ""):
            params.update(parse_qs(body.decode("utf-8", "replace")))
        action = (params.get("Action") or ["?"])[0]
        with self.lock:
            self.requests.append(action)
        faults = self.faults
        key = _CREDENTIAL_RE.search(handler.headers.get("Authorization") or "")
        if faults.auth_failure or not key or key.group(1) != self.access_key_id:
            self._send(handler, 401, error_document(
                "AuthFailure", "AWS was not able to validate the provided access credentials"))
            return
        if action == "RunInstances" and faults.instance_limit:
            self._send(handler, 400, error_document(
                "InstanceLimitExceeded", "You have requested more instances (1) than your current instance "
                "limit of 0 allows for the specified instance type."))
            return
        if action == "AllocateAddress" and faults.address_limit:
            self._send(handler, 400, error_document(
                "AddressLimitExceeded", "The maximum number of addresses has been reached."))
            return
        status, headers, data = self._forward(handler, body)
        if action in ("RunInstances", "DescribeInstances"):
            data = self._pending(action, data)
        delay = faults.slow.get(action, faults.slow.get("*", 0.0))
        if delay:
            self._stopping.wait(delay)
        if action in faults.lose_answer:
            handler.close_connection = True  # carried out, never answered
            return
        self._send(handler, status, data, headers)

    def _forward(
        self, handler: http.server.BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=_UPSTREAM_TIMEOUT)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("connection", "keep-alive")}
            connection.request(handler.command, handler.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_HEADERS]
            return answer.status, kept, data
        finally:
            connection.close()

    def _pending(self, action: str, data: bytes) -> bytes:
        """Record when instances are first seen; report those still "booting" as pending."""
        text = data.decode("utf-8", "replace")
        now = time.monotonic()
        with self.lock:
            for instance_id in _INSTANCE_ID_RE.findall(text):
                self._first_seen.setdefault(instance_id, now)
            first_seen = dict(self._first_seen)
        if action == "RunInstances" and self.faults.terminate_at_boot and self.terminate is not None:
            self.terminate(_INSTANCE_ID_RE.findall(text))
        faults = self.faults
        if not faults.boot_hangs and faults.boot_delay <= 0:
            return data

        def rewrite(match: re.Match[str]) -> str:
            if faults.boot_hangs or now - first_seen.get(match.group(2), now) < faults.boot_delay:
                return f"{match.group(1)}0{match.group(3)}pending{match.group(4)}"
            return match.group(0)

        return _RUNNING_RE.sub(rewrite, text).encode("utf-8")

    @staticmethod
    def _send(handler: http.server.BaseHTTPRequestHandler, status: int, data: bytes,
              headers: list[tuple[str, str]] | None = None) -> None:
        handler.send_response(status)
        for name, value in headers or [("Content-Type", "text/xml")]:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
