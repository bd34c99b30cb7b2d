"""The TOSCA Submitter's front end: requests parsed as the server parses them, answers as it gives them.

The real server (``component_submitter``: Flask, webargs, marshmallow) reads its
bodies like this: JSON fields ``adt`` (mapping), ``url`` (string), ``params``
(mapping), ``dryrun`` (boolean); form fields ``url``, ``params``, ``dryrun``
(strings); file part ``adt``; unknown fields are 422, malformed JSON 400; DELETE
reads only the form field ``force``. :class:`SubmitterResponses` does that and
calls the model (:class:`~.models.SubmitterState`); the functions below build the
JSON and HTML answers, those of the MiCADO proxy in front included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import BadRequest, HTTPException, Unauthorized, UnprocessableEntity, default_exceptions
from werkzeug.wrappers import Request, Response

from micado.testing.submitter.models import SubmitterError, SubmitterState

__all__ = ["SubmitterResponses", "json_response", "error_message", "login_page", "unauthorized", "dashboard_page"]

# marshmallow's Boolean field: what it accepts as true and as false.
_TRUTHY = frozenset({"t", "T", "true", "True", "TRUE", "on", "On", "ON", "y", "Y", "yes", "Yes", "YES", "1", 1})
_FALSY = frozenset({"f", "F", "false", "False", "FALSE", "off", "Off", "OFF", "n", "N", "no", "No", "NO", "0", 0})

# The server's webargs schemas: field name -> marshmallow field type.
_JSON_FIELDS = {"adt": "dict", "url": "str", "params": "dict", "dryrun": "bool"}
_FORM_FIELDS = {"url": "str", "params": "str", "dryrun": "str"}
_DELETE_FORM_FIELDS = {"force": "bool"}

_LOGIN_FORM = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>MiCADO - Login</title></head>
<body>
<h1>MiCADO Dashboard</h1>
{error}<form method="post" action="/login">
<input type="hidden" name="redirect_location" value="">
<label>Username <input type="text" name="username"></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Login</button>
</form>
</body>
</html>
"""
#: The MiCADO proxy's web login page, and the page it shows after wrong credentials.
_LOGIN_PAGE = _LOGIN_FORM.format(error="")
_AUTH_FAILED_PAGE = _LOGIN_FORM.format(error='<p class="error">Authentication failed</p>\n')

#: What each dashboard's page is titled.
_DASHBOARD_TITLES = {
    "dashboard": "MiCADO Dashboard",
    "grafana": "Grafana",
    "prometheus": "Prometheus",
    "kubernetes": "Kubernetes Dashboard",
}
_DASHBOARD_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>The {name} dashboard of the emulated MiCADO master.</p></body>
</html>
"""


def json_response(body: Mapping[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, as Flask's ``jsonify`` gives it."""
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def error_message(error: SubmitterError | HTTPException) -> tuple[str, int]:
    """The server's error text and status: Flask's ``"404 Not Found: <message>"``.

    Args:
        error: a refusal of the model, or an HTTP error of the request parsing.

    Returns:
        The text of the answer's ``message`` and the status.
    """
    if isinstance(error, SubmitterError):
        error = default_exceptions[error.status](error.message)
    return str(error), error.code or 500


def login_page(failed: bool = False) -> Response:
    """The MiCADO proxy's HTML login page (status 200), or the one after wrong credentials.

    Args:
        failed: show "Authentication failed".
    """
    return Response(_AUTH_FAILED_PAGE if failed else _LOGIN_PAGE, status=200, mimetype="text/html")


def dashboard_page(name: str) -> Response:
    """A dashboard's page (status 200), a small HTML document naming it.

    Args:
        name: the dashboard, one of :data:`~.models.DASHBOARD_NAMES`.
    """
    return Response(_DASHBOARD_PAGE.format(title=_DASHBOARD_TITLES[name], name=name), status=200, mimetype="text/html")


def unauthorized() -> Response:
    """The proxy's 401 for a request without the right basic-auth credentials."""
    return json_response({"message": str(Unauthorized())}, 401, {"WWW-Authenticate": 'Basic realm="MiCADO"'})


def _field_error(kind: str, value: Any) -> str | None:
    """The marshmallow message for ``value`` in a field of ``kind``, or None when it fits."""
    if value is None:
        return "Field may not be null."
    if kind == "dict" and not isinstance(value, dict):
        return "Not a valid mapping type."
    if kind == "str" and not isinstance(value, str):
        return "Not a valid string."
    if kind == "bool":
        try:
            if value in _TRUTHY or value in _FALSY:
                return None
        except TypeError:  # unhashable: a list or a mapping
            pass
        return "Not a valid boolean."
    return None


