"""The TOSCA Submitter's state: the deployed applications, the switches tests set, the engine's checks.

This is the model of the emulator, as moto lays out its services: it holds what
the server knows and does what the server's ``Applications`` class does (its
checks and messages, in its order), and it never imports HTTP code. A refusal is
a :class:`SubmitterError` carrying the status and the server's message;
:mod:`.responses` turns requests into calls here and errors into answers.
"""

from __future__ import annotations

import copy
import hmac
import json
import os
import secrets
import string
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from micado.testing.submitter.adt import check_tosca, load_adt_bytes, load_adt_url

__all__ = [
    "DASHBOARD_NAMES",
    "DEFAULT_ADAPTORS",
    "RequestLog",
    "SubmitterError",
    "SubmitterState",
    "Upload",
    "check_dashboards",
    "generate_app_id",
]

#: Adaptor names and statuses a freshly deployed application reports on a MiCADO
#: master (they vary between masters and versions: clients must not rely on them).
DEFAULT_ADAPTORS: dict[str, str] = {
    "TerraformAdaptor": "Skipped",
    "OccopusAdaptor": "Executed",
    "KubernetesAdaptor": "Executed",
    "PkAdaptor": "Executed",
    "SecurityPolicyManagerAdaptor": "Executed",
}

#: The dashboards the MiCADO proxy serves beside the submitter, on the same host and
#: port, each under ``/<name>`` (the proxy's URL mapping on a master).
DASHBOARD_NAMES: tuple[str, ...] = ("dashboard", "grafana", "prometheus", "kubernetes")

_ID_CHARS = string.ascii_uppercase + string.digits


