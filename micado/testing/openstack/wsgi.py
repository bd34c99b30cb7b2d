"""The HTTP plumbing the services' front ends share: routes, JSON answers, filters, pages, dispatch.

Each service's ``urls`` module lists its routes (:class:`Route`) and the error
format of its answers (:class:`Service`); :class:`App` dispatches a request to the
route that matches, after checking the token of every route that is not public.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from micado.testing.openstack.core import EmulatorError
from micado.testing.openstack.state import OpenStackCloud

__all__ = ["Route", "Service", "App", "json_response", "filtered", "paged", "body_of", "base_url"]

logger = logging.getLogger(__name__)

_PAGING = {"limit", "marker", "fields", "sort_key", "sort_dir", "page_reverse"}


@dataclass(frozen=True)
class Route:
    """One operation of a service.

    Attributes:
        method: the HTTP method.
        path: a regular expression the whole path must match; its named groups
            become keyword arguments of the handler.
        handler: ``handler(request, caller, **groups)``, or ``handler(request, **groups)``
            when ``public``.
        public: answered without a token (version documents, Keystone's own routes).
    """

    method: str
    path: str
    handler: Callable[..., Response]
    public: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled :attr:`path`."""
        return _compiled(self.path)


@dataclass(frozen=True)
class Service:
    """A service's routes under its path prefix, and how it words errors.

    Attributes:
        prefix: the first path segment (``/compute``).
        routes: its operations.
        error: turns a refusal into an answer in the service's own error format.
    """

    prefix: str
    routes: list[Route]
    error: Callable[[EmulatorError], Response]


@functools.cache
def _compiled(path: str) -> re.Pattern[str]:
    return re.compile(path)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer.

    Args:
        body: what to serialize.
        status: the HTTP status.
        headers: extra headers.

    Returns:
        The response.
    """
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


def body_of(request: Request, key: str, message: str, kind: str = "") -> Any:
    """The ``key`` object of a JSON request body.

    Raises:
        EmulatorError: 400 with ``message`` when the body is not JSON or lacks ``key``.
    """
    try:
        return request.get_json(force=True)[key]
    except (TypeError, KeyError, ValueError):
        raise EmulatorError(400, message, kind) from None


def base_url(request: Request) -> str:
    """The emulator's URL as the client reached it (``http://127.0.0.1:PORT``), for links."""
    return request.host_url.rstrip("/")


def filtered(items: list[dict[str, Any]], args: MultiDict[str, str]) -> list[dict[str, Any]]:
    """Neutron/Glance-style filtering: every query key that is a field must equal it."""
    result = []
    for item in items:
        keep = True
        for key in args:
            if key in _PAGING or key not in item:
                continue
            wanted = args.getlist(key)
            value = item[key]
            shown = str(value).lower() if isinstance(value, bool) else ("" if value is None else str(value))
            if shown not in [w.lower() if isinstance(value, bool) else w for w in wanted]:
                keep = False
        if keep:
            result.append(item)
    return result


def paged(items: list[dict[str, Any]], args: MultiDict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
    """Apply ``marker``/``limit``; return the page and the marker of the next page, if any."""
    marker = args.get("marker")
    if marker:
        ids = [i.get("id") for i in items]
        items = items[ids.index(marker) + 1:] if marker in ids else []
    limit = args.get("limit", type=int)
    if limit and len(items) > limit:
        return items[:limit], items[limit - 1]["id"]
    return items, None


class App:
    """The WSGI application serving a cloud's services.

    Args:
        cloud: the state (it records each request, holds the faults and validates tokens).
        services: the services to serve; the first one words errors for unknown prefixes.
    """

    def __init__(self, cloud: OpenStackCloud, services: Iterable[Service]) -> None:
        self.cloud = cloud
        self.services = list(services)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Answer one WSGI request."""
        request = Request(environ)
        path = request.path.rstrip("/") or "/"
        with self.cloud.lock:
            self.cloud.requests.append((request.method, path))
        if self.cloud.faults.slow_answers > 0:
            time.sleep(self.cloud.faults.slow_answers)
        return self.dispatch(request, path)(environ, start_response)

    def _service(self, path: str) -> Service:
        for service in self.services:
            if path == service.prefix or path.startswith(service.prefix + "/"):
                return service
        return self.services[0]

    def dispatch(self, request: Request, path: str) -> Response:
        """The answer to ``request`` (whose normalized path is ``path``)."""
        service = self._service(path)
        methods = []
        for route in service.routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            methods.append(route.method)
            if route.method != request.method:
                continue
            try:
                if route.public:
                    return route.handler(request, **match.groupdict())
                caller = self.cloud.authenticate(request.headers.get("X-Auth-Token"))
                return route.handler(request, caller, **match.groupdict())
            except EmulatorError as exc:
                return service.error(exc)
            except Exception as exc:  # a failing hook: answer like a service with an internal error
                logger.warning("%s %s failed: %s", request.method, path, exc)
                return service.error(EmulatorError(500, f"Internal error: {exc}", "HTTPInternalServerError"))
        if methods:
            return service.error(EmulatorError(405, f"The method {request.method} is not allowed for {path}."))
        return service.error(EmulatorError(404, f"The resource could not be found: {path}", "HTTPNotFound"))
