"""Request validation and body encoding for the applications resource, before anything is sent."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from micado import checks
from micado.demos import refuse_unfilled
from micado.exceptions import InvalidArgument

AdtSource = Mapping[str, Any] | str | None
FileSource = str | os.PathLike[str] | IO[bytes] | None

#: Bytes an ADT given as ``file=`` may have. Real ADTs are kilobytes, CSARs a few
#: megabytes; the body is built in memory, so a larger file (or an endless one such
#: as ``/dev/zero``) is refused before it is read whole.
MAX_UPLOAD = 64 * 1024 * 1024
#: Bytes read at a time from an ADT file.
_READ_CHUNK = 1 << 20


def validate_app_id(app_id: object) -> str:
    """Check an application id and return it URL-quoted for a path segment.

    Raises:
        InvalidArgument: the id is not a non-empty string of valid text without ``/`` or whitespace.
    """
    if not isinstance(app_id, str) or not app_id:
        raise InvalidArgument(f"app_id must be a non-empty string, not {app_id!r}")
    checks.sendable("app_id", app_id)
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
        InvalidArgument: not exactly one source, a source/params of the wrong type,
            a mapping holding values JSON cannot carry (dates, sets, NaN...) or text
            that is not valid Unicode, or a file that is missing, a directory,
            unreadable or larger than :data:`MAX_UPLOAD` bytes, or a YAML file
            (``.yaml``/``.yml``) that does not parse (the message names file, line and column),
            or an ADT that still holds a demo's placeholder values (:mod:`micado.demos`;
            the message names the fields).
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
            refuse_unfilled(body["adt"], "adt")
        if params is not None:
            _json_text(body["params"], "params", _PARAMS_HINT)
        return {"json_body": body}
    if isinstance(adt, str):
        if not adt.strip():
            raise InvalidArgument("adt is an empty string; give YAML text, a mapping, url= or file=")
        part: tuple[str, IO[bytes] | bytes] = ("adt.yaml", checks.sendable("adt", adt).encode("utf-8"))
        _refuse_unfilled_yaml(adt, "adt")
    elif adt is not None:
        raise InvalidArgument(f"adt must be a mapping or YAML text, not {type(adt).__name__}")
    else:
        part = _file_part(file)
        _check_yaml_part(part, file)
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
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:  # a date from YAML, a set, NaN, a cycle
        raise InvalidArgument(f"{name} cannot be sent as JSON ({error}); {hint}") from None
    if "\\ud" in text:  # an unpaired surrogate would travel as an escape the server cannot decode
        checks.sendable(name, json.dumps(value, ensure_ascii=False))
    return text


def _file_part(file: object) -> tuple[str, bytes]:
    """The multipart file part ``(filename, content)`` of ``file=``, read in bounded chunks."""
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        shown = f"file={str(path)!r}"
        try:
            with path.open("rb") as opened:
                info = os.fstat(opened.fileno())
                if stat.S_ISREG(info.st_mode) and info.st_size > MAX_UPLOAD:
                    raise InvalidArgument(
                        f"{shown} has {info.st_size} bytes, over the limit for an ADT ({MAX_UPLOAD >> 20} MiB)"
                    )
                content = _read_bounded(opened.read, shown)
        except IsADirectoryError:
            raise InvalidArgument(f"{shown} is a directory, not an ADT file") from None
        except FileNotFoundError:
            raise InvalidArgument(f"{shown}: no such ADT file") from None
        except OSError as error:
            raise InvalidArgument(f"{shown} cannot be read: {error.strerror or error}") from None
        return (_part_name(path.name), content)
    read = getattr(file, "read", None)
    if callable(read):
        content = _read_bounded(read, "file")
        name = getattr(file, "name", None)  # an int for files opened from a descriptor
        if not isinstance(name, str) or not Path(name).name:
            # The server picks the parser by extension; a CSAR is a zip archive.
            return ("adt.csar" if content.startswith(b"PK\x03\x04") else "adt.yaml", content)
        return (_part_name(Path(name).name), content)
    raise InvalidArgument(f"file must be a path or a file object, not {type(file).__name__}")


#: File name endings the TOSCA Submitter parses as YAML.
_YAML_SUFFIXES = (".yaml", ".yml")


def _check_yaml_part(part: tuple[str, bytes], file: object) -> None:
    """Refuse a YAML ADT file that does not parse, naming the file, line and column.

    The server would answer after the upload with a 500 over several lines; a CSAR (or
    any file the server does not read as YAML) is left to the server, and so is a document
    that is not UTF-8 or is over the local reader's limits: it may well be a valid ADT.

    Raises:
        InvalidArgument: ``file:line:column: the ADT is not valid YAML: <problem>``.
    """
    from micado.config.bounded_yaml import Refused, YamlSyntaxError, safe_load

    name, content = part
    if not name.lower().endswith(_YAML_SUFFIXES):
        return
    shown = str(file) if isinstance(file, (str, os.PathLike)) else getattr(file, "name", None) or "file"
    try:
        document = safe_load(content.decode("utf-8"))
    except (UnicodeDecodeError, Refused):  # UTF-16, or over the limits: the server's to judge
        return
    except YamlSyntaxError as error:
        where = f"{shown}:{error.line}:{error.column}" if error.line is not None else shown
        raise InvalidArgument(f"{where}: the ADT is not valid YAML: {error.problem}") from None
    refuse_unfilled(document, shown)


def _refuse_unfilled_yaml(text: str, shown: str) -> None:
    """Refuse YAML text that still holds a demo's placeholders; text that does not parse is the server's to judge."""
    from micado.config.bounded_yaml import Refused, YamlSyntaxError, safe_load

    try:
        document = safe_load(text)
    except (Refused, YamlSyntaxError):
        return
    refuse_unfilled(document, shown)


def _read_bounded(read: Any, shown: str) -> bytes:
    """Everything ``read(size)`` gives, in chunks, refusing more than :data:`MAX_UPLOAD` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = read(_READ_CHUNK)
        except (OSError, ValueError) as error:  # ValueError: a closed file
            raise InvalidArgument(f"{shown} cannot be read: {error}") from None
        if isinstance(chunk, str):
            chunk = checks.sendable(shown, chunk).encode("utf-8")
        if not isinstance(chunk, bytes):
            raise InvalidArgument(f"{shown}.read() returned {type(chunk).__name__}, not bytes or text")
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_UPLOAD:
            raise InvalidArgument(f"{shown} has more than {MAX_UPLOAD >> 20} MiB, the limit for an ADT")
        chunks.append(chunk)


def _part_name(name: str) -> str:
    """The file name to send: ``name``, or ``adt<suffix>`` when it is not valid text.

    A name read from disk can hold undecodable bytes (as surrogates); the server only
    needs the extension, which picks its parser.
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        suffix = Path(name).suffix
        return "adt" + (suffix if suffix.isascii() else ".yaml")
