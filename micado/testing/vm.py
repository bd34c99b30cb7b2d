"""Local "VMs": a real OpenSSH ``sshd`` per server, on a loopback address, as the current user.

:class:`VMPool` plugs into the OpenStack emulator's hooks: booting a server makes a
root folder standing in for the VM's filesystem and authorises the cloud-init
``ssh_authorized_keys`` of its user data; associating a floating IP starts an ``sshd``
on that address; deleting the server stops the ``sshd`` and every process started
through it, and removes the folder.

Each VM's ``sshd`` has its own config, host key, ``authorized_keys`` and pid file under
``<root>/etc/ssh``, and forces every session through a small wrapper script that

* starts the session in the VM root, so a relative remote path such as
  ``var/lib/micado/zorp/config/ssl.pem`` lands in ``<root>/var/lib/...``;
* exports ``MICADO_VM_ID``, ``MICADO_VM_ROOT``, ``MICADO_VM_ADDRESS``,
  ``MICADO_VM_PYTHON`` (this interpreter: ``micado.testing`` is importable) and
  ``MICADO_VM_API_PORT``, and sets ``HOME`` to ``<root>/home/<user>``;
* then runs the requested command with the user's shell. The SFTP subsystem goes
  through it too (an external ``sftp-server``), so scp, sftp and Ansible work.

The marker variable lets :meth:`VMPool.delete` find the VM's processes, daemons
included, in ``/proc/*/environ``. Every sshd and session also carries the pool's own
marker ``MICADO_VM_POOL``: while a pool has VMs, a watchdog process
(:func:`micado.testing.processes.start_watchdog`) stops everything so marked if the
program owning the pool dies without cleaning up. Linux only (``/proc``, the
127.0.0.0/8 loopback net).
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import os
import pwd
import random
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from collections.abc import Mapping
from typing import Any

from micado.exceptions import InvalidArgument, LaunchError, NotFound
from micado.progress import wait_until
from micado.testing.cloudinit import authorized_keys_from_user_data, user_data_text
from micado.testing.processes import (
    KILL_GRACE,
    descendants,
    marked_processes,
    start_watchdog,
    stop_watchdog,
    terminate,
    watch_pid,
)

__all__ = [
    "LocalVM",
    "VMPool",
    "random_loopback_address",
    "require_loopback",
    "free_port",
    "SSHD",
]

logger = logging.getLogger(__name__)

SSHD = "/usr/sbin/sshd"
_SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/lib/ssh/sftp-server",
)
#: sshd's privilege separation directory: must exist when sshd runs as root.
_PRIVSEP_DIR = Path("/run/sshd")
_START_TIMEOUT = 10.0
_COMMAND_TIMEOUT = 30.0
_SERVER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class LocalVM:
    """One local VM.

    Attributes:
        server_id: the OpenStack server id (also the name of the root folder).
        root: the folder standing in for the VM's filesystem.
        port: the SSH port.
        user: the login user (the user sshd runs as).
        address: the loopback address sshd listens on, ``None`` while it has none.
        pid: the sshd listener's process id, ``None`` while it is stopped.
        authorized_keys: the public keys taken from the cloud-init user data.
    """

    server_id: str
    root: Path
    port: int
    user: str
    address: str | None = None
    pid: int | None = None
    authorized_keys: tuple[str, ...] = ()

    @property
    def ssh_dir(self) -> Path:
        """``<root>/etc/ssh``: sshd's config, host key, authorized_keys and session wrapper."""
        return self.root / "etc" / "ssh"

    @property
    def home(self) -> Path:
        """The ``HOME`` of SSH sessions, ``<root>/home/<user>``."""
        return self.root / "home" / self.user

    @property
    def host_key(self) -> Path:
        """The VM's private host key."""
        return self.ssh_dir / "ssh_host_ecdsa_key"

    @property
    def log_file(self) -> Path:
        """sshd's log (``-e``: everything it reports), ``<root>/var/log/sshd.log``."""
        return self.root / "var" / "log" / "sshd.log"


# --- helpers for tests and the stack -------------------------------------------------------


