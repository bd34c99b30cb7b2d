"""OpenStack users' own configuration: a cloud of ``clouds.yaml``, or the ``OS_*`` variables.

Read by openstacksdk's own loader (``openstack.config.OpenStackConfig().get_one``), not
by a parser of ours; but the one ``clouds.yaml`` and the one ``secure.yaml`` it would
read are checked first, so that a folder, a device, a binary or
damaged file fails with one clear error instead of being skipped in silence, raising
from deep inside openstacksdk, or (``/dev/zero``) being read forever. openstacksdk takes
the first file that exists of ``$OS_CLIENT_CONFIG_FILE``, then ``clouds.yaml``,
``clouds.yml``, ``clouds.json`` in the working directory, ``~/.config/openstack``,
``/etc/xdg/openstack`` and ``/etc/openstack``, in that order; ``secure.yaml`` likewise
(``$OS_CLIENT_SECURE_FILE`` first), merged over it; then the ``OS_*`` variables.

:func:`load_cloud` gives what ``create()`` needs (Keystone URL, project, region, user
domain) and the login; :func:`micado_credentials_text` writes that login in MiCADO's
``credentials-cloud-api.yml`` format, for the master (never to the user's MiCADO dir).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from micado.checks import is_loopback_host
from micado.config.bounded_yaml import MAX_YAML_BYTES, Refused, YamlSyntaxError, read_limited, safe_load
from micado.config.credentials import ApplicationCredentialAuth, PasswordAuth
from micado.config.credentials.reading import warn_if_readable_by_others
from micado.exceptions import CredentialsError

__all__ = ["OpenStackCloud", "SUPPORTED_AUTH_TYPES", "load_cloud", "micado_credentials_text"]

logger = logging.getLogger(__name__)

#: The ``auth_type`` values a cloud may have. micado-client logs in itself (keystoneauth's
#: v3 password or application-credential plugin); a cloud of another type (``token``,
#: ``v3oidcpassword``...) is refused, never sent to Keystone as a password login.
#: ``password`` is openstacksdk's default, used when ``auth_type`` is not written.
SUPPORTED_AUTH_TYPES = ("password", "v3password", "v3applicationcredential")
_APPLICATION_CREDENTIAL = "v3applicationcredential"
#: The keys of ``auth`` micado-client reads.
_AUTH_KEYS = ("auth_url", "username", "password", "project_id", "user_domain_name", "application_credential_id",
              "application_credential_secret")
#: Keys of ``auth`` that hold a secret: a file with one should be readable by its owner only.
_SECRET_KEYS = frozenset({"password", "application_credential_secret", "token", "access_token",
                          "client_secret", "passcode", "totp"})


@dataclass(frozen=True)
class OpenStackCloud:
    """One cloud of openstacksdk's configuration, as ``create()`` uses it.

    Attributes:
        name: the cloud's name in ``clouds.yaml`` (``envvars`` for the ``OS_*`` variables).
        auth_url: the Keystone URL.
        project_id: the project (``None`` for application credentials).
        region: the region, if configured.
        user_domain_name: the user's domain for password login, if configured.
        credentials: the login (its secret never shows in ``repr``).
    """

    name: str
    auth_url: str
    project_id: str | None
    region: str | None
    user_domain_name: str | None
    credentials: PasswordAuth | ApplicationCredentialAuth

    def create_defaults(self) -> dict[str, Any]:
        """The ``create()`` arguments this cloud gives (explicit arguments override them)."""
        defaults = {"auth_url": self.auth_url, "project_id": self.project_id, "region": self.region,
                    "user_domain_name": self.user_domain_name}
        return {name: value for name, value in defaults.items() if value is not None}

    def credentials_file_text(self) -> str:
        """This cloud's login in MiCADO's credentials format (:func:`micado_credentials_text`)."""
        return micado_credentials_text(self.credentials)


def load_cloud(cloud: str | None = None) -> OpenStackCloud:
    """Read a cloud through openstacksdk's config loader.

    Args:
        cloud: the name in ``clouds.yaml``; ``None`` for ``OS_CLOUD`` or the ``OS_*`` variables.

    Returns:
        The cloud's Keystone URL, project, region and login.

    Raises:
        CredentialsError: ``$OS_CLIENT_CONFIG_FILE`` or ``$OS_CLIENT_SECURE_FILE``
            names a file that does not exist; the file openstacksdk would read is a
            folder, not a regular file, larger than 256 KiB, unreadable, not UTF-8, not
            YAML (JSON for ``.json``), or not a mapping whose ``clouds`` maps names to
            mappings (``.path`` is the file); there is no such cloud (the known ones
            are listed); its ``auth_type`` is not one of
            :data:`SUPPORTED_AUTH_TYPES`; or its ``auth`` lacks the URL or a
            password/application-credential login, or names its project only by name
            (give ``project_id``). Nothing is sent anywhere.
    """
    import openstack.config
    from openstack.config import loader

    clouds_file, clouds = _config_file("OS_CLIENT_CONFIG_FILE", loader.CONFIG_FILES)
    secure_file, _ = _config_file("OS_CLIENT_SECURE_FILE", loader.SECURE_FILES)
    known = sorted(str(name) for name in clouds)
    try:
        with warnings.catch_warnings():  # openstacksdk's own deprecation notes (influxdb) are not the user's
            warnings.filterwarnings("ignore", message=".*InfluxDB")
            # Only the files checked above; the login is checked below (validate=False: no
            # keystoneauth plugin is loaded, which fails with raw TypeErrors on a mismatch).
            config = openstack.config.OpenStackConfig(
                app_name="micado-client", config_files=[str(clouds_file)] if clouds_file else [],
                secure_files=[str(secure_file)] if secure_file else [])
            region = config.get_one(cloud=cloud, validate=False)
    except Exception as error:  # noqa: BLE001 (openstacksdk raises ConfigException, TypeError, KeyError...)
        reason = str(error).rstrip(".") or type(error).__name__
        raise CredentialsError(f"openstacksdk's configuration has no usable cloud {cloud!r}: {reason}; clouds "
                               f"configured: {', '.join(known) or 'none'} "
                               + (f"(in {clouds_file})" if clouds_file else "(no clouds.yaml found; "
                                  "OS_CLIENT_CONFIG_FILE names one elsewhere)")) from None
    name = region.name or cloud or "envvars"
    from_file = clouds_file is not None and name in clouds
    where = f"cloud {name!r} of {clouds_file}" if from_file else f"cloud {name!r} of openstacksdk's configuration"
    return _cloud_of(name, where, region.config, region.region_name, clouds_file if from_file else None)


def _cloud_of(name: str, where: str, config: dict[str, Any], region: str | None, path: Path | None
              ) -> OpenStackCloud:
    """The login of one cloud's merged configuration, checked (errors name ``where`` and ``path``)."""
    auth_type = config.get("auth_type") or "password"
    if auth_type not in SUPPORTED_AUTH_TYPES:
        raise CredentialsError(f"{where} has auth_type {auth_type!r}, which micado-client does not support; "
                               f"supported: {', '.join(SUPPORTED_AUTH_TYPES)} (for OpenID Connect, use a MiCADO "
                               "credentials file)", path=path, key="auth_type")
    raw = config.get("auth") or {}
    if not isinstance(raw, dict):
        raise CredentialsError(f"{where}: its auth is not a mapping", path=path, key="auth")
    # The OS_* variables (and keys written beside auth) are at the top: keystoneauth's loader,
    # which validate=False skips, would move them into auth.
    merged = {key: value for source in (config, raw) for key, value in source.items()
              if key in _AUTH_KEYS and value is not None}
    auth = {key: _text(where, path, merged, key) for key in _AUTH_KEYS}
    auth_url = auth["auth_url"]
    if not auth_url:
        raise CredentialsError(f"{where} has no auth.auth_url", path=path, key="auth.auth_url")
    credentials: PasswordAuth | ApplicationCredentialAuth
    if auth["application_credential_id"] and auth["application_credential_secret"]:
        credentials = ApplicationCredentialAuth(auth["application_credential_id"],
                                                auth["application_credential_secret"])
    elif auth_type != _APPLICATION_CREDENTIAL and auth["username"] and auth["password"]:
        if not auth["project_id"]:
            raise CredentialsError(f"{where} names no auth.project_id (a project_name alone is not enough: "
                                   "add the project's id)", path=path, key="auth.project_id")
        credentials = PasswordAuth(auth["username"], auth["password"], auth["user_domain_name"], auth["project_id"])
    elif auth_type == _APPLICATION_CREDENTIAL:
        raise CredentialsError(f"{where} (auth_type {auth_type}) lacks application_credential_id or "
                               "application_credential_secret in its auth", path=path, key="auth")
    else:
        raise CredentialsError(f"{where} has neither username + password nor application_credential_id + "
                               "application_credential_secret in its auth", path=path, key="auth")
    parts = urlsplit(auth_url)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        logger.warning("%s logs in to Keystone over plain http (%s): the %s travels unencrypted; use https",
                       where, parts.hostname, "secret" if isinstance(credentials, ApplicationCredentialAuth)
                       else "password")
    return OpenStackCloud(name=name, auth_url=auth_url, project_id=auth["project_id"], region=region or None,
                          user_domain_name=auth["user_domain_name"], credentials=credentials)


