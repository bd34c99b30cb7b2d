"""An entry that logs in to Keystone v3: a password, an application credential, or OpenID Connect.

The OpenStack launcher reads its entry of the credentials file (``type: nova``) with
:func:`read_keystone_entry`. Exactly one authentication method must be filled in::

    - type: nova
      auth_data:
        username: alice            # v3 Password
        password: "..."
        domain_name: Default       # optional (user_domain_name is accepted too)
        project_id: 0123abcd       # optional
        application_credential_id:       # or v3 ApplicationCredential
        application_credential_secret:

or, for OpenID Connect login (Keystone federation), the identity provider and an
``access_token``: a literal one, or the alias of the ``openid`` block of
``pre_authentication`` (see :mod:`micado.config.credentials.openid`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micado.config.credentials.checks import Method, check_unknown_keys, choose_method, filled, pair, text
from micado.config.credentials.openid import OpenIDRefresh, openid_block
from micado.exceptions import CredentialsError

__all__ = ["PasswordAuth", "ApplicationCredentialAuth", "OIDCAuth", "KeystoneAuth", "METHODS", "OPTIONAL_KEYS",
           "read_keystone_entry"]

logger = logging.getLogger("micado.config.credentials")


@dataclass(frozen=True)
class PasswordAuth:
    """Keystone v3 password authentication.

    Attributes:
        username: the OpenStack user name.
        password: the user's password (never shown in ``repr``).
        user_domain_name: the user's domain (``Default`` on most clouds), if given.
        project_id: the project to scope to, if the file names one.
    """

    username: str
    password: str = field(repr=False)
    user_domain_name: str | None = None
    project_id: str | None = None


@dataclass(frozen=True)
class ApplicationCredentialAuth:
    """Keystone v3 application-credential authentication.

    Attributes:
        application_credential_id: the id of the application credential.
        application_credential_secret: its secret (never shown in ``repr``).
    """

    application_credential_id: str
    application_credential_secret: str = field(repr=False)


@dataclass(frozen=True)
class OIDCAuth:
    """Keystone federated login with an OpenID Connect access token (protocol ``openid``).

    Exactly one of ``access_token`` and ``refresh`` is set: a literal access token
    from the file, or the ``openid`` block to exchange a refresh token for a fresh
    access token at each login. The access token obtained is kept in memory only.

    Attributes:
        identity_provider: the identity provider's id in Keystone (``egi.eu`` on EGI clouds).
        access_token: a literal access token (never shown in ``repr``).
        refresh: the provider and refresh token, when the file refers to the ``openid`` block.
        project_id: the project to scope the token to, if the file names one.
        path: the credentials file, for error messages.
        key: where the ``nova`` entry's ``auth_data`` is in the file, for error messages.
    """

    identity_provider: str
    access_token: str | None = field(default=None, repr=False)
    refresh: OpenIDRefresh | None = None
    project_id: str | None = None
    path: Path | None = None
    key: str = "resource[0].auth_data"


#: What :func:`read_keystone_entry` returns.
KeystoneAuth = PasswordAuth | ApplicationCredentialAuth | OIDCAuth

#: The methods of a Keystone entry.
METHODS = (
    Method("password", ("username", "password")),
    Method("application credential", ("application_credential_id", "application_credential_secret")),
    Method("OpenID Connect", ("identity_provider", "access_token")),
)
#: Its optional keys: key in the file -> field of the credentials.
OPTIONAL_KEYS = {
    "domain_name": "user_domain_name",
    "user_domain_name": "user_domain_name",
    "project_id": "project_id",
}


def read_keystone_entry(auth_data: Mapping[str, Any], file: Path, where: str, document: Any,
                        placeholders: Collection[str] = ()) -> KeystoneAuth:
    """The checked credentials of an entry that logs in to Keystone.

    Args:
        auth_data: the entry's ``auth_data``.
        file: the credentials file, for messages.
        where: the key path of ``auth_data`` (``resource[0].auth_data``).
        document: the whole file (OpenID Connect refers to its ``pre_authentication``).
        placeholders: the placeholders of the entry's template, refused as values.

    Raises:
        CredentialsError: see :func:`micado.config.credentials.load_credentials`.
    """
    valid = {key for m in METHODS for key in m.keys} | set(OPTIONAL_KEYS)
    check_unknown_keys(auth_data, valid, file, where)
    method = choose_method(auth_data, METHODS, file, where)
    if method.keys[0] == "identity_provider":
        return _oidc(auth_data, document, file, where, placeholders)
    first, second = pair(auth_data, method, file, where, placeholders)
    optional = _optional_values(auth_data, file, where)
    if method.keys[0] == "username":
        return PasswordAuth(username=first.strip(), password=second, **optional)
    if optional:
        logger.warning(
            "%s: %s: %s not used with an application credential (its scope is fixed by Keystone)",
            file, where, ", ".join(sorted(optional)),
        )
    return ApplicationCredentialAuth(
        application_credential_id=first.strip(), application_credential_secret=second
    )


def _optional_values(auth_data: Mapping[str, Any], file: Path, where: str) -> dict[str, str]:
    optional: dict[str, str] = {}
    for key, target in OPTIONAL_KEYS.items():
        if not filled(auth_data.get(key)):
            continue  # blank optional keys are normal: MiCADO's template lists them empty
        value = text(auth_data, key, file, where).strip()
        if target in optional and optional[target] != value:
            raise CredentialsError(
                f"{file}: {where}.domain_name and {where}.user_domain_name disagree; give only one",
                path=file,
                key=f"{where}.{key}",
            )
        optional[target] = value
    return optional


def _oidc(auth_data: Mapping[str, Any], document: Any, file: Path, where: str,
          placeholders: Collection[str]) -> OIDCAuth:
    """The :class:`OIDCAuth` of an entry that uses OpenID Connect: a literal token or the ``openid`` block."""
    identity_provider = text(auth_data, "identity_provider", file, where).strip()
    if identity_provider in placeholders or "/" in identity_provider:
        raise CredentialsError(
            f"{file}: {where}.identity_provider must be the id of the identity provider in Keystone "
            "(e.g. egi.eu), without slashes",
            path=file, key=f"{where}.identity_provider",
        )
    project_id = _oidc_project_id(auth_data, file, where)
    token = auth_data["access_token"]
    if isinstance(token, dict):
        refresh = openid_block(token, document, file, where, placeholders)
        return OIDCAuth(identity_provider, refresh=refresh, project_id=project_id, path=file, key=where)
    access_token = text(auth_data, "access_token", file, where).strip()
    if any(c.isspace() for c in access_token):
        raise CredentialsError(
            f"{file}: {where}.access_token contains white space; an access token has none "
            "(or give the alias *OPENID of the pre_authentication openid block)",
            path=file, key=f"{where}.access_token",
        )
    return OIDCAuth(identity_provider, access_token=access_token, project_id=project_id, path=file, key=where)


def _oidc_project_id(auth_data: Mapping[str, Any], file: Path, where: str) -> str | None:
    ignored = sorted(k for k in OPTIONAL_KEYS if k != "project_id" and filled(auth_data.get(k)))
    if ignored:
        logger.warning("%s: %s: %s not used with OpenID Connect (the identity provider says who the user is)",
                       file, where, ", ".join(ignored))
    if not filled(auth_data.get("project_id")):
        return None
    return text(auth_data, "project_id", file, where).strip()
