"""The TOSCA Submitter v2.0 REST API as a WSGI application over a :class:`~.models.SubmitterState`.

It answers as the real server does behind the MiCADO proxy (the docs' "TOSCA
Submitter API" page):

- the proxy part: HTTP basic auth on every path (401 JSON), or, when
  :attr:`~.models.SubmitterState.login_page` is set, the proxy's HTML login page
  (200) for every request; every answer after
  :attr:`~.models.SubmitterState.response_delay` seconds;
- the dashboards the proxy serves beside the submitter (``/dashboard``, ``/grafana``,
  ``/prometheus``, ``/kubernetes`` and what is under them): a small HTML page for
  those in :attr:`~.models.SubmitterState.dashboards`, 404 for the others;
- routing (:mod:`.urls`): a path without its trailing slash answers 308, unknown
  paths and methods get the framework's HTML 404/405 (the server's JSON error
  handlers do not see them), OPTIONS gets Flask's automatic answer;
- the handlers (:mod:`.responses`), whose errors become JSON ``{"message": ...}``
  answers, an unexpected exception included (the server's catch-all).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

from micado.testing.submitter.adt import MAX_ADT_BYTES
from micado.testing.submitter.models import SubmitterError, SubmitterState
from micado.testing.submitter.responses import (
    SubmitterResponses,
    dashboard_page,
    error_message,
    json_response,
    login_page,
    unauthorized,
)
from micado.testing.submitter.urls import dashboard_of, handler, url_map

__all__ = ["SubmitterApp"]

logger = logging.getLogger(__name__)


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The request path as the client sent it (werkzeug's server keeps it in RAW_URI)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    return urllib.parse.quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))


class SubmitterApp:
    """The TOSCA Submitter v2.0 API as a WSGI callable over ``state``.

    Every request is recorded in ``state.requests``; the switches and the
    applications are those of the state.

    Args:
        state: what the server knows (its prefix, login, switches, applications).
    """

    def __init__(self, state: SubmitterState) -> None:
        self.state = state
        self._responses = SubmitterResponses(state)
        self._url_map = url_map(state.prefix)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one WSGI request."""
        request = Request(environ)
        # The real server's request bodies are ADTs; refuse what no ADT needs.
        request.max_content_length = MAX_ADT_BYTES + 1024 * 1024
        self.state.requests.append((request.method, _raw_path(environ)))
        try:
            response = self._respond(request)
            return response(environ, start_response)
        finally:
            request.close()  # uploaded files are spooled to temporary files

    def _authorized(self, request: Request) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
            return False
        return self.state.credentials_match(auth.username, auth.password)

    def _proxy_refusal(self, request: Request) -> Response | None:
        """The MiCADO proxy's answer when the request does not get through, else None."""
        if self.state.login_page:
            return login_page()
        if self._authorized(request):
            return None
        if self.state.html_auth_pages:
            return login_page(failed=request.authorization is not None)
        return unauthorized()

    def _dashboard(self, request: Request, name: str) -> Response:
        """A dashboard's answer: its page if the state serves it, else the proxy's 404."""
        if name not in self.state.dashboards:
            return NotFound().get_response(request.environ)
        if request.method not in ("GET", "HEAD"):
            return MethodNotAllowed(valid_methods=["GET", "HEAD"]).get_response(request.environ)
        return dashboard_page(name)

    def _respond(self, request: Request) -> Response:
        if self.state.response_delay > 0:
            time.sleep(self.state.response_delay)
        refusal = self._proxy_refusal(request)
        if refusal is not None:
            return refusal
        dashboard = dashboard_of(request.path)
        if dashboard is not None:
            return self._dashboard(request, dashboard)
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            _, args = adapter.match()
        except RequestRedirect as redirect:
            return redirect.get_response(request.environ)
        except HTTPException as error:
            # Routing failures never reach the server's JSON error handlers.
            return error.get_response(request.environ)
        if request.method == "OPTIONS":
            # Flask's automatic answer: no body, the allowed methods in a header.
            return Response(status=200, headers={"Allow": ", ".join(sorted(adapter.allowed_methods()))})
        try:
            body = handler(self._responses, request.method)(request, args.get("app_id"))
            return json_response(body, 200)
        except (SubmitterError, HTTPException) as error:
            message, status = error_message(error)
            return json_response({"message": message}, status)
        except Exception as error:  # the server's catch-all handler: the message goes to the client
            logger.debug("unhandled error in %s %s", request.method, request.path, exc_info=True)
            return json_response({"message": f"Unhandled exception: {error}"}, 500)