def _text(where: str, path: Path | None, auth: dict[str, Any], key: str) -> str | None:
    value = auth.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise CredentialsError(f"{where}: auth.{key} must be text (quote it), not {_kind(value)}", path=path,
                           key=f"auth.{key}")


# --- the files openstacksdk reads -----------------------------------------------------------


def _config_file(variable: str, candidates: list[str]) -> tuple[Path | None, dict[str, Any]]:
    """The file of ``candidates`` (``$variable`` first) openstacksdk would read, checked, and its clouds.

    A file that others can read and that holds a secret gets the same warning as such a
    MiCADO credentials file.
    """
    override = os.environ.get(variable)
    if override:
        if not os.path.exists(override):
            raise CredentialsError(f"{variable} names {override}, which does not exist: point it at your "
                                   "clouds.yaml, or unset it", key=variable)
        found = [override]
    else:  # openstacksdk goes on to the next file when one cannot be opened for lack of permission
        found = [name for name in candidates
                 if os.path.exists(name) and (os.path.isdir(name) or os.access(name, os.R_OK))][:1]
    if not found:
        return None, {}
    path = Path(found[0])
    clouds: dict[str, Any] = _read_config_file(path).get("clouds", {})
    if any(isinstance(entry.get("auth"), dict) and _SECRET_KEYS & set(entry["auth"]) for entry in clouds.values()):
        warn_if_readable_by_others(path)
    return path, clouds


