"""OpenStack users' own configuration: a cloud of ``clouds.yaml``, or the ``OS_*`` variables.

Read by openstacksdk's own loader (``openstack.config.OpenStackConfig().get_one``:
``OS_CLIENT_CONFIG_FILE``, ``./clouds.yaml``, ``~/.config/openstack/clouds.yaml``,
``/etc/openstack/clouds.yaml``, ``secure.yaml`` beside them, and the ``OS_*``
variables), not by a parser of ours. :func:`load_cloud` gives what ``create()`` needs
(Keystone URL, project, region, user domain) and the login;
:func:`micado_credentials_text` writes that login in MiCADO's
``credentials-cloud-api.yml`` format, for the master (never to the user's MiCADO dir).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

from micado.config.credentials import ApplicationCredentialAuth, PasswordAuth
from micado.exceptions import CredentialsError

__all__ = ["OpenStackCloud", "load_cloud", "micado_credentials_text"]


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


def load_cloud(cloud: str | None = None) -> OpenStackCloud:
    """Read a cloud through openstacksdk's config loader.

    Args:
        cloud: the name in ``clouds.yaml``; ``None`` for ``OS_CLOUD`` or the ``OS_*`` variables.

    Returns:
        The cloud's Keystone URL, project, region and login.

    Raises:
        CredentialsError: no such cloud (the known ones are listed), or its ``auth``
            lacks the URL or a password/application-credential login, or names its
            project only by name (give ``project_id``).
    """
    import openstack.config
    from openstack import exceptions as sdk_errors

    try:
        with warnings.catch_warnings():  # openstacksdk's own deprecation notes (influxdb) are not the user's
            warnings.filterwarnings("ignore", message=".*InfluxDB")
            config = openstack.config.OpenStackConfig(app_name="micado-client")
            region = config.get_one(cloud=cloud)  # validated: the OS_* variables land in "auth"
    except (sdk_errors.SDKException, OSError, ValueError) as error:
        known = _known_clouds()
        raise CredentialsError(f"openstacksdk's configuration has no usable cloud {cloud!r}: {error}; clouds "
                               f"configured: {', '.join(known) or 'none'} (clouds.yaml or OS_CLIENT_CONFIG_FILE)"
                               ) from None
    name = region.name or cloud or "envvars"
    auth: dict[str, Any] = dict(region.config.get("auth") or {})
    where = f"cloud {name!r} of openstacksdk's configuration"
    if not auth.get("auth_url"):
        raise CredentialsError(f"{where} has no auth.auth_url", key="auth.auth_url")
    credentials: PasswordAuth | ApplicationCredentialAuth
    if auth.get("application_credential_id") and auth.get("application_credential_secret"):
        credentials = ApplicationCredentialAuth(auth["application_credential_id"],
                                                auth["application_credential_secret"])
    elif auth.get("username") and auth.get("password"):
        if not auth.get("project_id"):
            raise CredentialsError(f"{where} names no auth.project_id (a project_name alone is not enough: "
                                   "add the project's id)", key="auth.project_id")
        credentials = PasswordAuth(auth["username"], auth["password"], auth.get("user_domain_name"),
                                   auth["project_id"])
    else:
        raise CredentialsError(f"{where} has neither username + password nor application_credential_id + "
                               "application_credential_secret in its auth", key="auth")
    return OpenStackCloud(name=name, auth_url=auth["auth_url"], project_id=auth.get("project_id"),
                          region=region.region_name or None, user_domain_name=auth.get("user_domain_name"),
                          credentials=credentials)


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


def _known_clouds() -> list[str]:
    try:
        import openstack.config

        return sorted(openstack.config.OpenStackConfig().get_cloud_names())
    except Exception:  # noqa: BLE001 (only for the message: the first error is the one raised)
        return []
