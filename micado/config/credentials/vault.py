"""Credentials files encrypted with ``ansible-vault``: read with Ansible's own vault code.

ansible-micado's documentation recommends encrypting the credentials files with
``ansible-vault encrypt``. Such a file starts with ``$ANSIBLE_VAULT;``; it is read here
with :class:`ansible.parsing.vault.VaultLib` (imported on first use, so that
``import micado`` stays light) and a password taken, in this order, from:

1. the ``vault_password=`` argument of the call (``create``, ``deploy``, ``update_auth``,
   ``reconfigure``, :func:`~micado.config.credentials.load_credentials`);
2. the file named by :envvar:`MICADO_VAULT_PASSWORD_FILE` (the CLI's
   ``--vault-password-file FILE`` and its prompt on a terminal hand the password in as 1.).

As with ``ansible-vault --vault-password-file``, white space around a password read
from a file is dropped. The release gets the files still encrypted, and the password
through a pipe (:mod:`micado.installer.runner`): its plaintext is never written to disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from micado.exceptions import CredentialsError, InvalidArgument

__all__ = ["ENV_VAULT_PASSWORD_FILE", "MAX_VAULT_PASSWORD", "is_vaulted", "check_vault_password",
           "read_password_file", "vault_password", "decrypt", "encrypt"]

#: The environment variable naming a file that holds the vault password.
ENV_VAULT_PASSWORD_FILE = "MICADO_VAULT_PASSWORD_FILE"
#: The longest vault password taken, in bytes (it goes through a pipe to ``ansible-playbook``).
MAX_VAULT_PASSWORD = 4096
_HEADER = "$ANSIBLE_VAULT;"
_HINT = (f"give vault_password=, or --vault-password-file FILE on the command line, or set "
         f"{ENV_VAULT_PASSWORD_FILE} to a file that holds it")


def is_vaulted(text: str | bytes) -> bool:
    """Whether ``text`` is an ``ansible-vault`` encrypted file (its first line starts with ``$ANSIBLE_VAULT;``)."""
    head = text[:len(_HEADER)]
    return (head.decode("ascii", "replace") if isinstance(head, bytes) else head) == _HEADER


def check_vault_password(password: object, name: str = "vault_password") -> str:
    """``password`` if it can be used as a vault password.

    Raises:
        InvalidArgument: it is not a non-empty string, begins or ends with white space
            (``ansible-playbook`` strips that from a password file, so it would not
            match), or is longer than :data:`MAX_VAULT_PASSWORD` bytes. The password is
            never quoted.
    """
    if not isinstance(password, str) or not password:
        raise InvalidArgument(f"{name} must be a non-empty string")
    if password != password.strip():
        raise InvalidArgument(f"{name} must not begin or end with white space (ansible-playbook strips it)")
    if len(password.encode()) > MAX_VAULT_PASSWORD:
        raise InvalidArgument(f"{name} is longer than {MAX_VAULT_PASSWORD} bytes")
    return password


def read_password_file(path: str | os.PathLike[str], what: str = "the vault password file") -> str:
    """The vault password held in a file, white space around it dropped (as ``ansible-vault`` does).

    Raises:
        CredentialsError: the file is missing, unreadable, empty, not UTF-8 or too long;
            ``.path`` names it.
    """
    file = Path(path).expanduser()
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_VAULT_PASSWORD + 1)
        password = data.decode("utf-8").strip()
    except FileNotFoundError:
        raise CredentialsError(f"{what} {file} does not exist", path=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise CredentialsError(f"cannot read {what} {file}: {reason}", path=file) from None
    if len(data) > MAX_VAULT_PASSWORD:
        raise CredentialsError(f"{what} {file} is longer than {MAX_VAULT_PASSWORD} bytes", path=file)
    if not password:
        raise CredentialsError(f"{what} {file} is empty", path=file)
    return password


def vault_password(given: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The vault password to use: ``given``, else the content of :envvar:`MICADO_VAULT_PASSWORD_FILE`, else ``None``.

    Raises:
        InvalidArgument: ``given`` cannot be a vault password (see :func:`check_vault_password`).
        CredentialsError: the environment names a file that cannot be read.
    """
    if given is not None:
        return check_vault_password(given)
    env = os.environ if environ is None else environ
    named = env.get(ENV_VAULT_PASSWORD_FILE)
    if not named:
        return None
    return read_password_file(named, f"the vault password file {ENV_VAULT_PASSWORD_FILE}=")


def _vault(password: str):  # type: ignore[no-untyped-def]  # ansible's VaultLib: untyped
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([("default", VaultSecret(password.encode("utf-8")))])


def decrypt(text: str, file: Path, password: str | None, what: str = "credentials file") -> str:
    """The plaintext of a vaulted file (``text`` as it is when it is not vaulted).

    Args:
        text: the file's content.
        file: the file, for messages.
        password: the vault password; ``None``: taken from the environment (:func:`vault_password`).
        what: what the file is, for messages.

    Raises:
        CredentialsError: the file is vaulted and no password was given, the password is
            wrong, or the vault data is damaged; ``.path`` names the file.
    """
    if not is_vaulted(text):
        return text
    password = vault_password(password)
    if password is None:
        raise CredentialsError(f"the {what} {file} is encrypted with ansible-vault and no vault password was "
                               f"given; {_HINT}", path=file)
    from ansible.errors import AnsibleError

    try:
        plain = _vault(password).decrypt(text.encode("utf-8"))
    except AnsibleError as exc:
        wrong = "no vault secrets" in str(exc).lower() or "decryption failed" in str(exc).lower()
        reason = "the vault password is wrong" if wrong else f"it cannot be decrypted ({type(exc).__name__})"
        raise CredentialsError(f"the {what} {file} is encrypted with ansible-vault and {reason}", path=file) from None
    try:
        return bytes(plain).decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsError(f"the {what} {file} decrypts to data that is not UTF-8 text", path=file) from None


def encrypt(text: str, password: str) -> str:
    """``text`` encrypted as ``ansible-vault encrypt`` would (format 1.1, AES256)."""
    return bytes(_vault(password).encrypt(text.encode("utf-8"))).decode("ascii")
