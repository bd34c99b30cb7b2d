"""Cloud credentials: read and check ``credentials-cloud-api.yml``.

The file has the format MiCADO itself uses (ansible-micado's
``sample-credentials-cloud-api.yml``): a ``resource`` list of
``{type: <cloud>, auth_data: {...}}`` entries. For ``nova`` (OpenStack) exactly one
authentication method must be filled in::

    resource:
    - type: nova
      auth_data:
        username: alice            # v3 Password
        password: "..."
        domain_name: Default       # optional (user_domain_name is accepted too)
        project_id: 0123abcd       # optional
        application_credential_id:       # or v3 ApplicationCredential
        application_credential_secret:

For OpenID Connect login (EGI-style federated clouds) the ``nova`` entry names the
Keystone identity provider and takes its ``access_token`` from the ``openid`` block of
``pre_authentication`` through a YAML alias (or holds a literal access token)::

    pre_authentication:
    - type: openid
      auth_data: &OPENID
        url: https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token   # the token endpoint
        refresh_token: "..."
        client_id: token-portal    # optional: for providers that need a client
        client_secret:             # optional
        scope:                     # optional, e.g. "openid email profile eduperson_entitlement"
    resource:
    - type: nova
      auth_data:
        identity_provider: egi.eu
        access_token: *OPENID
        project_id: 0123abcd       # required for OpenID Connect: the project to scope to

For ``ec2`` (Amazon EC2 and EC2-compatible clouds) both keys of the access key
must be filled in::

    - type: ec2
      auth_data:
        accesskey: AKIA...         # the access key id
        secretkey: "..."           # the secret access key

As in MiCADO's own template, a key left blank (``key:`` with no value) counts as not
given, so a copy of the template with one method filled in is valid. Every problem
is a :class:`~micado.exceptions.CredentialsError` whose message names the file and
the key (``resource[0].auth_data.password``); secret values never appear in messages,
reprs or logs. A file larger than 256 KiB, nested deeper than 64 levels, or whose
YAML aliases expand to more than 100 nodes is refused before it is used (MiCADO's
one alias, ``access_token: *OPENID``, is far below that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micado.config import paths
from micado.config._yaml import MAX_YAML_BYTES, Refused, YamlSyntaxError, read_limited, safe_load
from micado.exceptions import CredentialsError

__all__ = [
    "PasswordAuth",
    "ApplicationCredentialAuth",
    "EC2Auth",
    "OIDCAuth",
    "OpenIDRefresh",
    "CloudCredentials",
    "SUPPORTED_KINDS",
    "load_credentials",
    "credentials_template",
    "credentials_file_template",
    "write_credentials_template",
]

logger = logging.getLogger(__name__)


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
class EC2Auth:
    """An EC2 access key (MiCADO's ``type: ec2`` entry).

    Attributes:
        access_key_id: the access key id (``accesskey`` in the file).
        secret_access_key: the secret access key (``secretkey``; never shown in ``repr``).
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)


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


#: What :func:`load_credentials` returns.
CloudCredentials = PasswordAuth | ApplicationCredentialAuth | OIDCAuth | EC2Auth


@dataclass(frozen=True)
class _Method:
    """One way to authenticate: a pair of keys that must both be filled in."""

    name: str
    keys: tuple[str, str]
    supported: bool = True


# Per cloud type: the methods, the optional keys (alias -> field), and the builder.
_NOVA_METHODS = (
    _Method("password", ("username", "password")),
    _Method("application credential", ("application_credential_id", "application_credential_secret")),
    _Method("OpenID Connect", ("identity_provider", "access_token")),
)
_EC2_METHODS = (_Method("access key", ("accesskey", "secretkey")),)
_NOVA_OPTIONAL = {
    "domain_name": "user_domain_name",
    "user_domain_name": "user_domain_name",
    "project_id": "project_id",
}
_SECRET_KEYS = frozenset(
    {"password", "application_credential_secret", "access_token", "secretkey", "client_secret", "refresh_token"}
)

_TEMPLATES = {
    "nova": """\
# {path}
# OpenStack credentials for micado-client (the format MiCADO itself uses).
# Fill in ONE method: username + password, or an application credential
# (OpenID Connect login: see the micado-client documentation).
resource:
- type: nova
  auth_data:
    # v3 Password
    username: YOUR_USERNAME
    password: YOUR_PASSWORD
    domain_name: Default        # optional: the user's domain
    # project_id: YOUR_PROJECT_ID   # optional
    # v3 ApplicationCredential: instead of username and password, give
    # application_credential_id: YOUR_APP_CRED_ID
    # application_credential_secret: YOUR_APP_CRED_SECRET
""",
    "ec2": """\
# {path}
# EC2 credentials for micado-client (the format MiCADO itself uses).
resource:
- type: ec2
  auth_data:
    accesskey: YOUR_ACCESS_KEY_ID
    secretkey: YOUR_SECRET_ACCESS_KEY
""",
}