def _read_config_file(path: Path) -> dict[str, Any]:
    """One openstacksdk configuration file: read bounded, parsed, its shape checked (mappings all the way)."""
    where = f"openstacksdk's configuration file {path}"
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise CredentialsError(f"{where} is a folder, not a file", path=path)
        if not stat.S_ISREG(info.st_mode):
            raise CredentialsError(f"{where} is not a regular file (a device, a pipe or a socket)", path=path)
        text = read_limited(path, MAX_YAML_BYTES)
    except (OSError, UnicodeDecodeError, Refused) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror
                  else "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc))
        raise CredentialsError(f"cannot read {where}: {reason}", path=path) from None
    data = _parse(text, path, where)
    if data is None:
        return {}  # empty: no clouds (as openstacksdk takes it)
    if not isinstance(data, dict):
        raise CredentialsError(f"{where} holds {_kind(data)}, not a mapping with 'clouds'", path=path)
    clouds = data.get("clouds", {})
    if not isinstance(clouds, dict):
        raise CredentialsError(f"{where}: its 'clouds' is {_kind(clouds)}, not a mapping of cloud names to "
                               "settings", path=path, key="clouds")
    for name, entry in clouds.items():
        if not isinstance(entry, dict):
            raise CredentialsError(f"{where}: cloud {name!r} is {_kind(entry)}, not a mapping",
                                   path=path, key=f"clouds.{name}")
        if "auth" in entry and not isinstance(entry["auth"], dict):
            raise CredentialsError(f"{where}: the auth of cloud {name!r} is not a mapping", path=path,
                                   key=f"clouds.{name}.auth")
    return data


def _kind(value: Any) -> str:
    """What a YAML value is, in words (never the value: it may be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names: dict[type, str] = {str: "text", list: "a list", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


def _parse(text: str, path: Path, where: str) -> Any:
    if path.name.endswith(".json"):  # as openstacksdk reads it
        try:
            return json.loads(text) if text.strip() else None
        except (ValueError, RecursionError) as exc:
            problem = f"at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise CredentialsError(f"{where} is not valid JSON {problem}".rstrip(), path=path) from None
    try:
        return safe_load(text)
    except YamlSyntaxError as exc:
        verdict = "is refused" if isinstance(exc, Refused) else "is not valid YAML"
        place = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
        raise CredentialsError(f"{where} {verdict}{place}: {exc.problem}", path=path) from None


def micado_credentials_text(credentials: PasswordAuth | ApplicationCredentialAuth) -> str:
    """The login in MiCADO's ``credentials-cloud-api.yml`` format (a ``nova`` entry).

    Returns:
        YAML text holding the secret: write it 0600 and remove it when used.
    """
    if isinstance(credentials, ApplicationCredentialAuth):
        auth = {"application_credential_id": credentials.application_credential_id,
                "application_credential_secret": credentials.application_credential_secret}
    else:
        auth = {"username": credentials.username, "password": credentials.password}
        if credentials.user_domain_name:
            auth["domain_name"] = credentials.user_domain_name
        if credentials.project_id:
            auth["project_id"] = credentials.project_id
    lines = "".join(f"      {key}: {json.dumps(value)}\n" for key, value in auth.items())
    return f"resource:\n  - type: nova\n    auth_data:\n{lines}"
