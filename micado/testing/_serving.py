"""One way for the loopback servers of :mod:`micado.testing` to serve in the background and stop."""

from __future__ import annotations

import socketserver
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

__all__ = ["Background", "QuietHandler", "serve_wsgi"]

#: How often ``serve_forever`` looks for a shutdown request: ``stop()`` returns within it.
POLL_INTERVAL = 0.05


class QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request (werkzeug would print them)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Do not log requests."""

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's name
        """Do not log."""


class Background:
    """``server.serve_forever()`` in a daemon thread named ``name``, started at once.

    Args:
        server: a bound server.
        name: the thread's name (seen in a debugger or a thread dump).
    """

    def __init__(self, server: socketserver.BaseServer, name: str) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
                                        name=name, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.server.server_address[1])  # type: ignore[index]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the listening socket and wait (up to ``timeout``) for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=timeout)


def serve_wsgi(host: str, port: int, app: Any, name: str) -> Background:
    """Serve the WSGI ``app`` over plain HTTP at ``host:port`` (0: a free port), threaded, quietly."""
    server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    return Background(server, name)
