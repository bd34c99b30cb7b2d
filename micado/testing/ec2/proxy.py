"""A thin loopback HTTP proxy in front of moto's EC2 server: the request log and the faults moto lacks.

moto answers every EC2 request correctly and at once; a real cloud also loses
answers, answers slowly, refuses credentials and hits quotas, and instances spend
time ``pending``. :class:`FaultProxy` forwards each request to moto and, while a switch
of :class:`~.models.EC2Faults` is set, changes what the client sees:

* an error answer instead of forwarding (``AuthFailure``, ``InstanceLimitExceeded``,
  ``AddressLimitExceeded``), so nothing is made;
* a lost answer: the request is carried out by moto, then the connection is closed
  without an answer (the client cannot know the id of what was made);
* a slow answer: the request is carried out, the answer waits (a client's read
  timeout fires first);
* instances reported ``pending`` for a while, or forever, in ``DescribeInstances``.

It also records the ``Action`` of every request it receives (:attr:`FaultProxy.requests`),
so a test can assert that bad input made no request at all. What to answer is
decided in :mod:`.responses`; this module moves the bytes.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from collections.abc import Callable

from micado.testing._serving import Background
from micado.testing.ec2.models import EC2Faults, ProxyState
from micado.testing.ec2.responses import action_of, error_document, instance_ids, refusal, report_pending

__all__ = ["EC2Faults", "FaultProxy", "error_document"]

_UPSTREAM_TIMEOUT = 60.0
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})


class FaultProxy(ProxyState):
    """Forwards EC2 requests from a loopback port to moto, applying :class:`~.models.EC2Faults`.

    Args:
        upstream_port: moto's port on 127.0.0.1.
        access_key_id: the only access key accepted (others get ``AuthFailure``; the
            signature itself is not checked).
        terminate: called with the instance ids a ``RunInstances`` made, when
            :attr:`~.models.EC2Faults.terminate_at_boot` is set.

    Attributes:
        faults: the switches.
        requests: the ``Action`` of every request received, in order.
    """

    def __init__(self, upstream_port: int, access_key_id: str,
                 terminate: Callable[[list[str]], None] | None = None) -> None:
        super().__init__(access_key_id)
        self.upstream_port = upstream_port
        self.terminate = terminate
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
        action = action_of(handler.path, handler.headers.get("Content-Type") or "", body)
        self.record(action)
        faults = self.faults
        refused = refusal(faults, self.access_key_id, action, handler.headers.get("Authorization") or "")
        if refused is not None:
            self._send(handler, *refused)
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
        now = time.monotonic()
        seen = instance_ids(data)
        first_seen = self.note_instances(seen, now)
        if action == "RunInstances" and self.faults.terminate_at_boot and self.terminate is not None:
            self.terminate(seen)
        return report_pending(data, self.faults, first_seen, now)

    @staticmethod
    def _send(handler: http.server.BaseHTTPRequestHandler, status: int, data: bytes,
              headers: list[tuple[str, str]] | None = None) -> None:
        handler.send_response(status)
        for name, value in headers or [("Content-Type", "text/xml")]:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
