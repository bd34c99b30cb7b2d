"""The TOSCA Submitter emulator's HTTPS server: werkzeug's threaded server with keep-alive and TLS per thread.

Like the MiCADO proxy in front of the real server, it keeps HTTP/1.1 connections
open (the client's request overhead is benchmarked against it) and does the TLS
handshake in the thread that serves the connection, so a silent client stalls
nobody else.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

__all__ = ["KeepAliveHandler", "TLSServer"]

logger = logging.getLogger(__name__)

# Idle keep-alive connections and stalled TLS handshakes are dropped after this long.
_CONNECTION_TIMEOUT = 60.0
# A request body left unread beyond this many bytes closes the connection instead.
_MAX_DRAIN = 1024 * 1024


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler with HTTP/1.1 keep-alive, logging to our logger.

    werkzeug's development server closes every connection (its handler cannot
    find the end of a request body it did not read), but the MiCADO proxy keeps
    connections open, and the client's request overhead is benchmarked against it. So
    the application gets the body behind a length limit, the unread rest is
    drained before the answer goes out, and the answer is buffered and sent with
    its length. The application's answers are small JSON or HTML documents.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK hold the body back ~40 ms.
    disable_nagle_algorithm = True

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 (werkzeug's name)
        logger.debug("%s - %s", self.address_string(), message % args)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        body_stream = self._limit_input(environ)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                getattr(result, "close", lambda: None)()
        except Exception:  # noqa: BLE001 (the app answers its own errors; this is a bug in it)
            logger.exception("the submitter emulator failed on %s %s", self.command, self.path)
            started[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
            chunks = [b"emulator error"]
            self.close_connection = True
        if not self._drain(body_stream):
            self.close_connection = True
        status, headers = started
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        body = b"".join(chunks)
        for name, value in headers:
            # HEAD answers keep the length of the body they leave out.
            if name.lower() not in ("connection", "transfer-encoding") and (
                name.lower() != "content-length" or self.command == "HEAD"
            ):
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _limit_input(self, environ: dict[str, Any]) -> Any:
        """Put the request body behind its length, so nothing reads into the next request."""
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput ends it
            return environ["wsgi.input"]
        try:
            length = max(int(environ.get("CONTENT_LENGTH") or 0), 0)
        except ValueError:
            length = 0
            self.close_connection = True  # the body's end is unknown
        stream = LimitedStream(environ["wsgi.input"], length)
        environ["wsgi.input"] = stream
        environ["wsgi.input_terminated"] = True
        return stream

    @staticmethod
    def _drain(stream: Any) -> bool:
        """Read what the application left of the body; False if the connection must close."""
        if isinstance(stream, LimitedStream) and stream.limit - stream.tell() > _MAX_DRAIN:
            return False  # e.g. a refused oversized upload: not worth reading
        try:
            while stream.read(64 * 1024):
                pass
        except (OSError, ValueError, ClientDisconnected):
            return False
        return True


class TLSServer(ThreadedWSGIServer):
    """werkzeug's threaded server with the TLS handshake moved into the worker thread.

    werkzeug wraps the listening socket, so ``accept()`` performs the handshake in
    the one serving thread: a client that connects and sends nothing (a port probe)
    would stall every other client. Here the accepted plain socket is wrapped by
    the thread that serves it, with a timeout.
    """

    def __init__(self, host: str, port: int, app: Any, ssl_context: ssl.SSLContext) -> None:
        super().__init__(host, port, app, handler=KeepAliveHandler, ssl_context=None)
        # werkzeug reads this to set wsgi.url_scheme (and the 308 Location) to https.
        self.ssl_context = ssl_context
        self._tls_context = ssl_context  # (werkzeug types ssl_context as Optional)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        logger.debug(message, *args)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_CONNECTION_TIMEOUT)
        try:
            tls = self._tls_context.wrap_socket(request, server_side=True)
        except OSError as error:  # ssl.SSLError is an OSError: a bad or aborted handshake
            logger.debug("TLS handshake with %s failed: %s", client_address, error)
            return
        with self._connections_lock:
            self._connections.add(tls)
        try:
            super().finish_request(tls, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(tls)
            tls.close()

    def drop_connections(self) -> None:
        """Shut down every open connection (keep-alive ones would outlive the server)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its peer
                connection.shutdown(socket.SHUT_RDWR)