_VM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The VM's own programs folder (under its root), first on its sessions' PATH.
IMAGE_PROGRAMS_DIR = "usr/local/bin"


def random_loopback_address() -> str:
    """A random address in 127.0.0.0/8 other than 127.0.0.1 (fewer clashes between runs)."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``address`` right now (the kernel's pick, high range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def require_loopback(address: str) -> str:
    """The guard every connection of the local stack passes: ``address`` must be in 127.0.0.0/8.

    Emulated clouds may hand out addresses that look real (moto gives EC2 instances
    public IPs in 54.214.0.0/16 and private ones in 10.0.0.0/8); nothing local may
    connect to or listen on them.

    Args:
        address: an IPv4 address.

    Returns:
        The address.

    Raises:
        InvalidArgument: not an IP address, or not in 127.0.0.0/8.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise InvalidArgument(f"not an IP address: {address!r}") from exc
    if ip.version != 4 or not ip.is_loopback:
        raise InvalidArgument(f"local VMs listen on 127.0.0.0/8 only, not on {address}")
    return address


_check_loopback = require_loopback


def _bind_error(address: str, port: int) -> OSError | None:
    """Why a listener could not bind ``address:port`` right now; ``None`` if it could.

    With ``SO_REUSEADDR`` (as sshd sets it) only a socket still listening there is in
    the way, not the connections that were made to it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            return exc
    return None


def _sshd_quote(value: Path | str) -> str:
    text = str(value)
    if '"' in text or "\n" in text:
        raise InvalidArgument(f"paths used by sshd cannot contain '\"' or a newline: {text!r}")
    return f'"{text}"'


def _sftp_server() -> str:
    for candidate in _SFTP_SERVERS:
        if os.access(candidate, os.X_OK):
            return candidate
    raise LaunchError(
        f"OpenSSH's sftp-server was not found (looked at {', '.join(_SFTP_SERVERS)}); "
        "install openssh-server"
    )


# --- the pool ------------------------------------------------------------------------------


class VMPool:
    """Local VMs for the OpenStack emulator's ``on_boot``/``on_address``/``on_delete`` hooks.

    Args:
        base_dir: where the VM root folders go, one ``<base_dir>/<server id>`` each.
        ssh_port: the port every VM's sshd listens on (each VM has its own address).
        api_port: the MiCADO API port, passed to sessions as ``MICADO_VM_API_PORT``.
        user: the login user; default the current user. sshd runs as the current
            user, which can only log in as itself unless it is root.

    Raises:
        InvalidArgument: a port is out of range, or ``user`` cannot be served.
    """

    def __init__(
        self, base_dir: Path, *, ssh_port: int, api_port: int, user: str | None = None
    ) -> None:
        for name, port in (("ssh_port", ssh_port), ("api_port", api_port)):
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise InvalidArgument(f"{name} must be a TCP port number (1-65535), not {port!r}")
        current = pwd.getpwuid(os.geteuid()).pw_name
        if user is not None and user != current and os.geteuid() != 0:
            raise InvalidArgument(
                f"an sshd running as {current} can only log in {current}, not {user!r}"
            )
        self.base_dir = Path(base_dir)
        self.ssh_port = ssh_port
        self.api_port = api_port
        self.user = user or current
        self._vms: dict[str, LocalVM] = {}
        self._sshd: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.RLock()
        #: Marks every session process of this pool's VMs, for the watchdog.
        self.marker = {"MICADO_VM_POOL": f"{os.getpid()}-{secrets.token_hex(8)}"}
        self._watchdog: subprocess.Popen[bytes] | None = None
        #: Programs (name -> script text) that VMs booted from now on have in their own
        #: ``usr/local/bin``, first on their sessions' PATH: what an image brings, e.g. a
        #: ``python3.13`` that answers as an old image's Python does.
        self.image_programs: dict[str, str] = {}

    # -- hooks --

    def boot(self, server: Mapping[str, Any]) -> LocalVM:
        """The ``on_boot`` hook: make the VM's root folder, host key and authorized_keys.

        Args:
            server: the server record; ``id`` and ``user_data`` (cloud-config text, or
                base64 of it) are used.

        Returns:
            The new VM (no address yet).

        Raises:
            LaunchError: the user data is not cloud-config or authorises no key, the
                server already has a VM, or the host key could not be generated.
            InvalidArgument: the server id is not usable as a folder name.
        """
        server_id = str(server.get("id") or "")
        if not _SERVER_ID.match(server_id):
            raise InvalidArgument(
                f"a server id must be letters, digits, '.', '_' or '-', not {server_id!r}"
            )
        keys = authorized_keys_from_user_data(user_data_text(server))
        with self._lock:
            if server_id in self._vms:
                raise LaunchError(f"server {server_id} already has a local VM")
            vm = LocalVM(
                server_id=server_id, root=self.base_dir / server_id, port=self.ssh_port,
                user=self.user, authorized_keys=tuple(keys),
            )
            if vm.root.exists():
                raise LaunchError(f"the VM root {vm.root} already exists")
            try:
                folders = (vm.ssh_dir, vm.home, vm.log_file.parent, vm.root / "run")
                for folder in folders:
                    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
                (vm.root / "tmp").mkdir(mode=0o1777)
                (vm.root / "tmp").chmod(0o1777)  # mkdir applies the umask
                self._generate_host_key(vm)
                (vm.ssh_dir / "authorized_keys").write_text("\n".join(keys) + "\n")
                self._install_image_programs(vm)
            except BaseException:
                shutil.rmtree(vm.root, ignore_errors=True)
                raise
            self._vms[server_id] = vm
        logger.info("booted local VM %s in %s with %d key(s)", server_id, vm.root, len(keys))
        return dataclasses.replace(vm)

    def _install_image_programs(self, vm: LocalVM) -> None:
        """Put :attr:`image_programs` in the VM's ``usr/local/bin``, which its sessions find first."""
        if not self.image_programs:
            return
        folder = vm.root / IMAGE_PROGRAMS_DIR
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        for name, text in self.image_programs.items():
            program = folder / name
            program.write_text(text)
            program.chmod(0o755)

    def set_address(self, server_id: str, address: str | None) -> None:
        """The ``on_address`` hook: serve SSH on ``address`` (or stop, for ``None``).

        Starting waits until sshd listens. Moving to another address restarts sshd;
        stopping also ends the SSH connections in progress, and returns once the old
        address no longer answers.

        Args:
            server_id: the server.
            address: a 127.0.0.0/8 address, or ``None``.

        Raises:
            NotFound: an address was given for a server without a VM.
            InvalidArgument: the address is not in 127.0.0.0/8.
            LaunchError: sshd did not start (its log is quoted).
        """
        with self._lock:
            vm = self._vms.get(server_id)
            if vm is None:
                if address is None:
                    return  # e.g. the emulator releasing the IP of a server whose boot failed
                raise self._not_found(server_id)
            if address is not None:
                _check_loopback(address)
                if address == vm.address and self._running(server_id):
                    return
            self._stop_sshd(vm)
            if address is not None:
                self._start_sshd(vm, address)

    def delete(self, server_id: str) -> None:
        """The ``on_delete`` hook: stop sshd and every process started through it, remove the root.

        Unknown servers are fine (their boot may have failed); leftover processes
        carrying the server's id are stopped all the same.

        Args:
            server_id: the server.

        Raises:
            MicadoTimeout: some process survived SIGKILL.
        """
        if not _SERVER_ID.match(server_id):
            raise InvalidArgument(f"not a server id: {server_id!r}")
        with self._lock:
            vm = self._vms.pop(server_id, None)
            root = vm.root if vm is not None else self.base_dir / server_id
            if vm is not None:
                self._stop_sshd(vm)  # the listener and its connections, found through it
            # The VM's own processes carry its markers; the root too: two pools (parallel
            # test runs) may use the same server id.
            markers = {"MICADO_VM_ID": server_id, "MICADO_VM_ROOT": str(root)}
            terminate(lambda: marked_processes(markers), f"VM {server_id}")
            if root.exists():
                shutil.rmtree(root)
        logger.info("deleted local VM %s", server_id)

    # -- inspection and faults --

    def vm(self, server_id: str) -> LocalVM:
        """A snapshot of one VM.

        Raises:
            NotFound: the server has no VM; the message lists those that do.
        """
        with self._lock:
            vm = self._vms.get(server_id)
            if vm is None:
                raise self._not_found(server_id)
            return dataclasses.replace(vm)

    def vms(self) -> list[LocalVM]:
        """Snapshots of every VM."""
        with self._lock:
            return [dataclasses.replace(vm) for vm in self._vms.values()]

    def regenerate_host_key(self, server_id: str) -> None:
        """Give a VM a new host key (restarting its sshd): a fault for host key checks.

        Raises:
            NotFound: the server has no VM.
        """
        with self._lock:
            vm = self._vms.get(server_id)
            if vm is None:
                raise self._not_found(server_id)
            address = vm.address if self._running(server_id) else None
            self._stop_sshd(vm)
            self._generate_host_key(vm)
            if address is not None:
                self._start_sshd(vm, address)

    def stop_all(self) -> None:
        """Delete every VM (sshd, processes, root folder), and end the watchdog."""
        with self._lock:
            server_ids = list(self._vms)
        for server_id in server_ids:
            self.delete(server_id)
        with self._lock:
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                stop_watchdog(watchdog)

    def __enter__(self) -> VMPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    # -- internals --

    def _not_found(self, server_id: str) -> NotFound:
        known = ", ".join(sorted(self._vms)) or "none"
        return NotFound(f"server {server_id} has no local VM (VMs: {known})")

    def _running(self, server_id: str) -> bool:
        process = self._sshd.get(server_id)
        return process is not None and process.poll() is None

    def _generate_host_key(self, vm: LocalVM) -> None:
        for path in (vm.host_key, vm.host_key.with_name(vm.host_key.name + ".pub")):
            path.unlink(missing_ok=True)  # ssh-keygen would ask before overwriting
        argv = [
            "ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-N", "",
            "-C", f"micado-vm-{vm.server_id}", "-f", str(vm.host_key),
        ]
        try:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=_COMMAND_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LaunchError(
                f"could not generate the host key of VM {vm.server_id}: {exc}"
            ) from exc
        if proc.returncode != 0:
            raise LaunchError(
                f"ssh-keygen failed to make the host key of VM {vm.server_id}: "
                f"{proc.stderr.decode('utf-8', 'replace').strip()}"
            )

    def _write_config(self, vm: LocalVM, address: str) -> Path:
        wrapper = vm.ssh_dir / "session"
        (vm.root / "tmp").mkdir(mode=0o700, exist_ok=True)
        exports = {
            **self.marker,
            "MICADO_VM_ID": vm.server_id,
            "MICADO_VM_ROOT": str(vm.root),
            "MICADO_VM_ADDRESS": address,
            "MICADO_VM_PYTHON": sys.executable,
            "MICADO_VM_API_PORT": str(self.api_port),
            "HOME": str(vm.home),
            # The VM's own /tmp: what its programs leave there (a module Ansible killed
            # mid-run leaves its unpacked payload) goes when the VM is deleted.
            "TMPDIR": str(vm.root / "tmp"),
            # A fresh Ubuntu's PATH: the caller's own tools (pyenv shims, virtualenvs) are
            # not on the "VM", so Ansible discovers the system Python as on a real machine.
            "PATH": f"{vm.root / IMAGE_PROGRAMS_DIR}:{_VM_PATH}",
            # The same micado.testing as this process's (a source checkout put first on the path).
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        }
        lines = ["#!/bin/sh", "# Every SSH session of this VM starts here (micado.testing.vm)"]
        lines += [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
        lines += [
            'cd "$MICADO_VM_ROOT" || exit 1',
            # No command: an interactive login. Otherwise the command (or, for the SFTP
            # subsystem, the sftp-server path sshd puts here) run by the user's shell.
            'if [ -z "${SSH_ORIGINAL_COMMAND+set}" ]; then exec "${SHELL:-/bin/sh}" -l; fi',
            'exec "${SHELL:-/bin/sh}" -c "$SSH_ORIGINAL_COMMAND"',
        ]
        wrapper.write_text("\n".join(lines) + "\n")
        wrapper.chmod(0o755)
        authorized_keys = str(vm.ssh_dir / "authorized_keys").replace("%", "%%")
        config = f"""# sshd of local VM {vm.server_id} (micado.testing.vm)
ListenAddress {address}:{vm.port}
AddressFamily inet
HostKey {_sshd_quote(vm.host_key)}
PidFile {_sshd_quote(vm.root / "run" / "sshd.pid")}
AuthorizedKeysFile {_sshd_quote(authorized_keys)}
AllowUsers {vm.user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PermitUserEnvironment no
PermitUserRC no
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
AllowAgentForwarding no
ForceCommand {shlex.quote(str(wrapper))}
Subsystem sftp {_sftp_server()}
"""
        path = vm.ssh_dir / "sshd_config"
        path.write_text(config)
        return path

    def _start_sshd(self, vm: LocalVM, address: str) -> None:
        if not os.access(SSHD, os.X_OK):
            raise LaunchError(
                f"{SSHD} was not found: install openssh-server "
                "(Debian: apt-get install openssh-server)"
            )
        if os.geteuid() == 0 and not _PRIVSEP_DIR.is_dir():
            _PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._check_free(address, vm.port)
        config = self._write_config(vm, address)
        if self._watchdog is None or self._watchdog.poll() is not None:
            self._watchdog = start_watchdog(self.marker)
        with open(vm.log_file, "ab") as log:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.marker},  # for the watchdog
                start_new_session=True,  # not in the test runner's process group
            )

        def listening() -> bool | None:
            if process.poll() is not None:
                raise LaunchError(
                    f"sshd of VM {vm.server_id} exited with code {process.returncode} while "
                    f"starting on {address}:{vm.port}: {self._log_tail(vm)}"
                )
            try:
                with socket.create_connection((address, vm.port), timeout=1.0):
                    return True
            except OSError:
                return None

        try:
            wait_until(listening, what=f"sshd of VM {vm.server_id} on {address}:{vm.port}",
                       timeout=_START_TIMEOUT, stage="vm")
        except BaseException:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=KILL_GRACE)
            raise
        self._sshd[vm.server_id] = process
        watch_pid(self._watchdog, process.pid)
        vm.address, vm.pid = address, process.pid
        logger.info(
            "VM %s: sshd (pid %d) listening on %s:%d", vm.server_id, process.pid, address, vm.port
        )

    def _stop_sshd(self, vm: LocalVM) -> None:
        """Stop the listener and its connections; return once the port is closed.

        The VM's own daemons keep running.
        """
        process = self._sshd.pop(vm.server_id, None)
        address, vm.address, vm.pid = vm.address, None, None
        if process is None:
            return
        if process.poll() is None:
            # Found again each round: a connection the listener accepts while being stopped
            # forks a process that is stopped too.
            terminate(lambda: {process.pid} | descendants(process.pid), f"sshd of VM {vm.server_id}")
        process.wait(timeout=KILL_GRACE)
        if self._watchdog is not None:
            watch_pid(self._watchdog, process.pid, watched=False)
        if address is None:
            return
        # A connection process forked just before the listener went (and reparented since)
        # holds a copy of the listening socket until it gets to close it: until then the
        # old address still answers. Return only once nothing listens there any more.
        wait_until(
            lambda: True if _bind_error(address, vm.port) is None else None,
            what=f"the SSH port {address}:{vm.port} of VM {vm.server_id} to close",
            timeout=KILL_GRACE, stage="vm", interval=0.005, max_interval=0.05,
        )

    @staticmethod
    def _check_free(address: str, port: int) -> None:
        exc = _bind_error(address, port)
        if exc is not None:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else str(exc)
            raise LaunchError(f"cannot serve SSH on {address}:{port}: {reason}") from exc

    @staticmethod
    def _log_tail(vm: LocalVM, size: int = 800) -> str:
        try:
            text = vm.log_file.read_text(errors="replace").strip()
        except OSError:
            return "(no sshd log)"
        return text[-size:] or "(sshd wrote nothing)"
