"""The TOSCA Submitter v2.0 REST API as a WSGI application, with inspectable state.

This is the request handling of the emulator (:mod:`micado.testing.submitter`
serves it over HTTPS). It answers as the real server (``component_submitter``:
Flask, webargs, marshmallow) does behind the MiCADO proxy (the docs' "TOSCA Submitter API" page):

- the proxy part: HTTP basic auth on every path (401 JSON), or, when
  :attr:`SubmitterApp.login_page` is set, the proxy's HTML login page (200) for
  every request;
- routing: ``<prefix>/v2.0/applications/`` and ``.../applications/<id>/``; a path
  without its trailing slash answers 308, unknown paths and methods get the
  framework's HTML 404/405 (the server's JSON error handlers do not see them);
- body parsing like webargs: JSON fields ``adt`` (mapping), ``url`` (string),
  ``params`` (mapping), ``dryrun`` (boolean); form fields ``url``, ``params``,
  ``dryrun`` (strings); file part ``adt``; unknown fields are 422, malformed JSON
  400; DELETE reads only the form field ``force``;
- the checks and messages of the server's ``Applications`` class, in its order.
"""

from __future__ import annotations

import copy
import hmac
import json
import logging
import secrets
import string
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    NotFound,
    Unauthorized,
    UnprocessableEntity,
)
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from micado.testing.submitter_adt import MAX_ADT_BYTES, check_tosca, load_adt_bytes, load_adt_url

__all__ = ["DEFAULT_ADAPTORS", "RequestLog", "SubmitterApp", "generate_app_id"]

logger = logging.getLogger(__name__)

#: Adaptor names and statuses a freshly deployed application reports on a MiCADO
#: master (they vary between masters and versions: clients must not rely on them).
DEFAULT_ADAPTORS: dict[str, str] = {
    "TerraformAdaptor": "Skipped",
    "OccopusAdaptor": "Executed",
    "KubernetesAdaptor": "Executed",
    "PkAdaptor": "Executed",
    "SecurityPolicyManagerAdaptor": "Executed",
}

_ID_CHARS = string.ascii_uppercase + string.digits

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