class SubmitterError(Exception):
    """A request the server refuses; becomes its JSON error answer.

    Attributes:
        status: the HTTP status (400, 404 or 500).
        message: the server's explanation, without the status line.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Upload(Protocol):
    """An uploaded ADT file: its name and its bytes (false when sent without a file name)."""

    filename: str | None

    def read(self) -> bytes:
        """The uploaded bytes."""

    def __bool__(self) -> bool:
        """Whether the part has a file name."""


#: What ``adt`` may be: the JSON field (a mapping), an uploaded file, or absent.
ADT = Mapping[str, Any] | Upload | None


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


def check_dashboards(names: Iterable[str]) -> set[str]:
    """``names`` as a set of dashboard names, each one of :data:`DASHBOARD_NAMES`.

    Raises:
        ValueError: a name is not a dashboard's.
    """
    chosen = {names} if isinstance(names, str) else set(names)
    unknown = sorted(chosen - set(DASHBOARD_NAMES))
    if unknown:
        raise ValueError(f"unknown dashboard(s) {', '.join(unknown)}: choose among {', '.join(DASHBOARD_NAMES)}")
    return chosen


def literal_params(params: Any) -> dict[str, Any]:
    """The server's handling of ``params``: a mapping, or JSON text of one.

    Raises:
        SubmitterError: 400, not JSON or not a mapping (the server's messages).
    """
    if isinstance(params, dict):
        return params
    try:
        value = json.loads(params) if params else {}
    except Exception as error:
        # The server's message, stray backslash included.
        raise SubmitterError(400, f"{error}\\Error loading JSON params, of type {type(params)}") from None
    if not isinstance(value, dict):
        raise SubmitterError(400, "Parsed params are not a valid map (dict)")
    return value


def _require_adt(adt: ADT, url: str | None) -> None:
    """400 when neither ``url`` nor ``adt`` holds something (the server's own check)."""
    # An upload with an empty filename is falsy too (werkzeug's FileStorage).
    if not url and not adt:
        raise SubmitterError(400, "No ADT data was included in the request")


def _filename(adt: ADT, url: str | None) -> str | None:
    return None if url else getattr(adt, "filename", None)


class SubmitterState:
    """What a TOSCA Submitter knows, the switches tests set, and the server's operations.

    Attributes:
        prefix: the path prefix of the proxy in front (``/toscasubmitter``), or "".
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
        response_delay: seconds every request waits before it is answered (the proxy's
            refusals and the dashboards included), to emulate a slow or distant master.
        dashboards: the names (of :data:`DASHBOARD_NAMES`) of the dashboards the proxy
            serves; the others answer 404. Configuration, like ``adaptors``: ``reset()``
            keeps it.
        url_timeout: seconds the server waits for an ADT ``url``.
        deletions: ``(app_id, force)`` of every delete of an existing application, in
            order (``force`` as the server parsed it), to check what a client sent.
        state_file: where the applications are kept across restarts (:meth:`keep_in`),
            as a real master keeps them in its cluster; ``None``: in memory only.
    """

    def __init__(
        self,
        *,
        user: str,
        password: str,
        prefix: str = "/toscasubmitter",
        adaptors: Mapping[str, str] | None = None,
        dashboards: Iterable[str] | None = None,
    ) -> None:
        """Create the state with no deployed applications.

        Args:
            user: the basic-auth user name.
            password: the basic-auth password.
            prefix: the path prefix of the proxy in front (``/toscasubmitter``), or "".
            adaptors: adaptor name -> status for ``get``; :data:`DEFAULT_ADAPTORS` if None.
            dashboards: the dashboards served (names of :data:`DASHBOARD_NAMES`); all of
                them if None.

        Raises:
            ValueError: a dashboard name is not one of :data:`DASHBOARD_NAMES`.
        """
        self._user = user
        self._password = password
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.adaptors: dict[str, str] = dict(DEFAULT_ADAPTORS if adaptors is None else adaptors)
        self.dashboards: set[str] = check_dashboards(DASHBOARD_NAMES if dashboards is None else dashboards)
        self.login_page = False
        self.html_auth_pages = False
        self.deploy_error: str | None = None
        self.update_error: str | None = None
        self.delete_error: str | None = None
        self.delay = 0.0
        self.response_delay = 0.0
        self.url_timeout = 10.0
        self._apps: dict[str, dict[str, Any]] = {}
        self._requests = RequestLog()
        self.deletions: list[tuple[str, bool]] = []
        self.state_file: Path | None = None
        self._lock = threading.Lock()  # guards _apps and deletions, held briefly
        self._op_lock = threading.Lock()  # one create/update/delete at a time, like the engine

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
            self._save()

    def keep_in(self, path: Path) -> None:
        """Keep the applications in ``path`` (JSON): read them from it now, if it exists,
        and write them there after every change, so that a restarted server still has
        them, as a real master does after its services restart.

        Raises:
            ValueError: the file exists but is not a mapping of application ids to records.
        """
        path = Path(path)
        apps: Any = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if not isinstance(apps, dict) or not all(isinstance(record, dict) for record in apps.values()):
            raise ValueError(f"{path} does not hold the applications of a TOSCA Submitter emulator")
        with self._lock:
            self._apps = apps
            self.state_file = path

    def _save(self) -> None:
        """Write the applications to :attr:`state_file` (atomically), if there is one; with ``_lock`` held."""
        if self.state_file is None:
            return
        staging = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}")
        staging.write_text(json.dumps(self._apps, default=str), encoding="utf-8")
        staging.chmod(0o600)
        os.replace(staging, self.state_file)

    def reset(self) -> None:
        """Forget applications and recorded requests, and clear every switch and fault."""
        with self._lock:
            self._apps.clear()
            self.deletions.clear()
            self._save()
        self._requests.clear()
        self.login_page = self.html_auth_pages = False
        self.deploy_error = self.update_error = self.delete_error = None
        self.delay = self.response_delay = 0.0

    def credentials_match(self, user: str, password: str) -> bool:
        """Tell whether a basic-auth login is this server's, in constant time.

        Args:
            user: the user name sent.
            password: the password sent.
        """
        user_ok = hmac.compare_digest(user.encode(), self._user.encode())
        password_ok = hmac.compare_digest(password.encode(), self._password.encode())
        return user_ok and password_ok

    # -- the server's Applications class ---------------------------------------------------

    def get_applications(self, app_id: str | None) -> dict[str, Any]:
        """The answer to ``GET``: the list of ids, or one application's adaptors.

        Args:
            app_id: the application, or None for the list.

        Raises:
            SubmitterError: 404, no such application.
        """
        with self._lock:
            if app_id is None:
                return {"applications": list(self._apps), "message": "MiCADO Applications"}
            record = self._apps.get(app_id)
            if record is None:
                raise SubmitterError(404, f"Application {app_id} does not exist")
            return {"adaptors": dict(record["adaptors"]), "message": "MiCADO Application Info"}

    def _validate(self, adt: ADT, url: str | None, name: str) -> dict[str, Any]:
        try:
            if url:
                return load_adt_url(url, self.url_timeout)
            if isinstance(adt, Mapping):
                return check_tosca(copy.deepcopy(adt), name)
            if adt is None:  # never: _require_adt refuses a request without url or adt
                raise ValueError("No ADT data was included in the request")
            return load_adt_bytes(adt.read(), adt.filename or "")
        except Exception as error:  # the server reports every validation failure this way
            raise SubmitterError(500, f"Error while validating: {error}") from None

    def _simulate_work(self) -> None:
        if self.delay > 0:
            time.sleep(self.delay)

    def deploy(self, app_id: str | None, adt: ADT, url: str | None, params: Any, dryrun: bool) -> dict[str, Any]:
        """Validate and register an application (``POST``), one at a time.

        Args:
            app_id: the id asked for, or None for a generated one.
            adt: the ADT mapping or upload (ignored when ``url`` is given).
            url: where to fetch the ADT from.
            params: the TOSCA inputs, a mapping or JSON text.
            dryrun: whether the adaptors deploy nothing (the application is registered all the same).

        Raises:
            SubmitterError: the server's refusals (id taken, one application only,
                no ADT, bad params, validation, :attr:`deploy_error`).
        """
        app_id = app_id or generate_app_id()
        with self._op_lock:
            with self._lock:
                if app_id in self._apps:
                    raise SubmitterError(400, "The application ID already exists")
                if self._apps:
                    raise SubmitterError(400, "Multiple applications are not supported")
            _require_adt(adt, url)
            inputs = literal_params(params)
            document = self._validate(adt, url, f"{app_id}.yaml")
            self._simulate_work()
            if self.deploy_error:
                raise SubmitterError(500, f"Error while deploying: {self.deploy_error}")
            # Like the real engine, a dry run is registered too (its adaptors deploy
            # nothing); it counts as the master's one application until deleted.
            record = {
                "adt": document,
                "params": inputs,
                "url": url or None,
                "filename": _filename(adt, url),
                "adaptors": dict(self.adaptors),
                "dryrun": dryrun,
            }
            with self._lock:
                self._apps[app_id] = record
                self._save()
        return {"message": f"Application {app_id} successfully deployed"}

    def update(self, app_id: str, adt: ADT, url: str | None, params: Any) -> dict[str, Any]:
        """Validate and replace an application's ADT and inputs (``PUT``).

        Args:
            app_id: the application.
            adt: the ADT mapping or upload (ignored when ``url`` is given).
            url: where to fetch the ADT from.
            params: the TOSCA inputs, a mapping or JSON text.

        Raises:
            SubmitterError: the server's refusals (no such application, no ADT, bad
                params, validation, :attr:`update_error`).
        """
        with self._op_lock:
            with self._lock:
                if app_id not in self._apps:
                    raise SubmitterError(404, f"Application with ID {app_id} does not exist")
            _require_adt(adt, url)
            inputs = literal_params(params)
            document = self._validate(adt, url, f"{app_id}.yaml")
            self._simulate_work()
            if self.update_error:
                raise SubmitterError(500, f"Error while updating: {self.update_error}")
            with self._lock:
                record = self._apps.get(app_id)
                if record is not None:
                    record.update(
                        adt=document,
                        params=inputs,
                        url=url or None,
                        filename=_filename(adt, url),
                        adaptors={name: "Updated" for name in record["adaptors"]},
                    )
                    self._save()
        return {"message": f"Application {app_id} successfully updated"}

    def delete(self, app_id: str, force: bool) -> dict[str, Any]:
        """Remove an application (``DELETE``); ``force`` removes it despite :attr:`delete_error`.

        Args:
            app_id: the application.
            force: the server's ``force`` form field, parsed.

        Raises:
            SubmitterError: 404, no such application; 500, :attr:`delete_error` without ``force``.
        """
        with self._op_lock:
            with self._lock:
                if app_id not in self._apps:
                    raise SubmitterError(404, f"Application with ID {app_id} does not exist")
            self._simulate_work()
            with self._lock:
                self.deletions.append((app_id, force))
            if self.delete_error and not force:
                raise SubmitterError(500, f"Error while deleting: {self.delete_error}")
            with self._lock:
                self._apps.pop(app_id, None)
                self._save()
        return {"message": f"Application {app_id} successfully deleted"}