# A copy of the template with its placeholders left in would fail later, at the cloud.
_PLACEHOLDERS = frozenset(
    {"YOUR_USERNAME", "YOUR_PASSWORD", "YOUR_APP_CRED_ID", "YOUR_APP_CRED_SECRET",
     "YOUR_ACCESS_KEY_ID", "YOUR_SECRET_ACCESS_KEY"}
)

#: The ``type`` values :func:`load_credentials` can read.
SUPPORTED_KINDS: tuple[str, ...] = tuple(_TEMPLATES)


def credentials_template(kind: str = "nova", path: Path | None = None) -> str:
    """Return the YAML a user should write to the credentials file for ``kind``.

    Args:
        kind: the cloud type (``"nova"`` or ``"ec2"``).
        path: the file named in the template's first comment (default: the
            credentials file of the MiCADO dir).

    Returns:
        The template, with placeholders instead of values.

    Raises:
        CredentialsError: ``kind`` is not supported (the supported kinds are listed).
    """
    _check_kind(kind, path)
    return _TEMPLATES[kind].format(path=path or paths.credentials_file())


#: The whole file as ``micado init`` writes it: every cloud micado-client supports, in
#: MiCADO's own layout (ansible-micado's sample), each value left blank to fill in.
_FILE_TEMPLATE = """\
# {path}
# Cloud credentials for micado-client and MiCADO (MiCADO's own format).
# Fill in the entry of your cloud; values left blank count as not given.
# Keep this file readable by you only (it was created with mode 0600).

# OpenID Connect: micado-client logs in to OpenStack with it (Keystone federation),
# and MiCADO uses the same block on the master. Uncomment it, and in the nova entry
# identity_provider, access_token and project_id instead of a password.
# pre_authentication:
# - type: openid
#   auth_data: &OPENID
#     url:                 # the provider's token endpoint (not its issuer), for EGI Check-in
#                          # https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token
#     refresh_token:
#     client_id:           # optional: e.g. token-portal for EGI Check-in
#     client_secret:       # optional: for a confidential client

resource:
# OpenStack: fill in ONE method, a user and password OR an application credential.
- type: nova
  auth_data:
    # v3 Password
    username:
    password:
    domain_name: Default    # the user's domain
    # project_id:           # optional: the project to scope to
    # v3 ApplicationCredential
    application_credential_id:
    application_credential_secret:
    # v3 OidcAccessToken, with the pre_authentication block above (and project_id)
    # identity_provider:    # the identity provider's id in Keystone, e.g. egi.eu
    # access_token: *OPENID

# Amazon EC2 and EC2-compatible clouds: an access key.
- type: ec2
  auth_data:
    accesskey:              # the access key id
    secretkey:              # the secret access key
"""


def credentials_file_template(path: Path | None = None) -> str:
    """The whole credentials file as :func:`write_credentials_template` writes it.

    Args:
        path: the file named in the first comment (default: the credentials file of
            the MiCADO dir).

    Returns:
        The template: an entry per supported cloud with blank values, comments on how
        to fill them in, and MiCADO's OpenID Connect form commented out.
    """
    return _FILE_TEMPLATE.format(path=path or paths.credentials_file())


def write_credentials_template(path: Path | str | None = None) -> Path:
    """Write a commented template of the whole credentials file, for the user to fill in.

    The file is created with mode 0600 and never replaces an existing one. The template
    has an entry for each supported cloud (``nova``: password or application credential;
    ``ec2``: access key) with blank values, and MiCADO's OpenID Connect form commented out.

    Args:
        path: the file; default ``<MiCADO dir>/credentials-cloud-api.yml`` (the MiCADO
            dir is created 0700 if missing).

    Returns:
        The file written.

    Raises:
        CredentialsError: the file already exists (``.path`` names it), or cannot be written.
        InvalidArgument: the MiCADO dir cannot be used (see :func:`micado.config.paths.ensure_dir`).
    """
    from micado.config.files import write_private

    if path is None:
        paths.ensure_dir()
        file = paths.credentials_file()
    else:
        file = Path(path).expanduser()
    try:
        written = write_private(file, credentials_file_template(file), exclusive=True)
    except OSError as exc:
        raise CredentialsError(f"cannot write the credentials template {file}: {paths.os_reason(exc)}",
                               path=file) from None
    if not written:
        raise CredentialsError(f"{file} already exists; edit it, or move it away first", path=file)
    return file