def _load_fields(data: Any, fields: Mapping[str, str], location: str) -> dict[str, Any]:
    """Check ``data`` against a webargs schema; 422 with marshmallow's messages if it fails."""
    if not isinstance(data, dict):
        raise UnprocessableEntity(description={location: {"_schema": ["Invalid input type."]}})  # type: ignore[arg-type]
    errors: dict[str, list[str]] = {}
    loaded: dict[str, Any] = {}
    for name, kind in fields.items():
        if name not in data:
            continue
        problem = _field_error(kind, data[name])
        if problem:
            errors[name] = [problem]
        elif kind == "bool":
            loaded[name] = data[name] in _TRUTHY
        else:
            loaded[name] = data[name]
    for name in data:
        if name not in fields:
            errors[str(name)] = ["Unknown field."]
    if errors:
        # webargs aborts with the messages namespaced by location; Flask's handler
        # prints the dict: "422 Unprocessable Entity: {'json': {'x': ['Unknown field.']}}".
        raise UnprocessableEntity(description={location: errors})  # type: ignore[arg-type]
    return loaded


def _json_args(request: Request) -> dict[str, Any]:
    if not request.is_json:
        return {}
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        # webargs aborts with the bare 400 (its "Invalid JSON body." is not in the text).
        raise BadRequest() from None
    return _load_fields(data, _JSON_FIELDS, "json")


def _form_args(request: Request, fields: Mapping[str, str]) -> dict[str, Any]:
    # A multipart part without a filename is a form field: ``adt`` sent that way is
    # an unknown form field (422), as on the real server.
    form = {key: request.form.get(key) for key in request.form}
    return _load_fields(form, fields, "form") if form else {}


def _adt_args(request: Request) -> dict[str, Any]:
    """The fields of POST and PUT, in webargs' order: JSON, files, form."""
    kwargs = _json_args(request)
    upload = request.files.get("adt")
    if upload is not None:
        kwargs["adt"] = upload
    kwargs.update(_form_args(request, _FORM_FIELDS))
    return kwargs


class SubmitterResponses:
    """The handlers of the server's ``Applications`` resource: a request in, the answer's body out.

    Each handler raises :class:`~.models.SubmitterError` (the model's refusals),
    werkzeug's ``HTTPException`` (the request parsing's) or any other exception
    (which the server's catch-all answers with 500).

    Args:
        state: the model the handlers call.
    """

    def __init__(self, state: SubmitterState) -> None:
        self.state = state

    def get(self, request: Request, app_id: str | None) -> dict[str, Any]:
        """``GET`` (and ``HEAD``: werkzeug drops the body of a HEAD answer)."""
        return self.state.get_applications(app_id)

    def delete(self, request: Request, app_id: str | None) -> dict[str, Any]:
        """``DELETE``: only the form field ``force`` is read."""
        assert app_id is not None  # the routing map allows DELETE on items only
        force = _form_args(request, _DELETE_FORM_FIELDS).get("force", False)
        return self.state.delete(app_id, force)

    def update(self, request: Request, app_id: str | None) -> dict[str, Any]:
        """``PUT``: the same fields as POST; ``dryrun`` breaks the server's handler."""
        kwargs = _adt_args(request)
        if "dryrun" in kwargs:
            # The server's put() has no dryrun parameter: webargs passes the field
            # anyway, Python raises this TypeError and the catch-all answers 500.
            raise TypeError("Application.put() got an unexpected keyword argument 'dryrun'")
        assert app_id is not None  # the routing map allows PUT on items only
        return self.state.update(app_id, kwargs.get("adt"), kwargs.get("url"), kwargs.get("params"))

    def create(self, request: Request, app_id: str | None) -> dict[str, Any]:
        """``POST``, on the collection (a generated id) or on an item (that id)."""
        kwargs = _adt_args(request)
        dryrun = kwargs.get("dryrun", False)
        if isinstance(dryrun, str):
            # The server's rule for the form field: only "" or "false..." mean false.
            dryrun = bool(dryrun) and not dryrun.lower().startswith("false")
        return self.state.deploy(app_id, kwargs.get("adt"), kwargs.get("url"), kwargs.get("params"), dryrun)
