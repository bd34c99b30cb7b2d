"""Applications running on a MiCADO master: :class:`Applications` and :class:`Application`."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from micado.api.encoding import AdtSource, FileSource
from micado.exceptions import ApplicationNotFound, MicadoException, ProtocolError
from micado.models.base import Collection, Model

__all__ = ["Application", "Applications"]

_DEPLOYED = re.compile(r"Application (\S+) successfully deployed")


class Application(Model):
    """One application (a deployed ADT) on a MiCADO master.

    ``adaptors`` is read from the server the first time it is used and kept until
    :meth:`reload`, so listing applications costs one request in all.

    Applications are made by :class:`Applications` (``client.applications.get(...)``,
    ``.list()``, ``.create(...)``), rarely constructed directly.

    Args:
        attrs: what is known of the application: at least ``{"id": ...}``; an
            ``"adaptors"`` mapping when its details were read.
        client: the low-level :class:`~micado.api.client.SubmitterClient` of its master.
        collection: the :class:`Applications` it belongs to (update and delete go through it).
    """

    collection: Applications  # what made it: Applications.prepare_model passes itself

    @property
    def adaptors(self) -> dict[str, str]:
        """The status reported by each MiCADO adaptor, e.g. ``{"KubernetesAdaptor": "Executed"}``.

        Adaptor names differ between masters; the dict holds what this one reports.
        """
        if self.attrs.get("adaptors") is None:
            self.reload()
        return dict(self.attrs["adaptors"])

    @property
    def info(self) -> dict[str, Any]:
        """The server's answer about this application, e.g. ``{"adaptors": {...}, "message": "..."}``.

        The name and value the official micado-client 0.12 gives (its ``Application.info``);
        read from the server the first time it is used, like :attr:`adaptors`. A copy:
        changing it changes nothing.
        """
        if self.attrs.get("adaptors") is None:
            self.reload()
        details = {name: value for name, value in self.attrs.items() if name != "id"}
        details["adaptors"] = dict(details["adaptors"])
        return details

    def reload(self) -> None:
        """Read the application's details from the server.

        Raises:
            ApplicationNotFound: the application no longer exists.
        """
        details = self.client.inspect_application(self.id)
        adaptors = details.get("adaptors")
        if not isinstance(adaptors, Mapping):
            raise ProtocolError(
                f"answer for application {self.id!r} has no 'adaptors' mapping: {details!r}",
                url=self.client.url("applications", self.id),
                method="GET",
            )
        self.attrs = {"id": self.id, **details, "adaptors": dict(adaptors)}

    def update(
        self,
        adt: AdtSource = None,
        url: str | None = None,
        file: FileSource = None,
        params: Mapping[str, Any] | None = None,
    ) -> Application:
        """Replace this application's ADT; see :meth:`Applications.update`.

        Returns:
            this application; its details are read again on next use.
        """
        self.collection.update(self.id, adt=adt, url=url, file=file, params=params)
        self.attrs = {"id": self.id}  # the adaptors' statuses changed with the update
        return self

    def delete(self, force: bool = False) -> None:
        """Remove this application; see :meth:`Applications.delete`."""
        self.collection.delete(self.id, force=force)

    def __repr__(self) -> str:
        adaptors = self.attrs.get("adaptors")
        if adaptors is None:
            return f"<Application {self.id!r}>"
        states = ", ".join(f"{name}: {state}" for name, state in adaptors.items())
        return f"<Application {self.id!r} ({states})>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(state))}</td></tr>"
            for name, state in (self.attrs.get("adaptors") or {}).items()
        )
        table = f"<table><tr><th>adaptor</th><th>status</th></tr>{rows}</table>" if rows else ""
        return f"<b>Application</b> <code>{html.escape(self.id)}</code>{table}"


class Applications(Collection[Application]):
    """The applications of one master: ``client.applications``.

    MiCADO runs one application per master; the server refuses a second one.
    """

    model = Application

    def __repr__(self) -> str:
        return f"<Applications at {self.client.base_url}>"

    def _repr_html_(self) -> str:
        """The applications as a table, for notebooks (one request; server text escaped)."""
        where = f"<b>Applications</b> at <code>{html.escape(self.client.base_url)}</code>"
        try:
            ids = self.client.list_applications()
        except MicadoException as error:
            return f"{where}: <i>{html.escape(f'{type(error).__name__}: {error}')}</i>"
        rows = "".join(f"<tr><td>{html.escape(str(app_id))}</td></tr>" for app_id in ids)
        return f"{where}<table><tr><th>id</th></tr>{rows}</table>" if ids else f"{where}: none"

    def list(self) -> list[Application]:
        """All applications on the master, in one request; details are read on first use.

        Returns:
            one :class:`Application` per id the server lists.
        """
        return [self.prepare_model({"id": app_id}) for app_id in self.client.list_applications()]

    def get(self, app_id: str) -> Application:
        """One application, with its details read.

        Raises:
            InvalidArgument: ``app_id`` is empty or contains ``/`` or whitespace.
            ApplicationNotFound: no application with that id.
        """
        application = self.prepare_model({"id": app_id})
        try:
            application.reload()
        except ApplicationNotFound as error:
            raise self._with_choices(error) from error
        return application

    def create(
        self,
        app_id: str | None = None,
        adt: AdtSource = None,
        url: str | None = None,
        file: FileSource = None,
        params: Mapping[str, Any] | None = None,
        dryrun: bool = False,
    ) -> Application:
        """Validate an ADT and deploy it as a new application.

        Give exactly one of ``adt``, ``url`` or ``file``.

        Args:
            app_id: the id to use; the server generates one when ``None``.
            adt: the ADT as a mapping, or as YAML text.
            url: an http(s) URL the *server* fetches the ADT from.
            file: a path or binary file object: a YAML ADT or a CSAR zip.
            params: values for the ADT's TOSCA inputs.
            dryrun: let the adaptors validate and translate but deploy nothing. The
                TOSCA Submitter still registers the id (it then counts as the
                master's one application until deleted).

        Returns:
            the new :class:`Application` (its details are read on first use).

        Raises:
            InvalidArgument: the arguments are wrong, or a YAML ``file`` does not
                parse (``file:line:column: ...``), or the ADT still holds a demo's
                placeholder values (``ADD_YOUR_ID_HERE``..., named by key path); nothing
                was sent.
            BadRequest: the id exists, or the master already runs an application.
            ServerError: the ADT did not validate (e.g. invalid YAML) or deploy.
        """
        answer = self.client.create_application(
            app_id, adt=adt, url=url, file=file, params=params, dryrun=dryrun
        )
        if app_id is None:
            match = _DEPLOYED.search(str(answer.get("message", "")))
            if match is None:
                raise ProtocolError(
                    f"the server did not say which id it gave the application: {answer!r}",
                    method="POST",
                    url=self.client.url("applications"),
                )
            app_id = match.group(1)
        return self.prepare_model({"id": app_id})

    def update(
        self,
        app_id: str,
        adt: AdtSource = None,
        url: str | None = None,
        file: FileSource = None,
        params: Mapping[str, Any] | None = None,
    ) -> Application:
        """Replace an application's ADT (exactly one of ``adt``, ``url``, ``file``).

        Returns:
            the updated :class:`Application` (details read on first use).

        Raises:
            InvalidArgument: the arguments are wrong, or a YAML ``file`` does not
                parse (``file:line:column: ...``), or the ADT still holds a demo's
                placeholder values (``ADD_YOUR_ID_HERE``..., named by key path); nothing
                was sent.
            ApplicationNotFound: no application with that id.
            ServerError: the new ADT did not validate or deploy; the old one stays.
        """
        try:
            self.client.update_application(app_id, adt=adt, url=url, file=file, params=params)
        except ApplicationNotFound as error:
            raise self._with_choices(error) from error
        return self.prepare_model({"id": app_id})

    def delete(self, app_id: str, force: bool = False) -> None:
        """Remove an application and what it deployed.

        Args:
            app_id: the application's id.
            force: remove it even if some adaptor fails to undeploy.

        Raises:
            ApplicationNotFound: no application with that id.
        """
        try:
            self.client.delete_application(app_id, force=force)
        except ApplicationNotFound as error:
            raise self._with_choices(error) from error

    def _with_choices(self, error: ApplicationNotFound) -> ApplicationNotFound:
        """``error`` with the ids that do exist added to its message (one more request)."""
        try:
            ids = self.client.list_applications()
        except MicadoException:
            return error  # the original error is what matters
        existing = ", ".join(ids) if ids else "none"
        return ApplicationNotFound(
            f"{error.explanation}; applications on this master: {existing}",
            status_code=error.status_code,
            method=error.method,
            url=error.url,
        )
