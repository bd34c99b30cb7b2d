"""Every path micado-client keeps in the MiCADO directory, in one place.

The directory is ``$MICADO_CLI_DIR`` when set, ``~/.micado-cli`` otherwise. Nothing
here touches the disk except :func:`ensure_dir`, which callers use right before
they write; importing the library never creates anything.

The directory holds keys and secrets. micado-client creates it 0700; one that
already exists is used as it is and its mode is never changed (``MICADO_CLI_DIR``
may name a folder others use: tightening ``/tmp`` would break every other program
on the machine), but one that other users can write to is refused.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

from micado.exceptions import InvalidArgument

logger = logging.getLogger(__name__)

ENV_DIR = "MICADO_CLI_DIR"
DIR_MODE = 0o700
FILE_MODE = 0o600
SECRET_KEY_NAME = "secret.key"


#: Bytes a name in a path may have, and a whole path (Linux's NAME_MAX and PATH_MAX, less
#: room for the files kept inside): a longer MiCADO dir could hold no file at all.
NAME_MAX, PATH_MAX = 255, 4096 - 256


def micado_dir() -> Path:
    """Return the MiCADO directory (``$MICADO_CLI_DIR`` or ``~/.micado-cli``), unresolved.

    Raises:
        InvalidArgument: the path is too long to be a folder (a name in it longer than
            255 bytes, or the whole longer than 3840): no file could be kept there.
    """
    value = os.environ.get(ENV_DIR)
    root = Path(value).expanduser() if value else Path.home() / ".micado-cli"
    encoded = os.fsencode(root)
    if len(encoded) > PATH_MAX or any(len(name) > NAME_MAX for name in encoded.split(b"/")):
        shown = str(root) if len(str(root)) <= 80 else f"{str(root)[:60]}...({len(encoded)} bytes)"
        raise InvalidArgument(f"the MiCADO dir {shown} (${ENV_DIR}) is too long a path (a name in it may have "
                              f"{NAME_MAX} bytes, the whole {PATH_MAX}): set {ENV_DIR} to a shorter one")
    return root


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
    return micado_dir() / SECRET_KEY_NAME


def store_identity_file() -> Path:
    """The MiCADO dir's store identity (mode 0600): the random id every launch marks its resources with."""
    return micado_dir() / "store-id"


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


def kubeconfig_file(master_id: str) -> Path:
    """Where ``master.kubeconfig()`` writes a master's admin kubeconfig by default (mode 0600)."""
    return micado_dir() / "kube" / f"{master_id}.yaml"


def derived_credentials_file(master_id: str) -> Path:
    """The cloud credentials derived from ``clouds.yaml`` for one master's play (mode 0600).

    It lies in the master's working copy (0700), so whatever removes the copy (the
    create's undo, ``cleanup`` after a killed create) removes it too: the password is
    never written outside the MiCADO dir.
    """
    return work_dir(master_id) / "derived-credentials-cloud-api.yml"


def ensure_dir(path: Path | None = None) -> Path:
    """Create the MiCADO dir if missing, and ``path`` inside it; return ``path`` (or the dir).

    The MiCADO dir and the folders made inside it are created 0700. A MiCADO dir that
    already exists is used as it is, never chmodded: one that others can only read is
    used with a warning (the files in it are 0600), one that others can write to is
    refused (they could replace the key, the store or the SSH key).

    Args:
        path: a folder inside the MiCADO dir, or ``None`` for the dir itself.

    Returns:
        ``path``, or the MiCADO dir.

    Raises:
        InvalidArgument: the MiCADO dir exists but is not a folder, or users other than
            its owner can write to it, or it or ``path`` cannot be created (a read-only
            or full file system, no permission: the path and the reason are named);
            the message says what to do.
    """
    root = micado_dir()
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            root.mkdir(mode=DIR_MODE)
        except FileExistsError:
            _check_existing(root)
        else:
            root.chmod(DIR_MODE)  # ours: exactly 0700, whatever the umask
        if path is None:
            return root
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:  # a read-only or full file system, no permission, a file in the way...
        failed = Path(exc.filename) if exc.filename else (path or root)
        raise InvalidArgument(
            f"the MiCADO dir {root} (${ENV_DIR}, default ~/.micado-cli) cannot be used: cannot create "
            f"{failed}: {os_reason(exc)}; set {ENV_DIR} to a folder you can write"
        ) from None
    return path


def os_reason(exc: OSError) -> str:
    """An OS error's reason in words and by name: ``Read-only file system (EROFS)``."""
    name = errno.errorcode.get(exc.errno or 0)
    words = exc.strerror or type(exc).__name__
    return f"{words} ({name})" if name else words


def _check_existing(root: Path) -> None:
    info = root.stat()  # through a symbolic link: the folder it names is the one used
    where = f"the MiCADO dir {root} (${ENV_DIR}, default ~/.micado-cli)"
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidArgument(f"{where} is not a folder; set {ENV_DIR} to a folder of your own")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise InvalidArgument(
            f"{where} can be written by other users (mode {mode:04o}); micado-client keeps keys "
            f"and secrets there and does not change a folder it did not create: set {ENV_DIR} "
            f"to a folder of your own (micado-client creates it 0700), or run chmod 700 {root}"
        )
    if mode & 0o077:
        logger.warning("the MiCADO dir %s can be read by other users (mode %04o); its files are "
                       "private (0600), but consider: chmod 700 %s", root, mode, root)
