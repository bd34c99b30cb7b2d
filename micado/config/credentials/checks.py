"""The checks every reader of a credentials-file entry shares: which method is filled in, text, placeholders.

An entry's ``auth_data`` offers one or more authentication :class:`Method` (each a pair
of keys that must both be filled in). As in MiCADO's own template, a key left blank
(``key:`` with no value) counts as not given. Every problem is a
:class:`~micado.exceptions.CredentialsError` naming the file and the key
(``resource[0].auth_data.password``); a value is never quoted in a message, and for the
keys in :data:`SECRET_KEYS` not even its type is shown.

The readers of the built-in entries (:mod:`~micado.config.credentials.keystone`,
:mod:`~micado.config.credentials.access_key`, :mod:`~micado.config.credentials.openid`)
use these, and so can a launcher of another package that reads an entry of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micado.exceptions import CredentialsError

__all__ = ["Method", "SECRET_KEYS", "filled", "text", "choose_method", "check_unknown_keys", "pair"]

#: Keys whose values are secrets: a message about one does not even show its type.
SECRET_KEYS = frozenset(
    {"password", "application_credential_secret", "access_token", "secretkey", "client_secret", "refresh_token"}
)


@dataclass(frozen=True)
class Method:
    """One way to authenticate: a pair of keys that must both be filled in.

    Attributes:
        name: the method, for messages (``"application credential"``).
        keys: its two keys in ``auth_data``.
        supported: ``False`` for a method that is recognised but refused.
    """

    name: str
    keys: tuple[str, str]
    supported: bool = True


def filled(value: Any) -> bool:
    """Whether a value counts as given: not blank; a mapping (a YAML anchor) when any of its values is."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict):
        return any(filled(v) for v in value.values())
    return True


def text(auth_data: Mapping[str, Any], key: str, file: Path, where: str, *,
         secret_keys: Collection[str] = SECRET_KEYS) -> str:
    """The value of ``key``, which must be text.

    Args:
        auth_data: the mapping that holds ``key``.
        key: the key.
        file: the credentials file, for messages.
        where: the key path of ``auth_data`` (``resource[0].auth_data``).
        secret_keys: keys whose value's type is not shown either.

    Raises:
        CredentialsError: the value is not text (a number says to quote it).
    """
    value = auth_data[key]
    if not isinstance(value, str):
        hint = "; put it in quotes" if isinstance(value, (int, float, bool)) else ""
        shown = "" if key in secret_keys else f" (got {type(value).__name__})"
        raise CredentialsError(
            f"{file}: {where}.{key} must be text{shown}{hint}", path=file, key=f"{where}.{key}"
        )
    return value


def choose_method(auth_data: Mapping[str, Any], methods: tuple[Method, ...], file: Path, where: str) -> Method:
    """The one method filled in.

    Raises:
        CredentialsError: several methods or none are filled in, the one filled in is not
            supported, or it has half a pair (a key empty or missing).
    """
    usable = " or ".join(" + ".join(m.keys) for m in methods if m.supported)
    given = [m for m in methods if any(filled(auth_data.get(k)) for k in m.keys)]
    if len(given) > 1:
        names = " and ".join(f"{m.name} ({' + '.join(m.keys)})" for m in given)
        raise CredentialsError(
            f"{file}: {where} fills in more than one authentication method: {names}; "
            "keep exactly one and leave the other keys blank or remove them",
            path=file,
            key=where,
        )
    if not given:
        known = {key for m in methods for key in m.keys}
        empty = [k for k in sorted(known) if isinstance(auth_data.get(k), str)]
        if empty:
            raise CredentialsError(
                f"{file}: {where} has empty values for {', '.join(empty)}; fill in {usable}",
                path=file,
                key=f"{where}.{empty[0]}",
            )
        raise CredentialsError(
            f"{file}: {where} fills in no authentication method; give {usable}",
            path=file,
            key=where,
        )
    method = given[0]
    if not method.supported:
        raise CredentialsError(
            f"{file}: {where} uses {method.name} authentication, which micado-client does not "
            f"support yet; give {usable} instead",
            path=file,
            key=f"{where}.{method.keys[0]}",
        )
    _check_both_given(auth_data, method, file, where)
    return method


def _check_both_given(auth_data: Mapping[str, Any], method: Method, file: Path, where: str) -> None:
    for key in method.keys:
        other = next(k for k in method.keys if k != key)
        value = auth_data.get(key)
        if isinstance(value, str) and not value.strip():
            raise CredentialsError(
                f"{file}: {where}.{key} is empty; the {method.name} method needs a value for "
                f"both {' and '.join(method.keys)}",
                path=file,
                key=f"{where}.{key}",
            )
        if value is None:
            raise CredentialsError(
                f"{file}: {where}.{key} is missing: {other} is given, but the {method.name} "
                f"method needs both {' and '.join(method.keys)}",
                path=file,
                key=f"{where}.{key}",
            )


def check_unknown_keys(auth_data: Mapping[str, Any], valid: set[str], file: Path, where: str) -> None:
    """Refuse a filled-in key that is not one of ``valid`` (blank unknown keys are let be).

    Raises:
        CredentialsError: naming the unknown keys and listing the valid ones.
    """
    unknown = sorted(str(k) for k, v in auth_data.items() if k not in valid and filled(v))
    if unknown:
        raise CredentialsError(
            f"{file}: {where} has unknown key(s) {', '.join(unknown)}; valid keys: "
            f"{', '.join(sorted(valid))}",
            path=file,
            key=f"{where}.{unknown[0]}",
        )


def pair(auth_data: Mapping[str, Any], method: Method, file: Path, where: str,
         placeholders: Collection[str]) -> tuple[str, str]:
    """The two values of the chosen method, as text that is not a template placeholder.

    Args:
        auth_data: the entry's ``auth_data``.
        method: the method :func:`choose_method` chose.
        file: the credentials file, for messages.
        where: the key path of ``auth_data``.
        placeholders: the placeholders of the entry's template (``YOUR_PASSWORD``): a copy
            of the template with them left in would fail later, at the cloud.

    Raises:
        CredentialsError: a value is not text, or is a placeholder.
    """
    first, second = (text(auth_data, key, file, where) for key in method.keys)
    for key, value in zip(method.keys, (first, second), strict=True):
        if value.strip() in placeholders:
            raise CredentialsError(
                f"{file}: {where}.{key} still holds the template's placeholder; "
                "put your own value there",
                path=file,
                key=f"{where}.{key}",
            )
    return first, second
