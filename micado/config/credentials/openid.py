"""The ``openid`` block of ``pre_authentication``: where a Keystone entry gets its OpenID Connect tokens.

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
token script posts the refresh token straight to it). The entry itself is read by
:mod:`micado.config.credentials.keystone`; this module reads the block it refers to,
without a request (:mod:`micado.launcher.openstack.openid_token` does the exchange).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from micado.checks import is_loopback_host
from micado.config.credentials.checks import check_unknown_keys, filled, text
from micado.exceptions import CredentialsError

__all__ = ["OpenIDRefresh", "PRE_AUTHENTICATION_TYPE", "openid_block"]

#: The ``type`` of the ``pre_authentication`` entries read here.
PRE_AUTHENTICATION_TYPE = "openid"
#: Keys of an ``openid`` block: the two MiCADO uses, and those some providers need.
_REQUIRED = ("url", "refresh_token")
_OPTIONAL = ("client_id", "client_secret", "scope")


@dataclass(frozen=True)
class OpenIDRefresh:
    """How to get an access token from an OpenID Connect provider (MiCADO's ``openid`` block).

    Attributes:
        url: the provider's token endpoint, where the refresh token is posted (as
            MiCADO itself does with the same file on the master).
        refresh_token: the long-lived refresh token (never shown in ``repr``).
        client_id: the OAuth client to refresh as, for providers that need one
            (EGI Check-in's token portal issues tokens for ``token-portal``).
        client_secret: that client's secret, if it is a confidential client
            (never shown in ``repr``).
        scope: the scopes to ask for; ``None`` keeps those the refresh token was
            issued with (RFC 6749, section 6).
        key: where the block is in the file (``pre_authentication[0].auth_data``),
            for error messages.
    """

    url: str
    refresh_token: str = field(repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    key: str = "pre_authentication[0].auth_data"


def openid_block(token: Mapping[str, Any], document: Any, file: Path, where: str,
                 placeholders: Collection[str] = ()) -> OpenIDRefresh:
    """The ``openid`` block of ``pre_authentication`` that an entry's ``access_token`` refers to, checked.

    Args:
        token: the mapping the entry's ``access_token`` holds (the alias ``*OPENID``).
        document: the whole file, for its ``pre_authentication`` list.
        file: the file, for messages.
        where: the key path of the entry's ``auth_data`` (``resource[0].auth_data``).
        placeholders: template placeholders that are no refresh token.

    Raises:
        CredentialsError: ``token`` is no ``openid`` block of the file, or the block lacks
            ``url`` or ``refresh_token``, has a ``url`` that is not https (http only on
            loopback), a ``client_secret`` without ``client_id``, or unknown keys.
    """
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
    check_unknown_keys(token, set(_REQUIRED + _OPTIONAL), file, block_where)
    for key in _REQUIRED:
        if not filled(token.get(key)):
            problem = "is empty" if key in token else "is missing"
            raise CredentialsError(
                f"{file}: {block_where}.{key} {problem}; OpenID Connect login needs the provider's token "
                "endpoint as url, and a refresh_token",
                path=file, key=f"{block_where}.{key}",
            )
    url = _provider_url(text(token, "url", file, block_where), file, block_where)
    refresh_token = text(token, "refresh_token", file, block_where).strip()
    if refresh_token in placeholders or any(c.isspace() for c in refresh_token):
        raise CredentialsError(
            f"{file}: {block_where}.refresh_token is not a refresh token (a placeholder, or white space in it)",
            path=file, key=f"{block_where}.refresh_token",
        )
    optional = {key: text(token, key, file, block_where).strip() for key in _OPTIONAL if filled(token.get(key))}
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
        if isinstance(entry, dict) and entry.get("type") == PRE_AUTHENTICATION_TYPE:
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
