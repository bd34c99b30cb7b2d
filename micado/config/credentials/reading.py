"""Reading the credentials file: its YAML, bounded, and the one ``resource`` entry of a type.

A file larger than 256 KiB, nested deeper than 64 levels, or whose YAML aliases expand
to more than 100 nodes is refused before it is used (see :mod:`micado.config.bounded_yaml`;
MiCADO's one alias, ``access_token: *OPENID``, is far below that). Every problem is a
:class:`~micado.exceptions.CredentialsError` naming the file (and the key); the errors
of a missing file or entry show the template of the entry wanted, which the caller gives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from micado.config.bounded_yaml import MAX_YAML_BYTES, Refused, YamlSyntaxError, read_limited, safe_load
from micado.exceptions import CredentialsError

__all__ = ["read_document", "find_entry", "describe_top", "warn_if_readable_by_others"]

logger = logging.getLogger("micado.config.credentials")


def read_document(file: Path, template: str, vault_password: str | None = None) -> Any:
    """The credentials file's YAML document (decrypted first if ``ansible-vault`` encrypted it).

    Args:
        file: the credentials file.
        template: what the file should hold, shown when it does not exist.
        vault_password: the password of a vaulted file (see :mod:`~micado.config.credentials.vault`).

    Raises:
        CredentialsError: the file does not exist, cannot be read, is not UTF-8, is not
            YAML or is refused by a limit; or it is vaulted and the password is missing or wrong.
    """
    from micado.config.credentials.vault import decrypt

    try:
        return safe_load(decrypt(read_limited(file, MAX_YAML_BYTES), file, vault_password, "cloud credentials file"))
    except FileNotFoundError:
        raise CredentialsError(
            f"the cloud credentials file {file} does not exist. Create it (mode 0600) "
            f"with content like this:\n\n{template}",
            path=file,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise CredentialsError(
            f"cannot read the cloud credentials file {file}: {reason}", path=file
        ) from None
    except YamlSyntaxError as exc:
        verdict = "is refused" if isinstance(exc, Refused) else "is not valid YAML"
        where = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
        raise CredentialsError(
            f"the cloud credentials file {file} {verdict}{where}: {exc.problem}", path=file
        ) from None


def find_entry(document: Any, file: Path, kind: str, template: str) -> tuple[Mapping[str, Any], str]:
    """The ``auth_data`` of the one ``resource`` entry of type ``kind``, and its key path.

    Args:
        document: the file's YAML document.
        file: the file, for messages.
        kind: the entry's ``type``.
        template: the entry's template, shown when the file has no such entry.

    Returns:
        ``(auth_data, "resource[<index>].auth_data")``.

    Raises:
        CredentialsError: no ``resource`` list, an entry without a ``type``, no entry or
            several entries of ``kind``, or its ``auth_data`` missing or not a mapping.
    """
    resources = document.get("resource") if isinstance(document, dict) else None
    if not isinstance(resources, list):
        found = "the file is empty" if document is None else describe_top(document)
        raise CredentialsError(
            f"{file}: no 'resource' list ({found}); the file must look like this:\n\n{template}",
            path=file,
            key="resource",
        )
    index = _index_of_entry(resources, file, kind, template)
    where = f"resource[{index}].auth_data"
    auth_data = resources[index].get("auth_data")
    if not isinstance(auth_data, dict):
        problem = "is missing" if auth_data is None else "must be a mapping of keys to values"
        raise CredentialsError(f"{file}: {where} {problem}", path=file, key=where)
    return auth_data, where


def _index_of_entry(resources: list[Any], file: Path, kind: str, template: str) -> int:
    matches: list[int] = []
    types: list[str] = []
    for index, entry in enumerate(resources):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise CredentialsError(
                f"{file}: resource[{index}] must be a mapping with a 'type' (e.g. type: {kind}) "
                "and an 'auth_data' mapping",
                path=file,
                key=f"resource[{index}].type",
            )
        types.append(entry["type"])
        if entry["type"] == kind:
            matches.append(index)
    if not matches:
        present = ", ".join(sorted(set(types))) if types else "none, the list is empty"
        raise CredentialsError(
            f"{file}: no resource entry of type {kind!r} (types present: {present}); add one:\n\n{template}",
            path=file,
            key="resource",
        )
    if len(matches) > 1:
        listed = ", ".join(f"resource[{i}]" for i in matches)
        raise CredentialsError(
            f"{file}: {len(matches)} resource entries of type {kind!r} ({listed}); keep only one",
            path=file,
            key=f"resource[{matches[1]}]",
        )
    return matches[0]


def describe_top(document: Any) -> str:
    """The top level of a document that is not the expected mapping, for a message (never its values)."""
    if isinstance(document, dict):
        keys = ", ".join(str(k) for k in document) or "none"
        return f"top-level keys: {keys}"
    return f"the top level is a {type(document).__name__}, not a mapping"


def warn_if_readable_by_others(file: Path) -> None:
    """Log a warning when a file that holds cloud secrets can be read by others than its owner."""
    try:
        if file.stat().st_mode & 0o077:
            logger.warning("%s holds cloud secrets but others can read it; run: chmod 600 %s", file, file)
    except OSError:  # it was just read; a race here changes nothing about the credentials
        pass
