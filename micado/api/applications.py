"""The ``applications`` resource of the TOSCA Submitter API (see the "TOSCA Submitter API" page of the docs).

Each method makes exactly one HTTP call and returns the server's JSON answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, Protocol

from micado.api.encoding import AdtSource, FileSource, encode_body, validate_app_id
from micado.exceptions import InvalidArgument, ProtocolError


class _Transport(Protocol):
    """What the mixin uses of :class:`~micado.api.client.SubmitterClient`."""

    timeout: float
    deploy_timeout: float

    def url(self, *segments: str) -> str: ...

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        json_body: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, IO[bytes] | bytes]] | None = None,
    ) -> dict[str, Any]: ...


class ApplicationsMixin:
    """Calls on ``{base}/applications/``; mixed into :class:`~micado.api.client.SubmitterClient`."""

    def list_applications(self: _Transport, *, timeout: float | None = None) -> list[str]:
        """``GET applications/``: the ids of the applications on the master.

        Raises:
            ProtocolError: the answer has no ``applications`` list.
        """
        url = self.url("applications")
        body = self.request("GET", url, timeout=timeout or self.timeout)
        ids = body.get("applications")
        if not isinstance(ids, list):
            raise ProtocolError(f"answer has no 'applications' list: {body!r}", method="GET", url=url)
        return [str(app_id) for app_id in ids]

    def inspect_application(self: _Transport, app_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """``GET applications/<id>/``: the application's details (``adaptors``: adaptor → status).

        Raises:
            ApplicationNotFound: no application with that id.
        """
        url = self.url("applications", validate_app_id(app_id))
        return self.request("GET", url, timeout=timeout or self.timeout)

    def create_application(
        self: _Transport,
        app_id: str | None = None,
        *,
        adt: AdtSource = None,
        url: str | None = None,
        file: FileSource = None,
        params: Mapping[str, Any] | None = None,
        dryrun: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """``POST applications/[<id>/]``: validate and deploy an ADT (the server makes the id if none).

        Raises:
            InvalidArgument: not exactly one of ``adt``/``url``/``file``, or a bad id or value.
            BadRequest: the id exists, or another application is deployed (one per master).
            ServerError: the ADT did not validate or deploy.
        """
        segments = ["applications"] if app_id is None else ["applications", validate_app_id(app_id)]
        body = encode_body(adt=adt, url=url, file=file, params=params, dryrun=dryrun)
        return self.request("POST", self.url(*segments), timeout=timeout or self.deploy_timeout, **body)

    def update_application(
        self: _Transport,
        app_id: str,
        *,
        adt: AdtSource = None,
        url: str | None = None,
        file: FileSource = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """``PUT applications/<id>/``: replace the application's ADT (never sends ``dryrun``).

        Raises:
            InvalidArgument: not exactly one of ``adt``/``url``/``file``, or a bad id or value.
            ApplicationNotFound: no application with that id.
            ServerError: the new ADT did not validate or deploy (the old one stays).
        """
        target = self.url("applications", validate_app_id(app_id))
        body = encode_body(adt=adt, url=url, file=file, params=params, dryrun=None)
        return self.request("PUT", target, timeout=timeout or self.deploy_timeout, **body)

    def delete_application(
        self: _Transport, app_id: str, *, force: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """``DELETE applications/<id>/`` with the form field ``force`` (the only place the server reads it).

        Raises:
            InvalidArgument: a bad id, or ``force`` not a bool.
            ApplicationNotFound: no application with that id.
        """
        if not isinstance(force, bool):
            raise InvalidArgument(f"force must be True or False, not {force!r}")
        target = self.url("applications", validate_app_id(app_id))
        return self.request(
            "DELETE", target, timeout=timeout or self.deploy_timeout, data={"force": "true" if force else "false"}
        )
