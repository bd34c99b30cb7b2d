"""The TOSCA Submitter's routes: ``<prefix>/v2.0/applications/`` and ``.../applications/<id>/``;
and the dashboards the MiCADO proxy serves beside it, ``/<dashboard>`` and anything under it.

A submitter path without its trailing slash answers 308 (``strict_slashes``), as Flask's do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from micado.testing.submitter.models import DASHBOARD_NAMES
from micado.testing.submitter.responses import SubmitterResponses

__all__ = ["url_map", "handler", "dashboard_of"]

#: A handler: the request and the ``<app_id>`` of the path (None on the collection) to the answer's body.
Handler = Callable[[Request, str | None], dict[str, Any]]


def url_map(prefix: str) -> Map:
    """The routes under ``prefix`` (``/toscasubmitter``, or "" for none).

    Args:
        prefix: the path prefix, with a leading slash and none at its end.

    Returns:
        The routing map; its endpoints are ``collection`` and ``item``.
    """
    base = f"{prefix}/v2.0/applications/"
    return Map(
        [
            # Flask adds OPTIONS to every rule (and werkzeug adds HEAD to GET).
            Rule(base, endpoint="collection", methods=["GET", "POST", "OPTIONS"]),
            Rule(base + "<app_id>/", endpoint="item", methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"]),
        ],
        strict_slashes=True,
    )


def handler(responses: SubmitterResponses, method: str) -> Handler:
    """The handler of a method the routing map allowed (OPTIONS is answered before).

    Args:
        responses: the front end.
        method: the HTTP method.
    """
    handlers: dict[str, Handler] = {
        "GET": responses.get,
        "HEAD": responses.get,
        "POST": responses.create,
        "PUT": responses.update,
        "DELETE": responses.delete,
    }
    return handlers[method]


def dashboard_of(path: str) -> str | None:
    """The dashboard a request path is under (``/grafana``, ``/grafana/d/x``...), if any.

    The proxy maps these paths to their services whatever the submitter's prefix.

    Args:
        path: the request path, decoded.

    Returns:
        The dashboard's name (one of :data:`~.models.DASHBOARD_NAMES`), or None.
    """
    for name in DASHBOARD_NAMES:
        if path == f"/{name}" or path.startswith(f"/{name}/"):
            return name
    return None
