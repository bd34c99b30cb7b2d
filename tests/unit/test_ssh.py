"""micado.installer.ssh against real sshd "VMs" (micado.testing.vm) on loopback."""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from micado.config import paths
from micado.exceptions import InstallError, InvalidArgument, MicadoTimeout
from micado.installer import ssh
from micado.testing.vm import LocalVM, VMPool, free_port, random_loopback_address


def tree_snapshot(folder: Path) -> dict[str, tuple[int, str]] | None:
    """Every file under ``folder`` with its mode and content hash; None if it is absent."""
    if not folder.exists():
        return None
    result = {}
    for path in sorted(folder.rglob("*")):
        data = path.read_bytes() if path.is_file() else b""
        digest = hashlib.sha256(data).hexdigest()
        result[str(path.relative_to(folder))] = (path.stat().st_mode, digest)
    return result


@pytest.fixture
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A MiCADO dir and a HOME of their own; yields HOME, whose .ssh must never appear."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MICADO_CLI_DIR", str(tmp_path / "micado-cli"))
    return home


@pytest.fixture
def keypair(client_env: Path) -> ssh.KeyPair:
    return ssh.ensure_keypair()


def cloud_config(*keys: str) -> str:
    return "#cloud-config\nssh_authorized_keys:\n" + "".join(f"  - {key}\n" for key in keys)


@pytest.fixture
def vm(vm_pool: VMPool, keypair: ssh.KeyPair) -> LocalVM:
    """A running VM that authorises the client's key."""
    vm_pool.boot({"id": "vm-ssh", "user_data": cloud_config(keypair.public_key)})
    vm_pool.set_address("vm-ssh", random_loopback_address())
    return vm_pool.vm("vm-ssh")


def connect(vm: LocalVM, keypair: ssh.KeyPair) -> dict:
    return {"port": vm.port, "user": vm.user, "key": keypair.private_key}


# --- key pair ---------------------------------------------------------------------------


def test_keypair_is_ecdsa_pem_0600_with_openssh_public_key(keypair: ssh.KeyPair) -> None:
    assert keypair.private_key == paths.ssh_private_key()
    assert stat.S_IMODE(keypair.private_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.ssh_dir().stat().st_mode) == 0o700
    assert keypair.private_key.read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    assert keypair.public_key.startswith("ecdsa-sha2-nistp256 AAAA")
    assert keypair.public_key.endswith(" micado-client")
    assert "\n" not in keypair.public_key
    assert paths.ssh_public_key().read_text() == keypair.public_key + "\n"
    # OpenSSH itself loads the private key and derives the same public key.
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(keypair.private_key)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()
    assert derived[:2] == keypair.public_key.split()[:2]


def test_keypair_is_reused_and_repaired(keypair: ssh.KeyPair) -> None:
    pem = keypair.private_key.read_bytes()
    assert ssh.ensure_keypair() == keypair
    paths.ssh_public_key().unlink()
    keypair.private_key.chmod(0o644)
    again = ssh.ensure_keypair()
    assert again == keypair
    assert keypair.private_key.read_bytes() == pem
    assert stat.S_IMODE(keypair.private_key.stat().st_mode) == 0o600
    assert paths.ssh_public_key().read_text() == keypair.public_key + "\n"


def test_keypair_made_concurrently_is_one_key(client_env: Path) -> None:
    barrier = threading.Barrier(6)

    def make() -> ssh.KeyPair:
        barrier.wait(timeout=10)
        return ssh.ensure_keypair()

    with ThreadPoolExecutor(6) as pool:
        pairs = list(pool.map(lambda _: make(), range(6)))
    assert len(set(pairs)) == 1
    assert sorted(p.name for p in paths.ssh_dir().iterdir()) == ["id_ecdsa", "id_ecdsa.pub"]


def test_unreadable_private_key_is_a_typed_error_naming_the_file(client_env: Path) -> None:
    paths.ensure_dir(paths.ssh_dir())
    paths.ssh_private_key().write_text("not a key\n")
    with pytest.raises(InstallError, match=str(paths.ssh_private_key())):
        ssh.ensure_keypair()


# --- options ----------------------------------------------------------------------------


