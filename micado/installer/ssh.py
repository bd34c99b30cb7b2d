"""SSH to the master VM: the client's key pair, readiness, remote commands, file copies.

Everything goes through the real OpenSSH client (``ssh``, ``ssh-keygen``) with options
built in one place, :func:`ssh_options`, which the Ansible inventory uses too. Those
options make ``ssh`` ignore ``~/.ssh`` entirely (``-F /dev/null``, our own identity and
known_hosts file in the MiCADO dir): the 0.9 client deleted users' ``~/.ssh/known_hosts``.

Host keys follow "trust on first successful login": :func:`wait_for_ssh` logs in with a
throw-away known_hosts file per attempt and, once a login succeeds, replaces whatever our
known_hosts said about that host and port with the key it saw (floating IPs get reused,
and cloud-init regenerates host keys during the first boot, so keys seen by failed early
attempts are not trusted). Every later connection checks that key strictly.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from micado import checks
from micado.config import paths
from micado.config.files import write_private
from micado.exceptions import InstallError, InvalidArgument, MicadoTimeout
from micado.progress import ProgressCallback, silent, wait_until

if TYPE_CHECKING:
    from Crypto.PublicKey.ECC import EccKey  # imported when used: a heavy import

__all__ = [
    "KeyPair",
    "ensure_keypair",
    "ssh_options",
    "wait_for_ssh",
    "run",
    "fetch_file",
    "forget_host",
]

logger = logging.getLogger(__name__)

#: Seconds ``ssh`` waits for the TCP connection and the server's banner.
CONNECT_TIMEOUT = 10
#: Keep-alive probes: a dead master is noticed after about a minute.
SERVER_ALIVE_INTERVAL = 15
SERVER_ALIVE_COUNT_MAX = 4
#: Seconds a shared connection stays open once its last session ended.
CONTROL_PERSIST = 120
#: The comment written after the public key (shows up in the VM's authorized_keys).
KEY_COMMENT = "micado-client"
#: How much of ssh's standard error an error message quotes.
_STDERR_TAIL = 800
_LOCK_TIMEOUT = 30.0
_KEYGEN_TIMEOUT = 30.0
_HOST_KEY_FAILURES = (
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "No ED25519 host key is known",
    "No ECDSA host key is known",
    "No RSA host key is known",
)


@dataclass(frozen=True)
class KeyPair:
    """The client's SSH key pair.

    Attributes:
        private_key: the PEM private key file (mode 0600), for ``ssh -i``/``IdentityFile``.
        public_key: the public key as one OpenSSH ``authorized_keys`` line
            (``ecdsa-sha2-nistp256 AAAA... micado-client``), for cloud-init user data.
    """

    private_key: Path
    public_key: str


# --- key pair ----------------------------------------------------------------------------


def ensure_keypair() -> KeyPair:
    """Return the client's key pair, generating it on first use.

    The key is ECDSA P-256 (OpenSSH loads its PEM form; it cannot load the PKCS#8 form
    of Ed25519 keys). The private key is written once, atomically and exclusively, so
    two programs starting at the same time end up with the same key. The public key
    file is (re)written from the private key whenever it is missing or differs.

    Returns:
        The key pair in :func:`micado.config.paths.ssh_dir`.

    Raises:
        InstallError: the existing private key cannot be read or is not an ECDSA key.
    """
    from Crypto.PublicKey import ECC

    private_path = paths.ssh_private_key()
    paths.ensure_dir(private_path.parent)
    if not private_path.exists():
        pem = ECC.generate(curve="P-256").export_key(format="PEM", use_pkcs8=False)
        if write_private(private_path, pem.encode("ascii"), exclusive=True):
            logger.info("generated a new SSH key pair in %s", private_path.parent)
    key = _load_private_key(private_path)
    # (pycryptodome 4 ends the OpenSSH form with a newline; 3.x did not.)
    public_line = f"{key.public_key().export_key(format='OpenSSH').strip()} {KEY_COMMENT}"
    public_path = paths.ssh_public_key()
    try:
        current = public_path.read_text(encoding="ascii").split()[:2]
    except (OSError, UnicodeDecodeError):
        current = []
    if current != public_line.split()[:2]:
        write_private(public_path, (public_line + "\n").encode("ascii"), mode=0o644)
    return KeyPair(private_key=private_path, public_key=public_line)


def _load_private_key(path: Path) -> EccKey:
    from Crypto.PublicKey import ECC

    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        # ssh refuses private keys others can read ("UNPROTECTED PRIVATE KEY FILE").
        logger.warning("tightening the permissions of %s from %o to 600", path, mode)
        path.chmod(0o600)
    try:
        key = ECC.import_key(path.read_text(encoding="ascii"))
    except (OSError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise InstallError(
            f"the SSH private key {path} cannot be read ({exc}); move it away and a new "
            "key pair will be generated"
        ) from exc
    if not key.has_private() or not key.public_key().export_key(format="OpenSSH").startswith(
        "ecdsa-sha2-"
    ):
        raise InstallError(
            f"the SSH private key {path} is not an ECDSA (NIST P-256/384/521) private key; "
            "move it away and a new key pair will be generated"
        )
    return key


# --- options and commands ----------------------------------------------------------------


def ssh_options(*, port: int, key: Path, strict: bool = True, control_dir: Path | None = None) -> list[str]:
    """The ``ssh`` options every connection to a master uses (ssh and the Ansible inventory).

    ``ssh`` reads no ``~/.ssh/config``, offers only ``key`` (no agent, no default keys),
    checks host keys against the MiCADO dir's own known_hosts only, and never prompts.

    Args:
        port: the master's SSH port.
        key: the private key file.
        strict: ``True`` refuses hosts whose key is not recorded; ``False`` records a
            new host's key (``accept-new``) but still refuses a changed one.
        control_dir: share one connection per host through a socket in this folder
            (``ControlPath=<dir>/%C``, the path Ansible is given too): one handshake
            for the SSH wait, the play and the certificate copy.

    Returns:
        Arguments for ``ssh`` (or ``ansible_ssh_common_args`` via :func:`shlex.join`).

    Raises:
        InvalidArgument: the port is not a TCP port number, or a path contains ``"``.
    """
    return _options(
        port=port,
        key=Path(key),
        known_hosts=paths.known_hosts_file(),
        checking="yes" if strict else "accept-new",
        control_dir=control_dir,
    )


def control_path(control_dir: Path) -> str:
    """The ``ControlPath`` of the shared connections in ``control_dir`` (``%C``: a hash of the
    local host, remote host, port and user, so every program reaching the same master shares it)."""
    return str(Path(control_dir).absolute() / "%C")


def _options(*, port: int, key: Path, known_hosts: Path, checking: str,
             control_dir: Path | None = None) -> list[str]:
    checks.port("port", port)
    # Absolute paths: Ansible runs ssh from its own working folder, and a relative
    # MICADO_CLI_DIR would otherwise point ssh at another known_hosts there.
    key = Path(key).expanduser().absolute()
    known_hosts = Path(known_hosts).absolute()
    settings = [
        ("IdentitiesOnly", "yes"),
        ("IdentityFile", key),
        ("IdentityAgent", "none"),
        ("UserKnownHostsFile", known_hosts),
        ("GlobalKnownHostsFile", "/dev/null"),
        ("StrictHostKeyChecking", checking),
        ("BatchMode", "yes"),
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("ConnectTimeout", CONNECT_TIMEOUT),
        ("ServerAliveInterval", SERVER_ALIVE_INTERVAL),
        ("ServerAliveCountMax", SERVER_ALIVE_COUNT_MAX),
        ("LogLevel", "ERROR"),
        ("Port", port),
    ]
    if control_dir is not None:
        settings += [("ControlMaster", "auto"), ("ControlPath", control_path(control_dir)),
                     ("ControlPersist", CONTROL_PERSIST)]
    options = ["-F", "/dev/null"]
    for name, value in settings:
        options += ["-o", f"{name}={_config_value(name, value)}"]
    return options


def _config_value(name: str, value: object) -> str:
    text = str(value)
    if '"' in text or "\n" in text:
        raise InvalidArgument(f"the ssh option {name} cannot contain '\"' or a newline: {text!r}")
    # ssh splits option values at blanks and takes quotes and backslashes as quoting unless
    # the value is double-quoted, where only a backslash still escapes.
    if any(ch.isspace() or ch in "'\\#" for ch in text):
        return '"' + text.replace("\\", "\\\\") + '"'
    return text


def _ssh_argv(
    host: str, command: str, *, port: int, user: str, key: Path, known_hosts: Path, checking: str,
    control_dir: Path | None = None,
) -> list[str]:
    if not host or host.startswith("-"):
        raise InvalidArgument(f"host must be an address or a name, not {host!r}")
    if not user or "@" in user or user.startswith("-"):
        raise InvalidArgument(f"user must be a login name, not {user!r}")
    options = _options(port=port, key=key, known_hosts=known_hosts, checking=checking, control_dir=control_dir)
    # "--" ends option parsing, so nothing after the host is read as an ssh option.
    return [_binary("ssh"), *options, "-l", user, "--", host, command]


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise InstallError(
            f"the OpenSSH client program {name!r} was not found on PATH; install the "
            "OpenSSH client (Debian/Ubuntu: openssh-client)"
        )
    return found


def _tail(stderr: bytes | str | None) -> str:
    if not stderr:
        return ""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    text = text.strip()
    return text if len(text) <= _STDERR_TAIL else "..." + text[-_STDERR_TAIL:]


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _short(command: str) -> str:
    return command if len(command) <= 120 else command[:117] + "..."


def _execute(
    argv: list[str], *, timeout: float, host: str, port: int, command: str
) -> subprocess.CompletedProcess[bytes]:
    """Run one ``ssh`` and turn transport failures into typed errors (exit code kept)."""
    logger.debug("ssh %s: %s", _where(host, port), _short(command))
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise MicadoTimeout(
            f"`{_short(command)}` on {_where(host, port)} did not finish within {timeout:g} s"
            + (f"; ssh said: {_tail(exc.stderr)}" if exc.stderr else ""),
            what=f"`{_short(command)}` on {_where(host, port)}",
            timeout=timeout,
        ) from exc


def _ssh_failure(
    proc: subprocess.CompletedProcess[bytes], host: str, port: int, command: str
) -> InstallError:
    stderr = _tail(proc.stderr)
    where = _where(host, port)
    if proc.returncode == 255 and any(marker in stderr for marker in _HOST_KEY_FAILURES):
        return InstallError(
            f"refusing to connect to {where}: its host key does not match the one recorded in "
            f"{paths.known_hosts_file()} (or none is recorded; wait_for_ssh records it). "
            f"ssh said: {stderr}"
        )
    if proc.returncode == 255:
        return InstallError(f"ssh to {where} failed while running `{_short(command)}`: {stderr}")
    return InstallError(
        f"`{_short(command)}` failed on {where} with exit code {proc.returncode}"
        + (f": {stderr}" if stderr else "")
    )


# --- public operations -------------------------------------------------------------------


def run(
    host: str,
    command: str,
    *,
    port: int = 22,
    user: str = "ubuntu",
    key: Path,
    timeout: float = 60.0,
    control_dir: Path | None = None,
) -> str:
    """Run a shell command on a master whose host key is recorded, and return its output.

    The command is interpreted by the remote login shell and starts in the login
    directory. Do not put secrets on the command line: remote process lists show it.

    Args:
        host: the master's address.
        command: the remote shell command.
        port: the SSH port.
        user: the login user.
        key: the private key file.
        timeout: seconds before ``ssh`` is stopped.
        control_dir: use (or open) the shared connection there (see :func:`ssh_options`).

    Returns:
        The command's standard output (UTF-8, undecodable bytes replaced).

    Raises:
        InstallError: ssh failed (host key mismatch, refused login) or the command
            exited with a non-zero status; the message quotes ssh's standard error.
        MicadoTimeout: the command did not finish within ``timeout``.
    """
    argv = _ssh_argv(
        host, command, port=port, user=user, key=Path(key),
        known_hosts=paths.known_hosts_file(), checking="yes", control_dir=control_dir,
    )
    proc = _execute(argv, timeout=timeout, host=host, port=port, command=command)
    if proc.returncode != 0:
        raise _ssh_failure(proc, host, port, command)
    return proc.stdout.decode("utf-8", "replace")


def fetch_file(
    host: str,
    remote_path: str,
    local_path: Path,
    *,
    port: int = 22,
    user: str = "ubuntu",
    key: Path,
    timeout: float = 60.0,
    control_dir: Path | None = None,
) -> Path:
    """Copy a file from a master (``cat`` over SSH) to ``local_path``, mode 0600.

    The local file is replaced atomically, and only when the copy succeeded.

    Args:
        host: the master's address.
        remote_path: the file on the master; a relative path starts in the login directory.
        local_path: where to write it (its folder is created, mode 0700, if missing).
        port: the SSH port.
        user: the login user.
        key: the private key file.
        timeout: seconds before ``ssh`` is stopped.
        control_dir: reuse the shared connection there (see :func:`ssh_options`).

    Returns:
        ``local_path``.

    Raises:
        InstallError: the remote file does not exist or cannot be read, or ssh failed.
        MicadoTimeout: the copy did not finish within ``timeout``.
    """
    if not remote_path:
        raise InvalidArgument("remote_path must name a file on the master, not an empty string")
    local_path = Path(local_path)
    command = f"cat -- {shlex.quote(remote_path)}"
    argv = _ssh_argv(
        host, command, port=port, user=user, key=Path(key),
        known_hosts=paths.known_hosts_file(), checking="yes", control_dir=control_dir,
    )
    proc = _execute(argv, timeout=timeout, host=host, port=port, command=command)
    if proc.returncode != 0:
        stderr = _tail(proc.stderr)
        if proc.returncode != 255 and "No such file or directory" in stderr:
            raise InstallError(
                f"the file {remote_path} does not exist on {_where(host, port)}"
                + ("" if remote_path.startswith("/") else " (relative to the login directory)")
            )
        if proc.returncode != 255:
            raise InstallError(
                f"cannot read {remote_path} on {_where(host, port)} "
                f"(exit code {proc.returncode}): {stderr}"
            )
        raise _ssh_failure(proc, host, port, command)
    local_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(local_path, proc.stdout)
    return local_path


def wait_for_ssh(
    host: str,
    *,
    port: int = 22,
    user: str = "ubuntu",
    key: Path,
    timeout: float,
    progress: ProgressCallback = silent,
    control_dir: Path | None = None,
) -> None:
    """Wait until a new master accepts SSH logins, and record its host key.

    First the TCP port, then a real login running ``true``, each retried with backoff
    until one deadline. On the first successful login the host key it presented
    replaces any entry for ``host``/``port`` in our known_hosts.

    Args:
        host: the master's address.
        port: the SSH port.
        user: the login user (the image's default user, ``ubuntu`` on MiCADO's images).
        key: the private key file authorised on the master.
        timeout: seconds for the whole wait (port and login).
        progress: receives ``("ssh", message)`` events.
        control_dir: keep the successful login open there as the shared connection
            (see :func:`ssh_options`).

    Raises:
        MicadoTimeout: the port or the login did not become ready in time; the message
            names ``host:port`` and quotes the last error (ssh's standard error).
        InstallError: the key file is missing, or ``ssh`` is not installed.
    """
    key = Path(key)
    checks.port("port", port)
    if not key.is_file():
        raise InstallError(f"the SSH private key {key} does not exist (see ensure_keypair())")
    attempt = _SshAttempt(host=host, port=port, user=user, key=key, deadline=time.monotonic() + timeout,
                          ssh_dir=paths.ensure_dir(paths.ssh_dir()), control_dir=control_dir)
    where = _where(host, port)
    progress("ssh", f"waiting for the SSH port {where}")
    wait_until(
        attempt.port_open, what=f"SSH port {where}", timeout=timeout, stage="ssh", progress=progress,
        on_timeout=lambda: f"the SSH port {where} did not accept connections within {timeout:g} s "
                           f"(last error: {attempt.last_error})",
    )
    progress("ssh", f"port {where} open, logging in as {user}")
    attempt.last_error = "nothing tried yet"
    wait_until(
        attempt.login,
        what=f"SSH login as {user} to {where}",
        timeout=max(attempt.deadline - time.monotonic(), 0.0),
        stage="ssh",
        progress=progress,
        on_timeout=lambda: f"could not log in to {where} as {user} with the key {key} within {timeout:g} s "
                           f"(the port is open; last ssh error: {attempt.last_error})",
    )
    progress("ssh", f"logged in to {where}; host key recorded")


@dataclass
class _SshAttempt:
    """The two checks :func:`wait_for_ssh` repeats until its deadline, and the last error they saw.

    Each returns ``True`` on success and ``None`` for "not yet" (see :func:`wait_until`).
    """

    host: str
    port: int
    user: str
    key: Path
    deadline: float
    ssh_dir: Path
    control_dir: Path | None
    last_error: str = "nothing tried yet"

    def port_open(self) -> bool | None:
        """Whether the SSH port accepts a TCP connection."""
        remaining = max(self.deadline - time.monotonic(), 0.05)
        try:
            with socket.create_connection((self.host, self.port), timeout=min(remaining, CONNECT_TIMEOUT)):
                return True
        except OSError as exc:
            self.last_error = str(exc) or type(exc).__name__
            return None

    def login(self) -> bool | None:
        """Log in running ``true``; on success record the host key the master presented.

        Raises:
            InstallError: ssh logged in but recorded no host key.
        """
        where = _where(self.host, self.port)
        remaining = max(self.deadline - time.monotonic(), 0.5)
        # A fresh known_hosts per attempt: only the key of a successful login is trusted.
        fd, name = tempfile.mkstemp(prefix=".known_hosts.", suffix=".attempt", dir=self.ssh_dir)
        os.close(fd)
        attempt_hosts = Path(name)
        try:
            argv = _ssh_argv(
                self.host, "true", port=self.port, user=self.user, key=self.key,
                known_hosts=attempt_hosts, checking="accept-new", control_dir=self.control_dir,
            )
            try:
                proc = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=remaining
                )
            except subprocess.TimeoutExpired as exc:
                self.last_error = f"ssh did not finish within {remaining:.1f} s {_tail(exc.stderr)}"
                return None
            if proc.returncode != 0:
                self.last_error = _tail(proc.stderr) or f"ssh exited with code {proc.returncode}"
                logger.debug("SSH login to %s not ready: %s", where, self.last_error)
                return None
            seen = attempt_hosts.read_text(encoding="utf-8").strip()
        finally:
            attempt_hosts.unlink(missing_ok=True)
        if not seen:
            raise InstallError(f"ssh logged in to {where} but recorded no host key")
        _record_host_key(self.host, self.port, seen)
        return True


def forget_host(host: str, port: int = 22) -> None:
    """Remove every key recorded for ``host``/``port`` from our known_hosts.

    Used when a master is destroyed: its floating IP may later belong to another VM.

    Args:
        host: the address.
        port: the SSH port.

    Raises:
        InstallError: ``ssh-keygen`` failed to rewrite the file.
    """
    checks.port("port", port)
    with _known_hosts_lock():
        _forget_locked(host, port)


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _forget_locked(host: str, port: int) -> None:
    known_hosts = paths.known_hosts_file()
    if not known_hosts.exists():
        return
    name = _known_hosts_name(host, port)
    argv = [_binary("ssh-keygen"), "-R", name, "-f", str(known_hosts)]
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=_KEYGEN_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        raise MicadoTimeout(
            f"ssh-keygen -R {name} -f {known_hosts} did not finish within {_KEYGEN_TIMEOUT:g} s",
            what="ssh-keygen -R", timeout=_KEYGEN_TIMEOUT,
        ) from exc
    if proc.returncode != 0:
        raise InstallError(
            f"could not remove {name} from {known_hosts}: ssh-keygen said: {_tail(proc.stderr)}"
        )
    # ssh-keygen keeps the previous contents as known_hosts.old: stale keys, drop them.
    known_hosts.with_name(known_hosts.name + ".old").unlink(missing_ok=True)


def _record_host_key(host: str, port: int, lines: str) -> None:
    known_hosts = paths.known_hosts_file()
    with _known_hosts_lock():
        _forget_locked(host, port)
        fd = os.open(known_hosts, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as stream:
            stream.write(lines.strip() + "\n")
    logger.info("recorded the host key of %s in %s", _where(host, port), known_hosts)


@contextmanager
def _known_hosts_lock() -> Iterator[None]:
    """Hold an exclusive lock on our known_hosts while it is rewritten.

    Two masters created in parallel both rewrite the file; without the lock one
    rewrite could drop the other's freshly recorded key.
    """
    lock_path = paths.known_hosts_lock_file()
    paths.ensure_dir(lock_path.parent)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:

        def acquire() -> bool | None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return None

        wait_until(acquire, what=f"the lock {lock_path}", timeout=_LOCK_TIMEOUT, stage="ssh")
        yield
    finally:
        os.close(fd)
