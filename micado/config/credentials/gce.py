"""Google Cloud credentials for GCE worker nodes: a service-account key file (JSON).

ansible-micado reads it from the file its ``gce_cred_path`` variable names
(``credentials/credentials-gce.json``) and stores it in the master's ``gce-credentials``
Kubernetes secret. :func:`check_gce_credentials` checks its shape before anything is
made: a JSON object with ``type: service_account``, ``project_id``, ``client_email`` and
a PEM ``private_key``. The key itself never appears in a message. The file may be
encrypted with ``ansible-vault`` (see :mod:`~micado.config.credentials.vault`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from micado.config.bounded_yaml import Refused, read_limited
from micado.exceptions import CredentialsError

__all__ = ["check_gce_credentials", "MAX_GCE_BYTES", "REQUIRED_KEYS"]

#: The largest service-account file taken (Google's are about 2.3 KiB; vaulted, about 5).
MAX_GCE_BYTES = 64 * 1024
#: The keys a service-account key file must have, besides ``type``.
REQUIRED_KEYS = ("project_id", "private_key", "client_email")
_PEM_BEGIN = "-----BEGIN PRIVATE KEY-----"
_PEM_END = "-----END PRIVATE KEY-----"


def check_gce_credentials(path: str | os.PathLike[str], vault_password: str | None = None) -> dict[str, Any]:
    """Read and check a Google service-account key file.

    Args:
        path: the JSON file Google Cloud gives for a service account's key.
        vault_password: its password, if ``ansible-vault`` encrypted it.

    Returns:
        The file's JSON object.

    Raises:
        CredentialsError: the file is missing, unreadable, larger than 64 KiB, vaulted
            without the right password, not a JSON object, not of ``type``
            ``service_account``, or lacks (or has an empty or malformed) ``project_id``,
            ``private_key`` or ``client_email``. ``.path`` and ``.key`` say where; the
            key's value is never shown.
    """
    from micado.config.credentials.vault import decrypt

    file = Path(path).expanduser()
    try:
        text = decrypt(read_limited(file, MAX_GCE_BYTES), file, vault_password, "GCE credentials file")
    except FileNotFoundError:
        raise CredentialsError(f"the GCE credentials file {file} does not exist", path=file) from None
    except Refused as exc:
        raise CredentialsError(f"the GCE credentials file {file} is refused: {exc.problem}", path=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise CredentialsError(f"cannot read the GCE credentials file {file}: {reason}", path=file) from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        where = f" at line {line}" if line is not None else ""
        raise CredentialsError(f"the GCE credentials file {file} is not JSON{where}: give the service-account "
                               "key file Google Cloud made (IAM, Service accounts, Keys, JSON)", path=file) from None
    if not isinstance(document, dict):
        raise CredentialsError(f"the GCE credentials file {file} must hold a JSON object, not a "
                               f"{type(document).__name__}", path=file)
    if document.get("type") != "service_account":
        found = document.get("type")
        shown = "missing" if found is None else repr(found) if isinstance(found, str) and len(found) < 40 else "other"
        raise CredentialsError(f"{file}: type must be 'service_account' (a service account's key file), not "
                               f"{shown}", path=file, key="type")
    for key in REQUIRED_KEYS:
        value = document.get(key)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if value is None else "must be a non-empty string"
            raise CredentialsError(f"{file}: {key} {problem}", path=file, key=key)
    if "@" not in document["client_email"]:
        raise CredentialsError(f"{file}: client_email must be the service account's e-mail address",
                               path=file, key="client_email")
    _check_private_key(document["private_key"], file)
    return document


def _check_private_key(value: str, file: Path) -> None:
    """The ``private_key`` must be an unencrypted PEM private key (the key is never shown)."""
    text = value.strip()
    if not (text.startswith(_PEM_BEGIN) and text.endswith(_PEM_END)):
        raise CredentialsError(f"{file}: private_key must be a PEM private key ({_PEM_BEGIN} ... {_PEM_END})",
                               path=file, key="private_key")
    from Crypto.PublicKey import RSA

    try:
        RSA.import_key(text)
    except (ValueError, IndexError, TypeError):
        raise CredentialsError(f"{file}: private_key is not a valid RSA private key", path=file,
                               key="private_key") from None