def load_credentials(kind: str = "nova", path: Path | str | None = None) -> CloudCredentials:
    """Read the cloud credentials file and return the checked credentials of one cloud type.

    Args:
        kind: the ``type`` of the ``resource`` entry to use (``"nova"`` for OpenStack,
            ``"ec2"`` for EC2).
        path: the file; default ``<MiCADO dir>/credentials-cloud-api.yml``.

    Returns:
        :class:`PasswordAuth`, :class:`ApplicationCredentialAuth` or
        :class:`OIDCAuth` for ``nova``; :class:`EC2Auth` for ``ec2``.

    Raises:
        CredentialsError: ``kind`` is not supported, or the file is missing,
            unreadable, larger than 256 KiB, not YAML, nested deeper
            than 64 levels, has aliases that expand to more than 100 nodes (one alias
            of the OpenID ``auth_data``, as in MiCADO's format, is fine), has no
            ``resource`` list or no (or several)
            entries of ``kind``, or its ``auth_data`` has half a pair, both
            methods, no method, an empty value or a value that is not text; for
            OpenID Connect, the ``access_token`` alias points at no ``openid`` block
            of ``pre_authentication``, or that block lacks ``url`` or
            ``refresh_token``, has a ``url`` that is not https (http only on
            loopback), a ``client_secret`` without ``client_id``, or unknown keys.
            ``.path`` and ``.key`` say where. Nothing is sent anywhere.
    """
    file = Path(path).expanduser() if path is not None else paths.credentials_file()
    _check_kind(kind, file)
    document = _read_yaml(file, kind)
    auth_data, where = _find_entry(document, file, kind)
    _warn_if_readable_by_others(file)
    return _BUILDERS[kind](auth_data, file, where, document)


# --- reading the file ----------------------------------------------------------------


def _check_kind(kind: str, path: Path | None) -> None:
    if kind not in _TEMPLATES:
        raise CredentialsError(
            f"credentials of type {kind!r} are not supported yet; supported types: "
            f"{', '.join(SUPPORTED_KINDS)}",
            path=path,
            key="resource[].type",
        )