class RequestLog(list):  # type: ignore[type-arg]
    """A list of ``(method, path)`` that server threads append to while tests read it.

    Appending, clearing and iterating hold a lock; iteration walks a snapshot.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def append(self, item: Any) -> None:
        """Add an entry (called by the server threads)."""
        with self._lock:
            super().append(item)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            super().clear()

    def __iter__(self) -> Any:
        with self._lock:
            return iter(list(super().__iter__()))


def generate_app_id() -> str:
    """Make an application id the way the server does: 8 characters of A-Z and 0-9."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(8))


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The request path as the client sent it (werkzeug's server keeps it in RAW_URI)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    return urllib.parse.quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))


def _json_response(body: Mapping[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


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


def _literal_params(params: Any) -> dict[str, Any]:
    """The server's handling of ``params``: a mapping, or JSON text of one."""
    if isinstance(params, dict):
        return params
    try:
        value = json.loads(params) if params else {}
    except Exception as error:
        # The server's message, stray backslash included.
        raise BadRequest(f"{error}\\Error loading JSON params, of type {type(params)}") from None
    if not isinstance(value, dict):
        raise BadRequest("Parsed params are not a valid map (dict)")
    return value


class SubmitterApp:
    """The TOSCA Submitter v2.0 API as a WSGI callable, with state tests can inspect.

    Attributes:
        login_page: when true, every request gets the MiCADO proxy's HTML login page
            (status 200), as a client without a valid session would.
        html_auth_pages: when true, the proxy answers like its web login: a request
            without credentials gets the HTML login page and wrong credentials the
            "Authentication failed" page, both with status 200 (instead of 401 JSON).
        adaptors: adaptor name -> status reported by ``get`` for new applications.
        deploy_error: when set, create answers ``500 Error while deploying: <text>``.
        update_error: when set, update answers ``500 Error while updating: <text>``.
        delete_error: when set, delete without ``force`` answers
            ``500 Error while deleting: <text>``.
        delay: seconds create, update and delete take (the real server deploys
            synchronously, for minutes), to test client timeouts.
        url_timeout: seconds the server waits for an ADT ``url``.
        deletions: ``(app_id, force)`` of every delete of an existing application, in
            order (``force`` as the server parsed it), to check what a client sent.
    """

    def __init__(
        self,
        *,
        user: str,
        password: str,
        prefix: str = "/toscasubmitter",
        adaptors: Mapping[str, str] | None = None,
    ) -> None:
        """Create the application with no deployed applications.

        Args:
            user: the basic-auth user name.
            password: the basic-auth password.
            prefix: the path prefix of the proxy in front (``/toscasubmitter``), or "".
            adaptors: adaptor name -> status for ``get``; :data:`DEFAULT_ADAPTORS` if None.
        """
        self._user = user
        self._password = password
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.adaptors: dict[str, str] = dict(DEFAULT_ADAPTORS if adaptors is None else adaptors)
        self.login_page = False
        self.html_auth_pages = False
        self.deploy_error: str | None = None
        self.update_error: str | None = None
        self.delete_error: str | None = None
        self.delay = 0.0
        self.url_timeout = 10.0
        self._apps: dict[str, dict[str, Any]] = {}
        self._requests = RequestLog()
        self.deletions: list[tuple[str, bool]] = []
        self._lock = threading.Lock()  # guards _apps and deletions, held briefly
        self._op_lock = threading.Lock()  # one create/update/delete at a time, like the engine
        base = f"{self.prefix}/v2.0/applications/"
        self._url_map = Map(
            [
                # Flask adds OPTIONS to every rule (and werkzeug adds HEAD to GET).
                Rule(base, endpoint="collection", methods=["GET", "POST", "OPTIONS"]),
                Rule(base + "<app_id>/", endpoint="item", methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"]),
            ],
            strict_slashes=True,
        )

    # -- inspectable state ------------------------------------------------------------

    @property
    def user(self) -> str:
        """The basic-auth user name."""
        return self._user

    @property
    def password(self) -> str:
        """The basic-auth password."""
        return self._password

    @property
    def applications(self) -> dict[str, dict[str, Any]]:
        """A copy of the deployed applications: id -> ``{"adt", "params", "url",
        "filename", "adaptors"}`` (``adt`` is the parsed mapping)."""
        with self._lock:
            return copy.deepcopy(self._apps)

    @property
    def requests(self) -> RequestLog:
        """Every request received, as ``(method, path)``, the path as sent (still
        percent-encoded, without the query string). A live list: ``clear()`` it to
        count from a point on."""
        return self._requests

    def add_application(
        self, app_id: str, adt: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None
    ) -> None:
        """Register an application directly, without the API's checks (not even the
        one-application limit), e.g. to give ``list`` several applications.

        Args:
            app_id: the application id.
            adt: the ADT mapping to store (a minimal TOSCA document if None).
            params: the TOSCA inputs to store.
        """
        record = {
            "adt": dict(adt) if adt is not None else {"tosca_definitions_version": "tosca_simple_yaml_1_2"},
            "params": dict(params or {}),
            "url": None,
            "filename": None,
            "adaptors": dict(self.adaptors),
        }
        with self._lock:
            self._apps[app_id] = record

    def reset(self) -> None:
        """Forget applications and recorded requests, and clear every switch and fault."""
        with self._lock:
            self._apps.clear()
            self.deletions.clear()
        self._requests.clear()
        self.login_page = self.html_auth_pages = False
        self.deploy_error = self.update_error = self.delete_error = None
        self.delay = 0.0

    # -- WSGI -------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one WSGI request."""
        request = Request(environ)
        # The real server's request bodies are ADTs; refuse what no ADT needs.
        request.max_content_length = MAX_ADT_BYTES + 1024 * 1024
        self._requests.append((request.method, _raw_path(environ)))
        try:
            response = self._respond(request)
            return response(environ, start_response)
        finally:
            request.close()  # uploaded files are spooled to temporary files

    def _authorized(self, request: Request) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
            return False
        user_ok = hmac.compare_digest(auth.username.encode(), self._user.encode())
        password_ok = hmac.compare_digest(auth.password.encode(), self._password.encode())
        return user_ok and password_ok

    def _respond(self, request: Request) -> Response:
        if self.login_page:
            return Response(_LOGIN_PAGE, status=200, mimetype="text/html")
        if not self._authorized(request):
            if self.html_auth_pages:
                page = _LOGIN_PAGE if request.authorization is None else _AUTH_FAILED_PAGE
                return Response(page, status=200, mimetype="text/html")
            return _json_response(
                {"message": str(Unauthorized())}, 401, {"WWW-Authenticate": 'Basic realm="MiCADO"'}
            )
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except RequestRedirect as redirect:
            return redirect.get_response(request.environ)
        except HTTPException as error:
            # Routing failures never reach the server's JSON error handlers.
            return error.get_response(request.environ)
        if request.method == "OPTIONS":
            # Flask's automatic answer: no body, the allowed methods in a header.
            return Response(status=200, headers={"Allow": ", ".join(sorted(adapter.allowed_methods()))})
        try:
            return _json_response(self._dispatch(request, endpoint, args.get("app_id")), 200)
        except HTTPException as error:
            return _json_response({"message": str(error)}, error.code or 500)
        except Exception as error:  # the server's catch-all handler: the message goes to the client
            logger.debug("unhandled error in %s %s", request.method, request.path, exc_info=True)
            return _json_response({"message": f"Unhandled exception: {error}"}, 500)

    def _dispatch(self, request: Request, endpoint: str, app_id: str | None) -> dict[str, Any]:
        method = request.method
        if method in ("GET", "HEAD"):  # werkzeug drops the body of a HEAD answer
            return self._get(app_id)
        if method == "DELETE":
            assert app_id is not None  # the routing map allows DELETE on items only
            force = _form_args(request, _DELETE_FORM_FIELDS).get("force", False)
            return self._delete(app_id, force)
        # POST and PUT take the same fields, in webargs' order: JSON, files, form.
        kwargs = _json_args(request)
        upload = request.files.get("adt")
        if upload is not None:
            kwargs["adt"] = upload
        kwargs.update(_form_args(request, _FORM_FIELDS))
        if method == "PUT":
            if "dryrun" in kwargs:
                # The server's put() has no dryrun parameter: webargs passes the field
                # anyway, Python raises this TypeError and the catch-all answers 500.
                raise TypeError("Application.put() got an unexpected keyword argument 'dryrun'")
            assert app_id is not None
            return self._update(app_id, kwargs.get("adt"), kwargs.get("url"), kwargs.get("params"))
        dryrun = kwargs.get("dryrun", False)
        if isinstance(dryrun, str):
            # The server's rule for the form field: only "" or "false..." mean false.
            dryrun = bool(dryrun) and not dryrun.lower().startswith("false")
        return self._create(app_id, kwargs.get("adt"), kwargs.get("url"), kwargs.get("params"), dryrun)

    # -- the server's Applications class ---------------------------------------------------

    def _get(self, app_id: str | None) -> dict[str, Any]:
        with self._lock:
            if app_id is None:
                return {"applications": list(self._apps), "message": "MiCADO Applications"}
            record = self._apps.get(app_id)
            if record is None:
                raise NotFound(f"Application {app_id} does not exist")
            return {"adaptors": dict(record["adaptors"]), "message": "MiCADO Application Info"}

    @staticmethod
    def _require_adt(adt: Any, url: str | None) -> None:
        """400 when neither ``url`` nor ``adt`` holds something (the server's own check)."""
        # An upload with an empty filename is falsy too (werkzeug's FileStorage).
        if not url and not adt:
            raise BadRequest("No ADT data was included in the request")

    def _validate(self, adt: Any, url: str | None, name: str) -> dict[str, Any]:
        try:
            if url:
                return load_adt_url(url, self.url_timeout)
            if isinstance(adt, dict):
                return check_tosca(copy.deepcopy(adt), name)
            return load_adt_bytes(adt.read(), adt.filename)
        except Exception as error:  # the server reports every validation failure this way
            raise InternalServerError(f"Error while validating: {error}") from None

    def _simulate_work(self) -> None:
        if self.delay > 0:
            time.sleep(self.delay)

    def _create(
        self, app_id: str | None, adt: Any, url: str | None, params: Any, dryrun: bool
    ) -> dict[str, Any]:
        app_id = app_id or generate_app_id()
        with self._op_lock:
            with self._lock:
                if app_id in self._apps:
                    raise BadRequest("The application ID already exists")
                if self._apps:
                    raise BadRequest("Multiple applications are not supported")
            self._require_adt(adt, url)
            inputs = _literal_params(params)
            document = self._validate(adt, url, f"{app_id}.yaml")
            self._simulate_work()
            if self.deploy_error:
                raise InternalServerError(f"Error while deploying: {self.deploy_error}")
            # Like the real engine, a dry run is registered too (its adaptors deploy
            # nothing); it counts as the master's one application until deleted.
            record = {
                "adt": document,
                "params": inputs,
                "url": url or None,
                "filename": None if url else getattr(adt, "filename", None),
                "adaptors": dict(self.adaptors),
                "dryrun": dryrun,
            }
            with self._lock:
                self._apps[app_id] = record
        return {"message": f"Application {app_id} successfully deployed"}

    def _update(self, app_id: str, adt: Any, url: str | None, params: Any) -> dict[str, Any]:
        with self._op_lock:
            with self._lock:
                if app_id not in self._apps:
                    raise NotFound(f"Application with ID {app_id} does not exist")
            self._require_adt(adt, url)
            inputs = _literal_params(params)
            document = self._validate(adt, url, f"{app_id}.yaml")
            self._simulate_work()
            if self.update_error:
                raise InternalServerError(f"Error while updating: {self.update_error}")
            with self._lock:
                record = self._apps.get(app_id)
                if record is not None:
                    record.update(
                        adt=document,
                        params=inputs,
                        url=url or None,
                        filename=None if url else getattr(adt, "filename", None),
                        adaptors={name: "Updated" for name in record["adaptors"]},
                    )
        return {"message": f"Application {app_id} successfully updated"}

    def _delete(self, app_id: str, force: bool) -> dict[str, Any]:
        with self._op_lock:
            with self._lock:
                if app_id not in self._apps:
                    raise NotFound(f"Application with ID {app_id} does not exist")
            self._simulate_work()
            with self._lock:
                self.deletions.append((app_id, force))
            if self.delete_error and not force:
                raise InternalServerError(f"Error while deleting: {self.delete_error}")
            with self._lock:
                self._apps.pop(app_id, None)
        return {"message": f"Application {app_id} successfully deleted"}
