"""Bounded HTTP transfers: a wall-clock deadline for every request and a size cap on every answer.

``requests``' ``timeout`` limits each socket read, not the whole exchange: a server that
sends one byte a second (in the status line, the headers or the body) never trips it,
and an endless answer grows in memory until it fails. The API client and the playbook
download therefore go through two helpers here:

* :func:`deadline` watches a request. The sockets it uses (new or kept alive) are handed
  to one watchdog thread, which shuts them down when the deadline passes, wherever the
  request is blocked: connecting, sending, or reading the status line, headers or body.
  The request then fails as a broken connection, and :attr:`Watch.expired` tells the
  caller it was the deadline. Sessions from :func:`session` register their sockets; a
  socket opened by other means is registered with :func:`watch_socket`.
* :func:`bounded_chunks` reads a streamed answer in chunks and stops at a size limit,
  before reading when the ``Content-Length`` already says it is too large.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

_log = logging.getLogger(__name__)  # one DEBUG record per HTTP exchange

__all__ = ["Watch", "deadline", "watch_socket", "session", "bounded_chunks", "CHUNK_SIZE"]

#: Bytes read at a time from an answer.
CHUNK_SIZE = 1 << 16
#: Seconds the watchdog thread stays when there is nothing left to watch, before it ends.
IDLE_SECONDS = 10.0


class Watch:
    """One request under a deadline; made by :func:`deadline`.

    Attributes:
        seconds: the time allowed.
        end: the :func:`time.monotonic` time of the deadline.
        expired: set once the deadline passed while the request was still going on.
        done: set when the watched block ends; the watchdog then leaves it alone.
        sockets: the sockets to shut down at the deadline.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self.done = False
        self.sockets: list[socket.socket] = []


class _Watchdog:
    """One daemon thread for the process, started on demand, that ends when it has been idle a while.

    Watches wait in a heap ordered by deadline. A finished watch is only marked done (the
    thread is not woken for it), so a request costs a lock and a heap push, not a thread.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._live = 0
        self._running = False
        self._wake_at = math.inf

    def start(self, watch: Watch) -> None:
        with self._cond:
            heapq.heappush(self._heap, (watch.end, next(self._order), watch))
            self._live += 1
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="micado-deadlines", daemon=True).start()
            elif watch.end < self._wake_at:
                self._cond.notify()

    def attach(self, watch: Watch, sock: socket.socket) -> None:
        with self._cond:
            if watch.done:
                return
            if watch.expired:
                _shutdown(sock)
            else:
                watch.sockets.append(sock)

    def finish(self, watch: Watch) -> None:
        # Under the lock: once this returns, the watchdog never touches the watch's sockets,
        # so a connection that goes back to the pool is never shut down behind our back.
        with self._cond:
            watch.done = True
            watch.sockets.clear()
            self._live -= 1
            while self._heap and self._heap[0][2].done:
                heapq.heappop(self._heap)
            if len(self._heap) > 64 + 2 * self._live:  # many finished watches far down the heap
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        try:
            self._watch()
        except BaseException:  # a bug: let the next request start a new thread
            with self._cond:
                self._running = False
            raise

    def _watch(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake_at = math.inf
                    if not self._cond.wait(IDLE_SECONDS) and not self._heap:
                        self._running = False  # under the lock: a start() now makes a new thread
                        return
                    continue
                end, _, watch = self._heap[0]
                left = end - time.monotonic()
                if left > 0:
                    self._wake_at = end
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                watch.expired = True
                for sock in watch.sockets:
                    _shutdown(sock)
                watch.sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    """Unblock any thread reading or writing ``sock``: it sees the connection end."""
    # The plain socket call, also for a TLS socket: it acts on the file descriptor,
    # leaving the TLS object alone while another thread may be inside it.
    with contextlib.suppress(OSError):  # already closed or not connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_watchdog = _Watchdog()
_current = threading.local()


def _new_watchdog_in_child() -> None:
    global _watchdog
    _watchdog = _Watchdog()  # a forked child has no watchdog thread, and maybe a held lock


os.register_at_fork(after_in_child=_new_watchdog_in_child)


@contextmanager
def deadline(seconds: float) -> Iterator[Watch]:
    """Watch the requests this thread makes through a :func:`session` for ``seconds`` in all.

    Args:
        seconds: the time allowed, from now.

    Yields:
        the :class:`Watch`; after a failure, ``watch.expired`` says whether the deadline caused it.
    """
    watch = Watch(seconds)
    watchdog = _watchdog
    watchdog.start(watch)
    outer = getattr(_current, "watch", None)
    _current.watch = (watchdog, watch)
    try:
        yield watch
    finally:
        _current.watch = outer
        watchdog.finish(watch)


def _attach(sock: socket.socket | None) -> None:
    current = getattr(_current, "watch", None)
    if current is not None and sock is not None:
        watchdog, watch = current
        watchdog.attach(watch, sock)


def watch_socket(sock: socket.socket) -> None:
    """Put a socket the caller opened itself under the calling thread's current :func:`deadline`.

    When the deadline passes, the socket is shut down, wherever a thread is blocked on it
    (a TLS handshake, a read); outside a :func:`deadline` block this does nothing.

    Args:
        sock: the connected socket (plain; a TLS socket made from it later is covered too).
    """
    _attach(sock)


class _WatchedConnection(HTTPConnection):
    """Hands its socket to the thread's current watch: when new, and for each request on it."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach(sock)  # before the TLS handshake, which a slow server could drag out too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)  # a kept-alive connection; a new one attaches in _new_conn
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_DEFAULT_POOLS = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}
_WATCHED_POOLS = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