def _read_yaml(file: Path, kind: str) -> Any:
    try:
        return safe_load(read_limited(file, MAX_YAML_BYTES))
    except FileNotFoundError:
        raise CredentialsError(
            f"the cloud credentials file {file} does not exist. Create it (mode 0600) "
            f"with content like this:\n\n{credentials_template(kind, file)}",
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


def _find_entry(document: Any, file: Path, kind: str) -> tuple[Mapping[str, Any], str]:
    """Return the ``auth_data`` of the one ``resource`` entry of type ``kind``, and its key path."""
    resources = document.get("resource") if isinstance(document, dict) else None
    if not isinstance(resources, list):
        found = "the file is empty" if document is None else _describe_top(document)
        raise CredentialsError(
            f"{file}: no 'resource' list ({found}); the file must look like this:\n\n"
            f"{credentials_template(kind, file)}",
            path=file,
            key="resource",
        )
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
            f"{file}: no resource entry of type {kind!r} (types present: {present}); add one:\n\n"
            f"{credentials_template(kind, file)}",
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
    index = matches[0]
    where = f"resource[{index}].auth_data"
    auth_data = resources[index].get("auth_data")
    if not isinstance(auth_data, dict):
        problem = "is missing" if auth_data is None else "must be a mapping of keys to values"
        raise CredentialsError(f"{file}: {where} {problem}", path=file, key=where)
    return auth_data, where


def _describe_top(document: Any) -> str:
    if isinstance(document, dict):
        keys = ", ".join(str(k) for k in document) or "none"
        return f"top-level keys: {keys}"
    return f"the top level is a {type(document).__name__}, not a mapping"


def _warn_if_readable_by_others(file: Path) -> None:
    try:
        if file.stat().st_mode & 0o077:
            logger.warning("%s holds cloud secrets but others can read it; run: chmod 600 %s", file, file)
    except OSError:  # it was just read; a race here changes nothing about the credentials
        pass


# --- checking auth_data -------------------------------------------------------------------


def _filled(value: Any) -> bool:
    """A value counts as given when it is not blank; a mapping (a YAML anchor) when any value is."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict):
        return any(_filled(v) for v in value.values())
    return True


def _text(auth_data: Mapping[str, Any], key: str, file: Path, where: str) -> str:
    value = auth_data[key]
    if not isinstance(value, str):
        hint = "; put it in quotes" if isinstance(value, (int, float, bool)) else ""
        shown = "" if key in _SECRET_KEYS else f" (got {type(value).__name__})"
        raise CredentialsError(
            f"{file}: {where}.{key} must be text{shown}{hint}", path=file, key=f"{where}.{key}"
        )
    return value


def _choose_method(
    auth_data: Mapping[str, Any], methods: tuple[_Method, ...], file: Path, where: str
) -> _Method:
    """Return the one method filled in, or raise the error that says what is wrong."""
    usable = " or ".join(" + ".join(m.keys) for m in methods if m.supported)
    known = {key for m in methods for key in m.keys}
    given = [m for m in methods if any(_filled(auth_data.get(k)) for k in m.keys)]
    if len(given) > 1:
        names = " and ".join(f"{m.name} ({' + '.join(m.keys)})" for m in given)
        raise CredentialsError(
            f"{file}: {where} fills in more than one authentication method: {names}; "
            "keep exactly one and leave the other keys blank or remove them",
            path=file,
            key=where,
        )
    if not given:
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
    return method


def _check_unknown_keys(
    auth_data: Mapping[str, Any], valid: set[str], file: Path, where: str
) -> None:
    unknown = sorted(str(k) for k, v in auth_data.items() if k not in valid and _filled(v))
    if unknown:
        raise CredentialsError(
            f"{file}: {where} has unknown key(s) {', '.join(unknown)}; valid keys: "
            f"{', '.join(sorted(valid))}",
            path=file,
            key=f"{where}.{unknown[0]}",
        )


def _pair(auth_data: Mapping[str, Any], method: _Method, file: Path, where: str) -> tuple[str, str]:
    """The two values of the chosen method, as text that is not a template placeholder."""
    first, second = (_text(auth_data, key, file, where) for key in method.keys)
    for key, value in zip(method.keys, (first, second), strict=True):
        if value.strip() in _PLACEHOLDERS:
            raise CredentialsError(
                f"{file}: {where}.{key} still holds the template's placeholder; "
                "put your own value there",
                path=file,
                key=f"{where}.{key}",
            )
    return first, second


def _nova(auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> CloudCredentials:
    valid = {key for m in _NOVA_METHODS for key in m.keys} | set(_NOVA_OPTIONAL)
    _check_unknown_keys(auth_data, valid, file, where)
    method = _choose_method(auth_data, _NOVA_METHODS, file, where)
    if method.keys[0] == "identity_provider":
        from micado.config._openid import openid_credentials

        return openid_credentials(auth_data, document, file, where)
    first, second = _pair(auth_data, method, file, where)

    optional: dict[str, str] = {}
    for key, target in _NOVA_OPTIONAL.items():
        if not _filled(auth_data.get(key)):
            continue  # blank optional keys are normal: MiCADO's template lists them empty
        value = _text(auth_data, key, file, where).strip()
        if target in optional and optional[target] != value:
            raise CredentialsError(
                f"{file}: {where}.domain_name and {where}.user_domain_name disagree; give only one",
                path=file,
                key=f"{where}.{key}",
            )
        optional[target] = value

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


def _ec2(auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> CloudCredentials:
    _check_unknown_keys(auth_data, set(_EC2_METHODS[0].keys), file, where)
    method = _choose_method(auth_data, _EC2_METHODS, file, where)
    access_key, secret_key = _pair(auth_data, method, file, where)
    if any(c.isspace() for c in access_key.strip()) or any(c.isspace() for c in secret_key.strip()):
        bad = "accesskey" if any(c.isspace() for c in access_key.strip()) else "secretkey"
        raise CredentialsError(
            f"{file}: {where}.{bad} contains white space; an EC2 access key has none",
            path=file,
            key=f"{where}.{bad}",
        )
    return EC2Auth(access_key_id=access_key.strip(), secret_access_key=secret_key.strip())


# Each builder gets the entry's auth_data, the file, the entry's key path and the whole document.
_BUILDERS: dict[str, Callable[[Mapping[str, Any], Path, str, Any], CloudCredentials]] = {"nova": _nova, "ec2": _ec2}
