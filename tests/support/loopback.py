"""A raw TCP/HTTP server on loopback for the tests: it sends exactly the bytes a test wants,
as slowly as it wants, or nothing at all."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

#: A handler gets the connection (the request already read) and the server's stop event.
Handler = Callable[[socket.socket, threading.Event], None]


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (head and ``Content-Length`` body) from ``conn``; b"" if it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(min(65536, length - len(body)))
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def drip(data: bytes, interval: float) -> Handler:
    """A handler that sends ``data`` one byte every ``interval`` seconds."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        for index in range(len(data)):
            if stop.wait(interval):
                return
            conn.sendall(data[index : index + 1])

    return handle


def stream(parts: Iterable[bytes]) -> Handler:
    """A handler that sends ``parts`` as fast as the client reads them, until it goes away."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        for part in parts:
            if stop.is_set():
                return
            conn.sendall(part)

    return handle


def _tls_context() -> ssl.SSLContext:
    from micado.testing.tls import make_self_signed

    cert, key = make_self_signed(["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        pem = Path(folder) / "server.pem"
        pem.write_bytes(cert + key)
        context.load_cert_chain(pem)
    return context


@contextmanager
def raw_server(
    scheme: str, answer: bytes | Handler | None, *, tls: bool = False, path: str = "/toscasubmitter/"
) -> Iterator[str]:
    """A TCP server on 127.0.0.1; yields its ``<scheme>://127.0.0.1:<port><path>`` URL.

    Args:
        scheme: the scheme of the URL (``https`` without ``tls`` gives a server that never
            does the TLS handshake).
        answer: ``None`` to accept connections and never say a byte; bytes to send after
            each request, then hold the connection open without another byte; or a
            :data:`Handler`, run after each request in a thread of its own (the connection
            is closed after it returns).
        tls: do the TLS handshake (a self-signed certificate for 127.0.0.1) before reading.
        path: the path part of the URL.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    context = _tls_context() if tls else None
    held: list[socket.socket] = []
    workers: list[threading.Thread] = []
    stop = threading.Event()

    def converse(conn: socket.socket) -> None:
        try:
            if context is not None:
                conn.settimeout(5)
                conn = context.wrap_socket(conn, server_side=True)
                held.append(conn)
            while not stop.is_set() and read_request(conn):
                if callable(answer):
                    answer(conn, stop)
                    return
                conn.sendall(answer)  # then hold: read (and ignore) whatever comes next
        except (OSError, ssl.SSLError):  # the client went away: expected in these tests
            pass
        finally:
            if callable(answer):
                conn.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            if answer is not None:
                worker = threading.Thread(target=converse, args=(conn,), daemon=True)
                worker.start()
                workers.append(worker)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{listener.getsockname()[1]}{path}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for worker in workers:
            worker.join(timeout=5)
        listener.close()


def timed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Run ``call``; return the seconds it took and the exception it raised (or None)."""
    start = time.monotonic()
    try:
        call()
    except BaseException as error:  # noqa: BLE001 (the test inspects it)
        return time.monotonic() - start, error
    return time.monotonic() - start, None


class FileServer:
    """A plain HTTP server on loopback serving bytes from memory (``with FileServer() as s``).

    Attributes:
        files: path (with its query, as requested) -> content; anything else is a 404.
        hits: every path requested, in order.
        url: the base URL, ``http://127.0.0.1:<port>``.
    """

    def __init__(self) -> None:
        import http.server

        from micado.testing._serving import Background

        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._serving = Background(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler), "test-files")
        self.url = f"http://127.0.0.1:{self._serving.port}"

    def __enter__(self) -> FileServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._serving.stop()


@contextmanager
def directory_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over plain HTTP on loopback; yield the base URL (no trailing slash)."""
    import http.server
    from functools import partial

    from micado.testing._serving import Background

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    serving = Background(http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory))),
                         "test-directory")
    try:
        yield f"http://127.0.0.1:{serving.port}"
    finally:
        serving.stop()


#: Answers one request: ``(method, path, headers, body)`` -> ``(status, content type, body)``.
Responder = Callable[[str, str, dict[str, str], bytes], tuple[int, str, bytes]]


class EchoServer:
    """A plain HTTP server on loopback that answers each request as ``respond`` says, seeing all of it.

    For hostile servers that echo what they were sent (headers, form, JSON) back in their
    answer. ``with EchoServer(respond) as server: server.url``.

    Attributes:
        url: the base URL, ``http://127.0.0.1:<port>``.
        requests: ``(method, path)`` of every request, in order.
        received: the headers and body of every request, as one text each.
    """

    def __init__(self, respond: Responder) -> None:
        import http.server

        from micado.testing._serving import Background

        self.requests: list[tuple[str, str]] = []
        self.received: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                server.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.received.append(str(self.headers) + body.decode("utf-8", "replace"))
                status, content_type, payload = respond(self.command, self.path, dict(self.headers.items()), body)
                self.send_response_only(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = answer  # noqa: N815 (http.server's names)

            def log_message(self, *args: object) -> None:
                pass

        self._serving = Background(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler), "test-echo")
        self.url = f"http://127.0.0.1:{self._serving.port}"

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._serving.stop()
