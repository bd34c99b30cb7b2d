"""The credentials templates, byte for byte as they were when each launcher came to own its entry.

``micado init`` writes :func:`credentials_file_template` and the "file missing" errors show
:func:`credentials_template`; both are now assembled from the registered launchers, and
for the built-in ones they must stay exactly what users (and MiCADO's own format) know.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from micado.config.credentials import credentials_file_template, credentials_template

PATH = Path("/home/u/.micado-cli/credentials-cloud-api.yml")

FILE_TEMPLATE = """\
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

NOVA_TEMPLATE = """\
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

EC2_TEMPLATE = """\
# {path}
# EC2 credentials for micado-client (the format MiCADO itself uses).
resource:
- type: ec2
  auth_data:
    accesskey: YOUR_ACCESS_KEY_ID
    secretkey: YOUR_SECRET_ACCESS_KEY
"""


def test_whole_file_template_is_unchanged() -> None:
    assert credentials_file_template(PATH) == FILE_TEMPLATE.format(path=PATH)


@pytest.mark.parametrize(("kind", "expected"), [("nova", NOVA_TEMPLATE), ("ec2", EC2_TEMPLATE)])
def test_entry_templates_are_unchanged(kind: str, expected: str) -> None:
    assert credentials_template(kind, PATH) == expected.format(path=PATH)