def _watch_pools(manager: Any) -> Any:
    """Make ``manager`` (a urllib3 pool or proxy manager) build watched pools."""
    if getattr(manager, "pool_classes_by_scheme", None) == _DEFAULT_POOLS:  # not a SOCKS manager
        manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
    return manager


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return _watch_pools(super().proxy_manager_for(proxy, **proxy_kwargs))


def session(base: requests.Session | None = None) -> requests.Session:
    """A session whose requests :func:`deadline` can watch.

    Args:
        base: a session to equip (its http:// and https:// adapters are replaced, keeping
            their ``max_retries``); a new one when ``None``.

    Returns:
        the session.
    """
    http = base if base is not None else requests.Session()
    for prefix in ("https://", "http://"):
        old = http.adapters.get(prefix)
        retries = old.max_retries if isinstance(old, HTTPAdapter) else 0
        http.mount(prefix, _WatchedAdapter(max_retries=retries))
    if _log_response not in http.hooks["response"]:
        http.hooks["response"].append(_log_response)
    return http


def _log_response(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Log each HTTP exchange at DEBUG: method, URL (:func:`display_url`: no secret), status, time."""
    if _log.isEnabledFor(logging.DEBUG):
        request = response.request
        _log.debug("%s %s -> %s in %.3f s", request.method, display_url(str(request.url or "")),
                   response.status_code, response.elapsed.total_seconds())


def display_url(url: str) -> str:
    """``url`` fit for messages and logs: no password, no query string.

    A private tarball URL may carry a password (``https://user:secret@host/...``) or
    a token in its query (``?token=...``).

    Args:
        url: any URL.

    Returns:
        The URL with the password shown as ``***`` and the query as ``?...``.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "..." if parts.query else "", ""))



def bounded_chunks(
    response: requests.Response, limit: int, too_large: Callable[[int | None], Exception]
) -> Iterator[bytes]:
    """The body of a streamed (``stream=True``) answer, in chunks of at most :data:`CHUNK_SIZE`.

    Args:
        response: the answer, its body not read yet.
        limit: the most bytes to accept (after content decoding).
        too_large: builds the error to raise; receives the declared ``Content-Length``
            when that alone is over ``limit`` (nothing is read then), else ``None``.

    Yields:
        the chunks; together at most ``limit`` bytes.

    Raises:
        Exception: ``too_large(...)``, when the answer is longer than ``limit``.
        requests.RequestException: the transfer broke off (for the caller to translate).
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit and "Content-Encoding" not in response.headers:
        raise too_large(int(declared))
    received = 0
    for chunk in response.iter_content(CHUNK_SIZE):
        received += len(chunk)
        if received > limit:
            raise too_large(None)
        yield chunk
