"""cloud-init user data as the local VMs understand it: the SSH keys it authorises.

Only what :mod:`micado.testing.vm` needs of cloud-init: a ``#cloud-config`` YAML
document's ``ssh_authorized_keys``, at the top level and per user.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Mapping
from typing import Any

from micado.exceptions import LaunchError

__all__ = ["authorized_keys_from_user_data", "user_data_text"]

_KEY_TYPES = re.compile(r"^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-\S+)\s+\S+")


def authorized_keys_from_user_data(user_data: str) -> list[str]:
    """The SSH public keys a ``#cloud-config`` document authorises.

    Both places cloud-init reads are used: the top-level ``ssh_authorized_keys`` and
    ``users: [{ssh_authorized_keys: [...]}]`` (``ssh-authorized-keys`` too).

    Args:
        user_data: the user data as text.

    Returns:
        The key lines, in order, without duplicates.

    Raises:
        LaunchError: the user data is not cloud-config YAML, or authorises no key.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    first_line = user_data.lstrip().split("\n", 1)[0].strip()
    if first_line != "#cloud-config":
        raise LaunchError(
            f"the user data is not a #cloud-config document (it starts with {first_line[:40]!r}); "
            "the local VM understands cloud-config only"
        )
    try:
        document = YAML(typ="safe").load(user_data)
    except YAMLError as exc:
        raise LaunchError(f"the cloud-config user data is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise LaunchError("the cloud-config user data must be a mapping at the top level")
    found: list[Any] = list(_key_list(document, "the top level"))
    users = document.get("users") or []
    if not isinstance(users, list):
        raise LaunchError(f"cloud-config 'users' must be a list, not {type(users).__name__}")
    for index, entry in enumerate(users):
        if isinstance(entry, dict):
            found += _key_list(entry, f"users[{index}]")
    keys: list[str] = []
    for key in found:
        if not isinstance(key, str) or not _KEY_TYPES.match(key.strip()):
            raise LaunchError(
                f"not an SSH public key line in the cloud-config user data: {key!r:.80}"
            )
        if key.strip() not in keys:
            keys.append(key.strip())
    if not keys:
        raise LaunchError(
            "the cloud-config user data authorises no SSH key (no 'ssh_authorized_keys' at the "
            "top level or under 'users')"
        )
    return keys


def _key_list(mapping: dict[str, Any], where: str) -> list[Any]:
    keys: list[Any] = []
    for name in ("ssh_authorized_keys", "ssh-authorized-keys"):
        value = mapping.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise LaunchError(f"cloud-config {name} at {where} must be a list of key lines")
        keys += value
    return keys


def user_data_text(server: Mapping[str, Any]) -> str:
    """The user data of a server record as text.

    The OpenStack emulator passes it decoded; Nova's API carries it in base64 (also
    accepted here, as ``user_data`` or ``OS-EXT-SRV-ATTR:user_data``).

    Args:
        server: the server record.

    Returns:
        The user data.

    Raises:
        LaunchError: the server has no user data.
    """
    raw = server.get("user_data", server.get("OS-EXT-SRV-ATTR:user_data"))
    if raw is None:
        raise LaunchError(
            f"server {server.get('id')} has no user data; the local VM needs cloud-config "
            "user data with ssh_authorized_keys"
        )
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    text = str(raw)
    if not text.lstrip().startswith("#"):
        # not base64 either: the cloud-config check names what it starts with
        with contextlib.suppress(binascii.Error, ValueError):
            text = base64.b64decode(text, validate=True).decode("utf-8", "replace")
    return text
