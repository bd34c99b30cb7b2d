"""Every path micado-client keeps in the MiCADO directory, in one place.

The directory is ``$MICADO_CLI_DIR`` when set, ``~/.micado-cli`` otherwise. Nothing
here touches the disk except :func:`ensure_dir`, which callers use right before
they write; importing the library never creates anything.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DIR = "MICADO_CLI_DIR"
DIR_MODE = 0o700
FILE_MODE = 0o600


def micado_dir() -> Path:
    """Return the MiCADO directory (``$MICADO_CLI_DIR`` or ``~/.micado-cli``), unresolved."""
    value = os.environ.get(ENV_DIR)
    return Path(value).expanduser() if value else Path.home() / ".micado-cli"


def credentials_file() -> Path:
    """The cloud credentials file, ``credentials-cloud-api.yml``."""
    return micado_dir() / "credentials-cloud-api.yml"


def store_file() -> Path:
    """The master store, ``data.yml``."""
    return micado_dir() / "data.yml"


def store_lock_file() -> Path:
    """The lock file that serialises writers of the store."""
    return micado_dir() / "data.yml.lock"


def secret_key_file() -> Path:
    """The AES key that encrypts secrets in the store (mode 0600)."""
    return micado_dir() / "secret.key"


def ssh_dir() -> Path:
    """The client's own SSH material: key pair and known_hosts (never ``~/.ssh``)."""
    return micado_dir() / "ssh"


def ssh_private_key() -> Path:
    """The client's SSH private key (PEM, mode 0600)."""
    return ssh_dir() / "id_ecdsa"


def ssh_public_key() -> Path:
    """The client's SSH public key (OpenSSH form)."""
    return ssh_dir() / "id_ecdsa.pub"


def known_hosts_file() -> Path:
    """The client's own known_hosts, with the host keys of the masters it made."""
    return ssh_dir() / "known_hosts"


def known_hosts_lock_file() -> Path:
    """The lock file that serialises rewrites of the client's known_hosts."""
    return ssh_dir() / "known_hosts.lock"


def certs_dir() -> Path:
    """Where the masters' TLS certificates are kept, one ``<master id>.pem`` each."""
    return micado_dir() / "certs"


def cert_file(master_id: str) -> Path:
    """The stored TLS certificate of one master."""
    return certs_dir() / f"{master_id}.pem"


def logs_dir() -> Path:
    """Where the installer's logs go, one ``<master id>.log`` each."""
    return micado_dir() / "logs"


def log_file(master_id: str) -> Path:
    """The Ansible log of one master."""
    return logs_dir() / f"{master_id}.log"


def playbook_cache_dir() -> Path:
    """Cached ansible-micado playbook sources, one folder per version."""
    return micado_dir() / "playbooks"


def work_dir(master_id: str) -> Path:
    """The per-master working copy of the playbooks (inventory, credentials)."""
    return micado_dir() / "work" / master_id


def ensure_dir(path: Path | None = None) -> Path:
    """Create the MiCADO dir (mode 0700) and ``path`` inside it if missing; return ``path``.

    The MiCADO dir holds keys and secrets, so a pre-existing one that others can
    read is tightened to 0700. Folders inside it are created 0700 too.
    """
    root = micado_dir()
    root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if root.stat().st_mode & 0o077:
        root.chmod(DIR_MODE)
    if path is None:
        return root
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path
