"""AES-256-GCM for the secrets the master store keeps, and the key they are encrypted with.

An encrypted value is the text ``aesgcm:<base64 of nonce | tag | ciphertext>``: a
fresh random 96-bit nonce per value, a 128-bit tag, and associated data that binds
the value to its place (record id and field), so it cannot be moved unnoticed.
pycryptodome is imported only when a value is encrypted or decrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from typing import Any

from micado.exceptions import StoreError

__all__ = [
    "KEY_BYTES", "CiphertextError", "new_password", "new_key", "encode_key", "decode_key", "key_id",
    "encrypt", "looks_encrypted", "decrypt",
]

KEY_BYTES = 32
_PREFIX = "aesgcm:"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEX = frozenset("0123456789abcdefABCDEF")


class CiphertextError(Exception):
    """A stored value is not an encrypted value, or fails its integrity check."""


def new_password(nbytes: int = 18) -> str:
    """Return a random URL-safe password of ``nbytes`` random bytes.

    It never starts with a dash, so it can follow a command-line flag as a word of
    its own (``--password VALUE``) in any tool, not only ours.
    """
    while True:
        password = secrets.token_urlsafe(nbytes)
        if not password.startswith("-"):
            return password


def new_key() -> bytes:
    """Return a new random key."""
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    """Return the text form of a key (base64, as written to the key file)."""
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str, source: str) -> bytes:
    """Read a key written as 64 hex digits or in base64 (standard or URL-safe alphabet).

    Args:
        text: the key's text form; surrounding whitespace is ignored.
        source: where the text came from, for the error message.

    Raises:
        StoreError: the text is not a 32-byte key (the text itself is not repeated).
    """
    value = text.strip()
    try:
        if len(value) == 2 * KEY_BYTES and set(value) <= _HEX:
            key = bytes.fromhex(value)
        else:
            key = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != KEY_BYTES:
        raise StoreError(
            f"{source} does not hold a valid store key: it must be {KEY_BYTES} bytes written "
            f"as {2 * KEY_BYTES} hex digits or in base64 (44 characters)"
        )
    return key


def key_id(key: bytes) -> str:
    """A short public fingerprint of the key, to tell a wrong key from a damaged value."""
    return hashlib.sha256(b"micado-client store key\0" + key).hexdigest()[:12]


def encrypt(key: bytes, plaintext: str, aad: bytes) -> str:
    """Encrypt ``plaintext`` under ``key``, bound to ``aad``; return the text form."""
    from Crypto.Cipher import AES

    nonce = secrets.token_bytes(_NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext.encode("utf-8"))
    return _PREFIX + base64.b64encode(nonce + tag + ciphertext).decode("ascii")


def looks_encrypted(value: Any) -> bool:
    """Whether ``value`` has the form :func:`encrypt` gives (checked without the key)."""
    if not (isinstance(value, str) and value.startswith(_PREFIX)):
        return False
    try:
        blob = base64.b64decode(value[len(_PREFIX):], validate=True)
    except (ValueError, binascii.Error):
        return False
    return len(blob) >= _NONCE_BYTES + _TAG_BYTES


def decrypt(key: bytes, value: Any, aad: bytes) -> str:
    """Decrypt a value made by :func:`encrypt` with the same key and ``aad``.

    Raises:
        CiphertextError: ``value`` is not an encrypted value, or the tag does not
            match (the value was changed, moved, or encrypted under another key).
    """
    from Crypto.Cipher import AES

    if not (isinstance(value, str) and value.startswith(_PREFIX)):
        raise CiphertextError("is not an encrypted value")
    try:
        blob = base64.b64decode(value[len(_PREFIX):], validate=True)
    except (ValueError, binascii.Error):
        raise CiphertextError("is not valid base64") from None
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise CiphertextError("is too short to be an encrypted value")
    nonce, tag = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:_NONCE_BYTES + _TAG_BYTES]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(aad)
    try:
        return cipher.decrypt_and_verify(blob[_NONCE_BYTES + _TAG_BYTES:], tag).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise CiphertextError(
            "fails its integrity check (changed by hand, or copied from another record)"
        ) from None
