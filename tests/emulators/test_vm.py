"""micado.testing.vm: local sshd "VMs" driven by real ssh, sftp, scp and ansible-playbook."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from micado.config import paths
from micado.exceptions import InvalidArgument, LaunchError, NotFound
from micado.installer import ssh
from micado.progress import wait_until
from micado.testing.cloudinit import authorized_keys_from_user_data
from micado.testing.vm import LocalVM, VMPool, random_loopback_address

pytestmark = pytest.mark.stack  # every test starts real sshd VMs, some outside the vm_pool fixture

#: The folder of this interpreter's scripts (ansible, ansible-playbook).
BIN = Path(sys.executable).parent
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== a@example"
KEY_B = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= b@example"


@pytest.fixture
def vm(vm_pool: VMPool, keypair: ssh.KeyPair) -> LocalVM:
    """A running VM whose host key is recorded, ready for strict SSH."""
    user_data = (
        "#cloud-config\nusers:\n  - name: micado\n"
        f"    ssh_authorized_keys: ['{keypair.public_key}']\n"
    )
    vm_pool.boot({"id": "vm-1", "user_data": user_data})
    vm_pool.set_address("vm-1", random_loopback_address())
    vm = vm_pool.vm("vm-1")
    ssh.wait_for_ssh(vm.address, port=vm.port, user=vm.user, key=keypair.private_key, timeout=20)
    return vm


def on(vm: LocalVM, keypair: ssh.KeyPair, command: str, **kwargs) -> str:
    return ssh.run(
        vm.address, command, port=vm.port, user=vm.user, key=keypair.private_key, **kwargs
    )


def listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def processes_with(variable: str) -> list[int]:
    """Living processes whose environment has ``variable`` (``NAME=value``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if variable.encode() in environ:
            found.append(int(entry.name))
    return [pid for pid in found if alive(pid)]


# --- boot: cloud-init user data ---------------------------------------------------------


def test_boot_authorises_the_cloud_config_keys(vm_pool: VMPool) -> None:
    user_data = textwrap.dedent(f"""\
        #cloud-config
        ssh_authorized_keys:
          - {KEY_A}
        users:
          - default
          - name: ubuntu
            ssh_authorized_keys:
              - {KEY_B}
              - {KEY_A}
        """)
    vm = vm_pool.boot({"id": "abc-123", "name": "MiCADO-Master-1", "user_data": user_data})
    assert vm.root == vm_pool.base_dir / "abc-123"
    assert vm.root.is_dir()
    assert vm.authorized_keys == (KEY_A, KEY_B)
    assert (vm.ssh_dir / "authorized_keys").read_text() == f"{KEY_A}\n{KEY_B}\n"
    assert vm.host_key.is_file()
    assert vm.home.is_dir()
    assert vm.address is None
    assert vm.pid is None
    assert vm_pool.vm("abc-123") == vm
    # Nova's API form (base64) is understood too.
    encoded = base64.b64encode(f"#cloud-config\nssh_authorized_keys: [{KEY_B}]\n".encode()).decode()
    assert vm_pool.boot({"id": "b64", "user_data": encoded}).authorized_keys == (KEY_B,)
    with pytest.raises(LaunchError, match="already"):
        vm_pool.boot({"id": "b64", "user_data": encoded})


@pytest.mark.parametrize(
    ("user_data", "message"),
    [
        ("#!/bin/sh\necho hi\n", "not a #cloud-config"),
        ("#cloud-config\npackages: [git]\n", "authorises no SSH key"),
        ("#cloud-config\nusers:\n  - name: u\n", "authorises no SSH key"),
        ("#cloud-config\nssh_authorized_keys: [\n", "not valid YAML"),
        ("#cloud-config\nssh_authorized_keys: ['not a key']\n", "not an SSH public key"),
        ("#cloud-config\n- a list\n", "mapping"),
        (None, "no user data"),
    ],
)
def test_boot_refuses_unusable_user_data(
    vm_pool: VMPool, user_data: str | None, message: str
) -> None:
    with pytest.raises(LaunchError, match=message):
        vm_pool.boot({"id": "bad", "user_data": user_data})
    assert not (vm_pool.base_dir / "bad").exists()
    with pytest.raises(NotFound, match="bad"):
        vm_pool.vm("bad")


def test_authorized_keys_parser_accepts_the_hyphenated_spelling() -> None:
    text = f"#cloud-config\nusers:\n  - name: x\n    ssh-authorized-keys: {KEY_A}\n"
    assert authorized_keys_from_user_data(text) == [KEY_A]


def test_addresses_are_checked(vm_pool: VMPool) -> None:
    vm_pool.boot({"id": "vm-a", "user_data": f"#cloud-config\nssh_authorized_keys: [{KEY_A}]\n"})
    for address in ("10.0.0.1", "::1", "localhost"):
        with pytest.raises(InvalidArgument):
            vm_pool.set_address("vm-a", address)
    with pytest.raises(NotFound, match="vm-a"):
        vm_pool.set_address("nope", "127.0.0.5")
    vm_pool.set_address("nope", None)  # releasing the IP of a server that never booted is fine
    with pytest.raises(InvalidArgument):
        vm_pool.boot({"id": "../escape", "user_data": "#cloud-config\n"})


# --- address: sshd up and down ------------------------------------------------------------


def test_address_changes_start_move_and_stop_sshd(
    vm_pool: VMPool, vm: LocalVM, keypair: ssh.KeyPair
) -> None:
    assert vm.pid is not None
    assert listening(vm.address, vm.port)
    moved_to = random_loopback_address()
    vm_pool.set_address(vm.server_id, moved_to)
    moved = vm_pool.vm(vm.server_id)
    assert moved.address == moved_to
    assert moved.pid != vm.pid
    assert listening(moved_to, vm.port)
    assert not listening(vm.address, vm.port)
    vm_pool.set_address(vm.server_id, None)
    assert vm_pool.vm(vm.server_id).pid is None
    assert not listening(moved_to, vm.port)
    assert not alive(moved.pid)


def _take_listening_socket(pid: int, address: str, port: int) -> socket.socket:
    """A copy of the socket process ``pid`` listens on at ``address:port`` (pidfd_getfd(2))."""
    import ctypes

    a, b, c, d = (int(x) for x in address.split("."))
    local = f"{d:02X}{c:02X}{b:02X}{a:02X}:{port:04X}"  # /proc/net/tcp: little-endian IPv4
    inodes = {
        line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[1] == local and line.split()[3] == "0A"  # LISTEN
    }
    fd = next(int(link.name) for link in Path(f"/proc/{pid}/fd").iterdir()
              if os.readlink(link).removeprefix("socket:[").removesuffix("]") in inodes)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd, the same on every Linux arch
        if copy < 0:
            pytest.skip(f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=copy)


def test_stopping_waits_until_no_process_holds_the_listening_socket(
    vm_pool: VMPool, vm: LocalVM
) -> None:
    # A connection process sshd forks just before it is stopped keeps a copy of the listening
    # socket until it gets to close it; here the test is that process, for 0.3 s.
    assert vm.pid is not None
    assert vm.address is not None
    straggler = _take_listening_socket(vm.pid, vm.address, vm.port)
    timer = threading.Timer(0.3, straggler.close)
    timer.start()
    try:
        started = time.monotonic()
        vm_pool.set_address(vm.server_id, None)
        assert time.monotonic() - started >= 0.25
        assert not listening(vm.address, vm.port)
    finally:
        timer.cancel()
        straggler.close()


def test_port_in_use_is_a_launch_error(vm_pool: VMPool) -> None:
    address = random_loopback_address()
    vm_pool.boot({"id": "vm-busy", "user_data": f"#cloud-config\nssh_authorized_keys: [{KEY_A}]\n"})
    with socket.socket() as blocker:
        blocker.bind((address, vm_pool.ssh_port))
        blocker.listen()
        with pytest.raises(LaunchError, match=f"{address}:{vm_pool.ssh_port}.*in use"):
            vm_pool.set_address("vm-busy", address)
    assert vm_pool.vm("vm-busy").address is None


# --- sessions ---------------------------------------------------------------------------


def test_sessions_start_in_the_root_with_the_vm_variables(
    vm_pool: VMPool, vm: LocalVM, keypair: ssh.KeyPair
) -> None:
    lines = on(vm, keypair, "pwd; echo $HOME; env | grep ^MICADO_VM_ | sort").splitlines()
    assert lines == [
        str(vm.root),
        str(vm.home),
        f"MICADO_VM_ADDRESS={vm.address}",
        f"MICADO_VM_API_PORT={vm_pool.api_port}",
        f"MICADO_VM_ID={vm.server_id}",
        f"MICADO_VM_POOL={vm_pool.marker['MICADO_VM_POOL']}",  # for the pool's watchdog
        f"MICADO_VM_PYTHON={sys.executable}",
        f"MICADO_VM_ROOT={vm.root}",
    ]
    # The stack's Python (and micado.testing) runs on the VM.
    assert on(vm, keypair, '"$MICADO_VM_PYTHON" -c "import micado.testing.vm; print(42)"') == "42\n"


def test_what_the_vm_leaves_in_its_tmp_goes_with_it(vm_pool: VMPool, vm: LocalVM, keypair: ssh.KeyPair) -> None:
    # A module Ansible kills mid-run leaves its unpacked payload in the temporary folder.
    left = on(vm, keypair, '"$MICADO_VM_PYTHON" -c "import tempfile; print(tempfile.mkdtemp(prefix=\'payload_\'))"')
    left_path = Path(left.strip())
    assert left_path.parent == vm.root / "tmp" and left_path.is_dir()
    vm_pool.delete(vm.server_id)
    assert not left_path.exists()


def test_sftp_and_scp_transfers_land_in_the_root(
    vm: LocalVM, keypair: ssh.KeyPair, tmp_path: Path
) -> None:
    options = ssh.ssh_options(port=vm.port, key=keypair.private_key)
    source = tmp_path / "payload.txt"
    source.write_text("payload\n")
    batch = tmp_path / "batch"
    batch.write_text(f"mkdir incoming\nput {source} incoming/by-sftp.txt\n")
    subprocess.run(["sftp", *options, "-b", str(batch), f"{vm.user}@{vm.address}"],
                   check=True, capture_output=True, timeout=30)
    assert (vm.root / "incoming/by-sftp.txt").read_text() == "payload\n"
    for mode in ([], ["-O"]):  # the SFTP protocol (default) and the legacy scp protocol
        name = f"incoming/by-scp{''.join(mode)}.txt"
        subprocess.run(["scp", *mode, *options, str(source), f"{vm.user}@{vm.address}:{name}"],
                       check=True, capture_output=True, timeout=30)
        assert (vm.root / name).read_text() == "payload\n"


def test_ansible_playbook_runs_through_the_vm_with_our_ssh_options(
    vm: LocalVM, keypair: ssh.KeyPair, tmp_path: Path
) -> None:
    known_hosts = paths.known_hosts_file().read_text()
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"micado": {
        "ansible_host": vm.address,
        "ansible_port": vm.port,
        "ansible_user": vm.user,
        "ansible_python_interpreter": sys.executable,
        "ansible_ssh_common_args": shlex.join(
            ssh.ssh_options(port=vm.port, key=keypair.private_key)
        ),
    }}}}))
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: micado
          gather_facts: false
          tasks:
            - ansible.builtin.ping:
            - ansible.builtin.copy:
                content: "from ansible\\n"
                dest: "{{ lookup('ansible.builtin.env', 'VM_ROOT') }}/var/lib/micado/copied.txt"
            - ansible.builtin.shell: echo "$MICADO_VM_ID" > var/lib/micado/shell.txt
              args:
                chdir: "{{ lookup('ansible.builtin.env', 'VM_ROOT') }}"
        """))
    # Ansible's own connection socket goes under $HOME/.ansible/cp by default; a short folder
    # keeps it under the 108 bytes of a Unix socket path whatever the test's HOME is.
    control = tempfile.mkdtemp(prefix="cp-", dir="/tmp")
    env = {**os.environ, "VM_ROOT": str(vm.root), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_SSH_CONTROL_PATH_DIR": control}
    (vm.root / "var/lib/micado").mkdir(parents=True)
    try:
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
    finally:
        shutil.rmtree(control, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok=3" in proc.stdout
    assert "failed=0" in proc.stdout
    assert (vm.root / "var/lib/micado/copied.txt").read_text() == "from ansible\n"
    assert (vm.root / "var/lib/micado/shell.txt").read_text() == f"{vm.server_id}\n"
    assert paths.known_hosts_file().read_text() == known_hosts  # strict: nothing added


def test_ansible_refuses_a_vm_whose_host_key_changed(
    vm_pool: VMPool, vm: LocalVM, keypair: ssh.KeyPair, tmp_path: Path
) -> None:
    vm_pool.regenerate_host_key(vm.server_id)
    options = shlex.join(ssh.ssh_options(port=vm.port, key=keypair.private_key))
    proc = subprocess.run(
        [str(BIN / "ansible"), "all", "-i", f"{vm.address},", "-m", "ping",
         "-u", vm.user, "-e", f"ansible_port={vm.port} ansible_python_interpreter={sys.executable}",
         "--ssh-common-args", options],
        cwd=tmp_path, env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "UNREACHABLE" in proc.stdout
    assert "Host key verification failed" in proc.stdout + proc.stderr


# --- delete -------------------------------------------------------------------------------


def test_delete_stops_sshd_and_every_process_started_through_it(
    vm_pool: VMPool, vm: LocalVM, keypair: ssh.KeyPair
) -> None:
    pid = int(on(vm, keypair, "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $!"))
    # $! is the forked shell until it has exec'd setsid and sleep (same pid, no fork).
    wait_until(lambda: Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x001000\x00" or None,
               what="the background sleep", timeout=5)
    # A daemon that ignores SIGTERM is killed after the grace period.
    loop = "setsid sh -c 'trap \"\" TERM; while :; do sleep 1; done'"
    stubborn = int(on(vm, keypair, f"{loop} >/dev/null 2>&1 </dev/null & echo $!"))
    assert alive(stubborn)
    vm_pool.delete(vm.server_id)
    wait_until(lambda: True if not alive(pid) and not alive(stubborn) else None,
               what="the VM's processes to be gone", timeout=5)
    assert not vm.root.exists()
    assert not listening(vm.address, vm.port)
    # Nothing of the VM is left, not even the children the stubborn loop kept forking.
    assert processes_with(f"MICADO_VM_ROOT={vm.root}") == []
    with pytest.raises(NotFound):
        vm_pool.vm(vm.server_id)
    vm_pool.delete(vm.server_id)  # deleting twice is harmless
    assert vm_pool.vms() == []


# --- the OpenStack emulator's hooks -----------------------------------------------------------


def test_pool_serves_the_openstack_emulator_hooks(vm_pool: VMPool, keypair: ssh.KeyPair) -> None:
    from micado.launcher.base import LaunchSpec, cloud_init_user_data
    from micado.config.credentials import PasswordAuth
    from micado.launcher.openstack import OpenStackLauncher
    from micado.testing.openstack import OpenStackEmulator

    pool = [random_loopback_address()]
    hooks = {"on_boot": vm_pool.boot, "on_address": vm_pool.set_address, "on_delete": vm_pool.delete}
    with OpenStackEmulator(boot_delay=0.01, floating_ip_pool=pool, **hooks) as cloud:
        login = cloud.login
        launcher = OpenStackLauncher(PasswordAuth(login["username"], login["password"]),
                                     auth_url=login["auth_url"], project_id=login["project_id"])
        spec = {"image": "ubuntu-22.04", "flavor": "m1.small", "network": "private"}
        # Bad user data: the boot hook raises, Nova reports the server in ERROR with its text.
        with pytest.raises(LaunchError, match="not a #cloud-config"):
            launcher.launch(LaunchSpec(**spec, user_data="#!/bin/sh\n"), timeout=10)
        assert vm_pool.vms() == []
        launched = launcher.launch(
            LaunchSpec(**spec, user_data=cloud_init_user_data(keypair.public_key)), timeout=10
        )
        vm = vm_pool.vm(launched.server_id)
        assert (vm.address, vm.authorized_keys) == (launched.ip, (keypair.public_key,))
        ssh.wait_for_ssh(
            launched.ip, port=vm.port, user=vm.user, key=keypair.private_key, timeout=20
        )
        assert on(vm, keypair, "echo $MICADO_VM_ID") == f"{launched.server_id}\n"
        launcher.delete(launched, timeout=10)
        with pytest.raises(NotFound):
            vm_pool.vm(launched.server_id)
        assert not vm.root.exists()
        assert not listening(launched.ip, vm.port)


# --- the owner dies: nothing of its VMs is left -----------------------------------------------

_OWNER = """
import json, sys, time
from pathlib import Path
from micado.testing.vm import VMPool, free_port, random_loopback_address
pool = VMPool(Path(sys.argv[1]), ssh_port=free_port(), api_port=free_port())
user_data = "#cloud-config\\nssh_authorized_keys: [" + json.dumps(sys.argv[2]) + "]\\n"
pool.boot({"id": "orphan-vm", "user_data": user_data})
pool.set_address("orphan-vm", random_loopback_address())
vm = pool.vm("orphan-vm")
print(json.dumps({"address": vm.address, "port": vm.port, "user": vm.user, "pid": vm.pid,
                  "marker": pool.marker}), flush=True)