def test_ssh_options_isolate_ssh_from_the_user_config(client_env: Path, tmp_path: Path) -> None:
    key = tmp_path / "a key"
    options = ssh.ssh_options(port=2222, key=key)
    assert options[:2] == ["-F", "/dev/null"]
    settings = dict(value.split("=", 1) for value in options[3::2])
    assert options[2::2] == ["-o"] * len(settings)
    assert settings["StrictHostKeyChecking"] == "yes"
    assert settings["UserKnownHostsFile"] == str(paths.known_hosts_file())
    assert settings["GlobalKnownHostsFile"] == "/dev/null"
    assert settings["IdentitiesOnly"] == "yes"
    assert settings["IdentityFile"] == f'"{key}"'  # quoted: the path has a blank
    assert settings["BatchMode"] == "yes"
    assert settings["Port"] == "2222"
    assert "ConnectTimeout" in settings
    assert "ServerAliveInterval" in settings
    loose_options = ssh.ssh_options(port=22, key=key, strict=False)
    loose = dict(value.split("=", 1) for value in loose_options[3::2])
    assert loose["StrictHostKeyChecking"] == "accept-new"
    for port in (0, 70000, "22", True):
        with pytest.raises(InvalidArgument, match="port"):
            ssh.ssh_options(port=port, key=key)  # type: ignore[arg-type]


# --- wait_for_ssh, run, strict checking ----------------------------------------------------


def test_wait_for_ssh_records_the_host_key_then_run_works(
    vm_pool: VMPool, vm: LocalVM, keypair: ssh.KeyPair
) -> None:
    known_hosts = paths.known_hosts_file()
    # A stale entry for the same address and port (floating IPs get reused) is replaced.
    paths.ensure_dir(known_hosts.parent)
    stale = subprocess.run(["ssh-keygen", "-y", "-f", str(keypair.private_key)],
                           capture_output=True, text=True, timeout=30, check=True).stdout.split()
    known_hosts.write_text(
        f"[{vm.address}]:{vm.port} {stale[0]} {stale[1]}\nother.example ssh-ed25519 AAAAC3\n"
    )
    events: list[tuple[str, str]] = []
    started = time.monotonic()
    ssh.wait_for_ssh(vm.address, progress=lambda *event: events.append(event), timeout=20,
                     **connect(vm, keypair))
    assert time.monotonic() - started < 5
    host_key = (vm.host_key.parent / (vm.host_key.name + ".pub")).read_text().split()
    lines = known_hosts.read_text().splitlines()
    assert lines[0] == "other.example ssh-ed25519 AAAAC3"
    expected = [f"[{vm.address}]:{vm.port}", *host_key[:2]]
    assert [line.split()[:3] for line in lines[1:]] == [expected]
    assert {stage for stage, _ in events} == {"ssh"}
    # Sessions start in the VM root, with the VM's variables.
    output = ssh.run(vm.address, 'pwd; echo "$MICADO_VM_ID $MICADO_VM_API_PORT"',
                     **connect(vm, keypair)).splitlines()
    assert output == [str(vm.root), f"vm-ssh {vm_pool.api_port}"]


def test_changed_host_key_is_refused_afterwards(
    vm_pool: VMPool, vm: LocalVM, keypair: ssh.KeyPair
) -> None:
    ssh.wait_for_ssh(vm.address, timeout=20, **connect(vm, keypair))
    recorded = paths.known_hosts_file().read_text()
    vm_pool.regenerate_host_key(vm.server_id)
    with pytest.raises(InstallError, match="host key") as caught:
        ssh.run(vm.address, "true", **connect(vm, keypair))
    assert f"{vm.address}:{vm.port}" in str(caught.value)
    with pytest.raises(InstallError, match="host key"):
        ssh.fetch_file(vm.address, "/etc/hostname", vm.root.parent / "x", **connect(vm, keypair))
    assert paths.known_hosts_file().read_text() == recorded
    # Forgetting the host and waiting again trusts the new key.
    ssh.forget_host(vm.address, vm.port)
    assert vm.address not in paths.known_hosts_file().read_text()
    ssh.wait_for_ssh(vm.address, timeout=20, **connect(vm, keypair))
    assert ssh.run(vm.address, "echo ok", **connect(vm, keypair)) == "ok\n"


def test_unknown_host_is_refused_without_wait_for_ssh(vm: LocalVM, keypair: ssh.KeyPair) -> None:
    with pytest.raises(InstallError, match="host key"):
        ssh.run(vm.address, "true", **connect(vm, keypair))


def test_run_failure_and_timeout_are_typed(vm: LocalVM, keypair: ssh.KeyPair) -> None:
    ssh.wait_for_ssh(vm.address, timeout=20, **connect(vm, keypair))
    with pytest.raises(InstallError, match=r"exit code 3.*went wrong"):
        ssh.run(vm.address, "echo went wrong >&2; exit 3", **connect(vm, keypair))
    started = time.monotonic()
    with pytest.raises(MicadoTimeout, match="sleep 30"):
        ssh.run(vm.address, "sleep 30", timeout=0.5, **connect(vm, keypair))
    assert time.monotonic() - started < 5


