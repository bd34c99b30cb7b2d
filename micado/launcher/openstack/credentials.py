"""The OpenStack launcher's entry of the credentials file (``type: nova``, Keystone v3) and its templates.

The entry is read by :func:`micado.config.credentials.keystone.read_keystone_entry`
(password, application credential or OpenID Connect, with MiCADO's ``openid`` block of
``pre_authentication``); :class:`~micado.launcher.openstack.launcher.OpenStackLauncher`
takes these as its :attr:`~micado.launcher.base.Launcher.read_credentials` and templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from micado.config.credentials.keystone import KeystoneAuth, read_keystone_entry

__all__ = ["TEMPLATE", "FILE_ENTRY", "FILE_PRE_AUTHENTICATION", "PLACEHOLDERS", "read_entry"]

#: What ``credentials_template("nova")`` returns (with ``{path}``).
TEMPLATE = """\
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
"""

#: The entry in the whole-file template of ``micado init``.
FILE_ENTRY = """\
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
"""

#: MiCADO's ``openid`` block, commented out, in the whole-file template.
FILE_PRE_AUTHENTICATION = """\
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
"""

#: The placeholders of :data:`TEMPLATE`: a copy of it with them left in would fail later, at the cloud.
PLACEHOLDERS = frozenset({"YOUR_USERNAME", "YOUR_PASSWORD", "YOUR_APP_CRED_ID", "YOUR_APP_CRED_SECRET"})


def read_entry(auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> KeystoneAuth:
    """The checked Keystone login of the entry (see :meth:`micado.launcher.base.Launcher.read_credentials`).

    Raises:
        CredentialsError: see :func:`micado.config.credentials.load_credentials`.
    """
    return read_keystone_entry(auth_data, file, where, document, PLACEHOLDERS)
