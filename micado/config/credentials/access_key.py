"""An entry that holds an access key: an access key id and its secret (Amazon EC2 and compatible clouds).

The EC2 launcher reads its entry of the credentials file (``type: ec2``) with
:func:`read_access_key_entry`. Both keys must be filled in::

    - type: ec2
      auth_data:
        accesskey: AKIA...         # the access key id
        secretkey: "..."           # the secret access key
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micado.config.credentials.checks import Method, check_unknown_keys, choose_method, pair
from micado.exceptions import CredentialsError

__all__ = ["EC2Auth", "METHOD", "read_access_key_entry"]


@dataclass(frozen=True)
class EC2Auth:
    """An EC2 access key (MiCADO's ``type: ec2`` entry).

    Attributes:
        access_key_id: the access key id (``accesskey`` in the file).
        secret_access_key: the secret access key (``secretkey``; never shown in ``repr``).
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)


#: The one method of an access-key entry.
METHOD = Method("access key", ("accesskey", "secretkey"))


def read_access_key_entry(auth_data: Mapping[str, Any], file: Path, where: str, document: Any = None,
                          placeholders: Collection[str] = ()) -> EC2Auth:
    """The checked access key of an entry.

    Args:
        auth_data: the entry's ``auth_data``.
        file: the credentials file, for messages.
        where: the key path of ``auth_data`` (``resource[1].auth_data``).
        document: the whole file (not needed: an access key stands alone).
        placeholders: the placeholders of the entry's template, refused as values.

    Raises:
        CredentialsError: see :func:`micado.config.credentials.load_credentials`;
            also a key with white space in it (an access key has none).
    """
    check_unknown_keys(auth_data, set(METHOD.keys), file, where)
    method = choose_method(auth_data, (METHOD,), file, where)
    access_key, secret_key = pair(auth_data, method, file, where, placeholders)
    for key, value in zip(METHOD.keys, (access_key, secret_key), strict=True):
        if any(c.isspace() for c in value.strip()):
            raise CredentialsError(
                f"{file}: {where}.{key} contains white space; an EC2 access key has none",
                path=file,
                key=f"{where}.{key}",
            )
    return EC2Auth(access_key_id=access_key.strip(), secret_access_key=secret_key.strip())