def test_ssh_never_ready_times_out_within_the_deadline(keypair: ssh.KeyPair) -> None:
    address = random_loopback_address()
    port = free_port(address)  # nothing listens there
    started = time.monotonic()
    with pytest.raises(MicadoTimeout) as caught:
        ssh.wait_for_ssh(address, port=port, key=keypair.private_key, timeout=1.5)
    assert 1.5 <= time.monotonic() - started < 3.5
    assert f"{address}:{port}" in str(caught.value)
    assert "refused" in str(caught.value)
    assert caught.value.timeout == 1.5


def test_login_refused_times_out_naming_ssh_error(
    vm_pool: VMPool, keypair: ssh.KeyPair, tmp_path: Path
) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(other)],
                   check=True, timeout=30, stdin=subprocess.DEVNULL)
    other_public = (tmp_path / "other_key.pub").read_text()
    vm_pool.boot({"id": "vm-other", "user_data": cloud_config(other_public)})
    vm_pool.set_address("vm-other", random_loopback_address())
    vm = vm_pool.vm("vm-other")
    started = time.monotonic()
    with pytest.raises(MicadoTimeout, match="Permission denied") as caught:
        ssh.wait_for_ssh(vm.address, timeout=2, **connect(vm, keypair))
    assert time.monotonic() - started < 4.5
    assert f"{vm.address}:{vm.port}" in str(caught.value)
    # The key of a host we never logged in to is not trusted.
    known_hosts = paths.known_hosts_file()
    assert not known_hosts.exists() or vm.address not in known_hosts.read_text()
    assert not list(paths.ssh_dir().glob(".known_hosts.*"))


# --- fetch_file ---------------------------------------------------------------------------


def test_fetch_file_absolute_relative_and_missing(
    vm: LocalVM, keypair: ssh.KeyPair, tmp_path: Path
) -> None:
    ssh.wait_for_ssh(vm.address, timeout=20, **connect(vm, keypair))
    certificate = vm.root / "var/lib/micado/zorp/config/ssl.pem"
    certificate.parent.mkdir(parents=True)
    certificate.write_bytes(b"-----BEGIN CERTIFICATE-----\n\x00\xff binary\n")
    target = tmp_path / "certs" / "master.pem"
    # A relative path resolves in the login directory: the VM root.
    assert ssh.fetch_file(vm.address, "var/lib/micado/zorp/config/ssl.pem", target,
                          **connect(vm, keypair)) == target
    assert target.read_bytes() == certificate.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    odd = vm.root / "a dir" / "it's.txt"
    odd.parent.mkdir()
    odd.write_text("quoted\n")
    ssh.fetch_file(vm.address, str(odd), target, **connect(vm, keypair))
    assert target.read_text() == "quoted\n"
    with pytest.raises(InstallError, match="var/lib/missing.pem does not exist"):
        ssh.fetch_file(vm.address, "var/lib/missing.pem", target, **connect(vm, keypair))
    assert target.read_text() == "quoted\n"  # a failed copy leaves the old file alone
    assert sorted(p.name for p in target.parent.iterdir()) == ["master.pem"]


# --- ~/.ssh is never touched ----------------------------------------------------------------


def test_nothing_under_home_ssh_is_read_or_written(
    vm_pool: VMPool, client_env: Path, tmp_path: Path
) -> None:
    # ssh finds ~ through the password database, not $HOME: watch both.
    real_ssh = Path(pwd.getpwuid(os.geteuid()).pw_dir) / ".ssh"
    before = tree_snapshot(real_ssh)
    keypair = ssh.ensure_keypair()
    vm_pool.boot({"id": "vm-home", "user_data": cloud_config(keypair.public_key)})
    vm_pool.set_address("vm-home", random_loopback_address())
    vm = vm_pool.vm("vm-home")
    ssh.wait_for_ssh(vm.address, timeout=20, **connect(vm, keypair))
    ssh.run(vm.address, "true", **connect(vm, keypair))
    ssh.fetch_file(vm.address, "etc/ssh/sshd_config", tmp_path / "copy", **connect(vm, keypair))
    ssh.forget_host(vm.address, vm.port)
    assert not (client_env / ".ssh").exists()
    assert tree_snapshot(real_ssh) == before
    assert sorted(p.name for p in paths.ssh_dir().iterdir()) == [
        "id_ecdsa", "id_ecdsa.pub", "known_hosts", "known_hosts.lock"
    ]


def test_ssh_options_use_absolute_paths(
    client_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MICADO_CLI_DIR", "relative-cli")
    settings = dict(v.split("=", 1) for v in ssh.ssh_options(port=22, key=Path("k"))[3::2])
    assert settings["IdentityFile"] == str(tmp_path / "k")
    assert settings["UserKnownHostsFile"] == str(tmp_path / "relative-cli" / "ssh" / "known_hosts")
