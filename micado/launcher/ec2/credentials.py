"""The EC2 launcher's entry of the credentials file (``type: ec2``, an access key) and its templates.

The entry is read by :func:`micado.config.credentials.access_key.read_access_key_entry`;
:class:`~micado.launcher.ec2.launcher.EC2Launcher` takes these as its
:attr:`~micado.launcher.base.Launcher.read_credentials` and templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from micado.config.credentials.access_key import EC2Auth, read_access_key_entry

__all__ = ["TEMPLATE", "FILE_ENTRY", "PLACEHOLDERS", "read_entry"]

#: What ``credentials_template("ec2")`` returns (with ``{path}``).
TEMPLATE = """\
# {path}
# EC2 credentials for micado-client (the format MiCADO itself uses).
resource:
- type: ec2
  auth_data:
    accesskey: YOUR_ACCESS_KEY_ID
    secretkey: YOUR_SECRET_ACCESS_KEY
"""

#: The entry in the whole-file template of ``micado init``.
FILE_ENTRY = """\
# Amazon EC2 and EC2-compatible clouds: an access key.
- type: ec2
  auth_data:
    accesskey:              # the access key id
    secretkey:              # the secret access key
"""

#: The placeholders of :data:`TEMPLATE`: a copy of it with them left in would fail later, at the cloud.
PLACEHOLDERS = frozenset({"YOUR_ACCESS_KEY_ID", "YOUR_SECRET_ACCESS_KEY"})


def read_entry(auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> EC2Auth:
    """The checked access key of the entry (see :meth:`micado.launcher.base.Launcher.read_credentials`).

    Raises:
        CredentialsError: see :func:`micado.config.credentials.load_credentials`.
    """
    return read_access_key_entry(auth_data, file, where, document, PLACEHOLDERS)
