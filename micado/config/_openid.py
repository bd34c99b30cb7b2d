"""The OpenID Connect part of the credentials file: a ``nova`` entry that logs in through federation.

MiCADO's format (ansible-micado's ``sample-credentials-cloud-api.yml``) puts the
provider and the refresh token in a ``pre_authentication`` block of ``type: openid``
and lets the ``nova`` entry refer to it with a YAML alias::

    pre_authentication:
    - type: openid
      auth_data: &OPENID {url: <token endpoint>, refresh_token: ...}
    resource:
    - type: nova
      auth_data: {identity_provider: egi.eu, access_token: *OPENID, project_id: ...}

``url`` is the provider's token endpoint, as MiCADO reads it on the master (its EGI
token script posts the refresh token straight to it). ``access_token`` may instead
hold a literal access token. Everything here is checked
without a request; :mod:`micado.launcher.openstack.openid_token` does the exchange.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from micado.config.credentials import (
    _NOVA_OPTIONAL,
    _PLACEHOLDERS,
    OIDCAuth,
    OpenIDRefresh,
    _check_unknown_keys,
    _filled,
    _text,
)
from micado.exceptions import CredentialsError

__all__ = ["openid_credentials", "is_loopback_host"]

logger = logging.getLogger("micado.config.credentials")

#: Keys of an ``openid`` block: the two MiCADO uses, and those some providers need.
_REQUIRED = ("url", "refresh_token")
_OPTIONAL = ("client_id", "client_secret", "scope")


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (where plain http is tolerated).

    Args:
        host: a URL's host name.

    Returns:
        ``True`` for ``localhost``, ``127.0.0.0/8`` and ``::1``.
    """
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def openid_credentials(auth_data: Mapping[str, Any], document: Any, file: Path, where: str) -> OIDCAuth:
    """Build the :class:`~micado.config.credentials.OIDCAuth` of a ``nova`` entry that uses OpenID Connect.

    Args:
        auth_data: the entry's ``auth_data`` (``identity_provider`` and ``access_token`` filled in).
        document: the whole file, for its ``pre_authentication`` list.
        file: the file, for messages.
        where: the key path of ``auth_data`` (``resource[0].auth_data``).

    Returns:
        The credentials, with a literal access token or the ``openid`` block to refresh with.

    Raises:
        CredentialsError: see :func:`~micado.config.credentials.load_credentials`.
    """
    identity_provider = _text(auth_data, "identity_provider", file, where).strip()
    if identity_provider in _PLACEHOLDERS or "/" in identity_provider:
        raise CredentialsError(
            f"{file}: {where}.identity_provider must be the id of the identity provider in Keystone "
            "(e.g. egi.eu), without slashes",
            path=file, key=f"{where}.identity_provider",
        )
    project_id = _project_id(auth_data, file, where)
    token = auth_data["access_token"]
    if isinstance(token, dict):
        refresh = _openid_block(token, document, file, where)
        return OIDCAuth(identity_provider, refresh=refresh, project_id=project_id, path=file, key=where)
    access_token = _text(auth_data, "access_token", file, where).strip()
    if any(c.isspace() for c in access_token):
        raise CredentialsError(
            f"{file}: {where}.access_token contains white space; an access token has none "
            "(or give the alias *OPENID of the pre_authentication openid block)",
            path=file, key=f"{where}.access_token",
        )
    return OIDCAuth(identity_provider, access_token=access_token, project_id=project_id, path=file, key=where)


def _project_id(auth_data: Mapping[str, Any], file: Path, where: str) -> str | None:
    ignored = sorted(k for k in _NOVA_OPTIONAL if k != "project_id" and _filled(auth_data.get(k)))
    if ignored:
        logger.warning("%s: %s: %s not used with OpenID Connect (the identity provider says who the user is)",
                       file, where, ", ".join(ignored))
    if not _filled(auth_data.get("project_id")):
        return None
    return _text(auth_data, "project_id", file, where).strip()


def _openid_block(token: Mapping[str, Any], document: Any, file: Path, where: str) -> OpenIDRefresh:
    """The ``openid`` block of ``pre_authentication`` that ``access_token`` refers to, checked."""
    blocks = _openid_blocks(document, file)
    block_where = next((w for w, block in blocks if block is token or block == token), None)
    if block_where is None:
        found = ", ".join(w for w, _ in blocks) or "none"
        raise CredentialsError(
            f"{file}: {where}.access_token is a mapping but not the auth_data of a pre_authentication "
            f"entry of type openid (openid blocks: {found}); write `access_token: *OPENID` with "
            "`auth_data: &OPENID` on that block, or give a literal access token",
            path=file, key=f"{where}.access_token",
        )
    _check_unknown_keys(token, set(_REQUIRED + _OPTIONAL), file, block_where)
    for key in _REQUIRED:
        if not _filled(token.get(key)):
            problem = "is empty" if key in token else "is missing"
            raise CredentialsError(
                f"{file}: {block_where}.{key} {problem}; OpenID Connect login needs the provider's token "
                "endpoint as url, and a refresh_token",
                path=file, key=f"{block_where}.{key}",
            )
    url = _provider_url(_text(token, "url", file, block_where), file, block_where)
    refresh_token = _text(token, "refresh_token", file, block_where).strip()
    if refresh_token in _PLACEHOLDERS or any(c.isspace() for c in refresh_token):
        raise CredentialsError(
            f"{file}: {block_where}.refresh_token is not a refresh token (a placeholder, or white space in it)",
            path=file, key=f"{block_where}.refresh_token",
        )
    optional = {key: _text(token, key, file, block_where).strip() for key in _OPTIONAL if _filled(token.get(key))}
    if "client_secret" in optional and "client_id" not in optional:
        raise CredentialsError(
            f"{file}: {block_where}.client_secret is given without client_id; a client secret "
            "belongs to a client: give client_id too",
            path=file, key=f"{block_where}.client_id",
        )
    return OpenIDRefresh(url=url, refresh_token=refresh_token, key=block_where, **optional)


def _openid_blocks(document: Any, file: Path) -> list[tuple[str, Any]]:
    """``(key path, auth_data)`` of each ``pre_authentication`` entry of type ``openid``."""
    entries = document.get("pre_authentication") if isinstance(document, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise CredentialsError(
            f"{file}: pre_authentication must be a list of {{type: openid, auth_data: ...}} entries",
            path=file, key="pre_authentication",
        )
    blocks = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("type") == "openid":
            auth_data = entry.get("auth_data")
            if not isinstance(auth_data, dict):
                raise CredentialsError(
                    f"{file}: pre_authentication[{index}].auth_data must be a mapping (url, refresh_token)",
                    path=file, key=f"pre_authentication[{index}].auth_data",
                )
            blocks.append((f"pre_authentication[{index}].auth_data", auth_data))
    return blocks


def _provider_url(value: str, file: Path, where: str) -> str:
    url = value.strip()  # as written: MiCADO posts to it as it is, a trailing slash included
    key = f"{where}.url"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise CredentialsError(f"{file}: {key} is not a valid URL", path=file, key=key) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialsError(
            f"{file}: {key} must be the https URL of the provider's token endpoint (e.g. "
            "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token)",
            path=file, key=key,
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise CredentialsError(
            f"{file}: {key} is plain http to {parts.hostname}; the refresh token would travel "
            "unencrypted: use https (http is accepted on loopback only)",
            path=file, key=key,
        )
    if parts.query or parts.fragment:
        raise CredentialsError(f"{file}: {key} must not have a query or fragment", path=file, key=key)
    return url
