"""Request validation and body encoding for the applications resource, before anything is sent."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from micado import checks
from micado.exceptions import InvalidArgument

AdtSource = Mapping[str, Any] | str | None
FileSource = str | os.PathLike | IO[bytes] | None


def validate_app_id(app_id: object) -> str:
    """Check an application id and return it URL-quoted for a path segment.

    Raises:
        InvalidArgument: the id is not a non-empty string without ``/`` or whitespace.
    """
    if not isinstance(app_id, str) or not app_id:
        raise InvalidArgument(f"app_id must be a non-empty string, not {app_id!r}")
    if "/" in app_id or re.search(r"\s", app_id):
        raise InvalidArgument(f"app_id {app_id!r} must not contain '/' or whitespace")
    if app_id in (".", ".."):
        # HTTP libraries resolve these path steps: the request would reach another resource
        # (create(app_id=".") would post to applications/ and get a generated id).
        raise InvalidArgument(f"app_id {app_id!r} is not usable: '.' and '..' are path steps in a URL")
    return quote(app_id, safe="")


def encode_body(
    *,
    adt: AdtSource,
    url: str | None,
    file: FileSource,
    params: Mapping[str, Any] | None,
    dryrun: bool | None,
) -> dict[str, Any]:
    """Build the request body of create/update: exactly one of ``adt``, ``url``, ``file``.

    A mapping ADT and a URL go as JSON (``{"adt": ...}`` / ``{"url": ...}``); YAML text and
    files go as multipart with a file part named ``adt`` that has a filename, as the
    MiCADO demos send them, ``params`` as JSON text and ``dryrun`` as ``"true"``/``"false"``.
    ``dryrun=None`` leaves the field out (update must not send it).

    Returns:
        keyword arguments for :meth:`SubmitterClient.request` (``json_body`` or ``data``/``files``).

    Raises:
        InvalidArgument: not exactly one source, a source/params of the wrong type, or
            a mapping holding values JSON cannot carry (dates, sets, NaN...).
    """
    given = [name for name, value in (("adt", adt), ("url", url), ("file", file)) if value is not None]
    if len(given) != 1:
        raise InvalidArgument(
            f"give exactly one of adt=, url= or file= (got {', '.join(given) if given else 'none'})"
        )
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgument(f"params must be a mapping of TOSCA input names to values, not {type(params).__name__}")
    if dryrun is not None and not isinstance(dryrun, bool):
        raise InvalidArgument(f"dryrun must be True or False, not {dryrun!r}")
    if isinstance(adt, Mapping) or url is not None:
        if url is not None:
            checks.http_url("url", url, "an ADT")
        body: dict[str, Any] = {"adt": dict(adt)} if isinstance(adt, Mapping) else {"url": url}
        if params is not None:
            body["params"] = dict(params)
        if dryrun is not None:
            body["dryrun"] = dryrun
        if isinstance(adt, Mapping):
            _json_text(body["adt"], "adt", "pass the ADT as YAML text or file= instead")
        if params is not None:
            _json_text(body["params"], "params", _PARAMS_HINT)
        return {"json_body": body}
    if isinstance(adt, str):
        if not adt.strip():
            raise InvalidArgument("adt is an empty string; give YAML text, a mapping, url= or file=")
        part: tuple[str, IO[bytes] | bytes] = ("adt.yaml", adt.encode("utf-8"))
    elif adt is not None:
        raise InvalidArgument(f"adt must be a mapping or YAML text, not {type(adt).__name__}")
    else:
        part = _file_part(file)
    data: dict[str, str] = {}
    if params is not None:
        data["params"] = _json_text(dict(params), "params", _PARAMS_HINT)
    if dryrun is not None:
        data["dryrun"] = "true" if dryrun else "false"
    return {"data": data, "files": {"adt": part}}


_PARAMS_HINT = "use strings, numbers, booleans, None, lists and mappings"


def _json_text(value: Any, name: str, hint: str) -> str:
    """``value`` as JSON text, or InvalidArgument naming what cannot be sent (before any request)."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:  # e.g. a date from YAML, a set, NaN
        raise InvalidArgument(f"{name} cannot be sent as JSON ({error}); {hint}") from None


def _file_part(file: object) -> tuple[str, IO[bytes] | bytes]:
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        if not path.is_file():
            raise InvalidArgument(f"file={str(path)!r}: no such ADT file")
        try:
            return (path.name, path.read_bytes())
        except OSError as error:
            raise InvalidArgument(f"file={str(path)!r} cannot be read: {error.strerror or error}") from None
    read = getattr(file, "read", None)
    if callable(read):
        content = read()
        if isinstance(content, str):
            content = content.encode("utf-8")
        if not isinstance(content, bytes):
            raise InvalidArgument(f"file.read() returned {type(content).__name__}, not bytes or text")
        name = getattr(file, "name", None)  # an int for files opened from a descriptor
        if not isinstance(name, str) or not Path(name).name:
            # The server picks the parser by extension; a CSAR is a zip archive.
            return ("adt.csar" if content.startswith(b"PK\x03\x04") else "adt.yaml", content)
        return (Path(name).name, content)
    raise InvalidArgument(f"file must be a path or a file object, not {type(file).__name__}")