time.sleep(120)  # killed long before
"""


def test_a_dead_owner_leaves_no_sshd_and_no_vm_process(tmp_path: Path, keypair: ssh.KeyPair) -> None:
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path / "vms"), keypair.public_key],
                             stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(owner.stdout.readline())
        address, port, user = started["address"], started["port"], started["user"]
        ssh.wait_for_ssh(address, port=port, user=user, key=keypair.private_key, timeout=20)
        daemon = int(ssh.run(address, "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $!",
                             port=port, user=user, key=keypair.private_key))
        marker = "=".join(*started["marker"].items())
        # (sshd's own environment block holds its process title: the watchdog knows its pid.)
        wait_until(lambda: daemon in processes_with(marker) or None, what="the marked daemon", timeout=5)
    finally:
        owner.kill()  # no cleanup code of the owner runs
        owner.wait(timeout=10)
    wait_until(lambda: True if not processes_with(marker) else None,
               what="the dead owner's VM processes to be stopped", timeout=15)
    assert not alive(started["pid"])
    assert not alive(daemon)
    assert not listening(address, port)


def test_the_watchdog_ends_with_the_pool(tmp_path: Path, keypair: ssh.KeyPair) -> None:
    from micado.testing.vm import free_port

    with VMPool(tmp_path / "vms", ssh_port=free_port(), api_port=free_port()) as pool:
        user_data = f"#cloud-config\nssh_authorized_keys: ['{keypair.public_key}']\n"
        pool.boot({"id": "vm-w", "user_data": user_data})
        pool.set_address("vm-w", random_loopback_address())
        watchdog = pool._watchdog
        assert watchdog is not None
        assert watchdog.poll() is None
    assert watchdog.poll() is not None
    assert pool._watchdog is None
