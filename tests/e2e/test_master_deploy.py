"""Reaching the master: ``deploy`` on a host the user has, ``credentials()`` and ``master info``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import InvalidArgument, MicadoException
from hosts import deploy_kwargs
from paths import ADTS



def micado(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "micado", *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)




def _state(path: Path) -> tuple[bytes, int, int]:
    info = path.stat()
    return path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_mtime_ns


def test_deploy_installs_on_a_host_and_destroy_leaves_the_machine(micado_stack, host, user_key):
    before = _state(user_key)
    client = MicadoClient(launcher="openstack")
    events: list[tuple[str, str]] = []
    master_id = client.master.deploy(host=host, progress=lambda *event: events.append(event),
                                     **deploy_kwargs(micado_stack, user_key))
    assert master_id.startswith("host-")
    assert len(master_id) == 17
    stages = {stage for stage, _ in events}
    assert {"prepare", "ssh", "ansible", "certificate", "store", "done"} <= stages
    assert "launch" not in stages
    assert _state(user_key) == before  # read, never copied or changed
    assert micado_stack.cloud.servers == []  # no cloud was asked for anything
    info = client.master.info()
    assert info["launcher"] == "none"
    assert info["ip"] == host
    assert info["endpoint"].startswith(f"https://{host}:")
    from micado.config.store import MasterStore

    record = MasterStore().get(master_id)
    assert record.extra["deployed"] is True
    assert record.state == "ready"
    login = client.master.credentials()
    assert (login.user, login.password) == ("admin", record.micado_password)
    assert login.grafana_password == record.grafana_password
    assert login.grafana_password
    assert login.password not in repr(login)
    assert login.grafana_password not in repr(login)

    client.applications.create(app_id="stressng", file=ADTS / "stressng_nova.yaml")
    assert [app.id for app in client.applications.list()] == ["stressng"]

    again = MicadoClient(launcher="openstack")
    again.master.destroy(master_id)
    assert again.master.list() == []
    (vm,) = micado_stack.vms.vms()  # the machine is still there, still answering SSH
    assert vm.address == host
    ssh = subprocess.run(["ssh", "-F", "/dev/null", "-i", str(user_key), "-p", str(micado_stack.ssh_port),
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                          "-o", "BatchMode=yes", f"{micado_stack.vms.user}@{host}", "true"],
                         capture_output=True, timeout=30)
    assert ssh.returncode == 0, ssh.stderr
    assert not list((micado_stack.micado_cli_dir / "certs").iterdir())


def test_deploy_refuses_bad_arguments_all_at_once(micado_stack, tmp_path):
    client = MicadoClient(launcher="openstack")
    with pytest.raises(InvalidArgument) as caught:
        client.master.deploy(host="me@10.0.0.1", ssh_key=tmp_path / "nope", ssh_port=0)
    message = str(caught.value)
    assert "host" in message
    assert "ssh_key" in message
    assert "ssh_port" in message
    with pytest.raises(TypeError):
        client.master.deploy(host="127.0.0.1", ssh_key=tmp_path / "nope", image="ubuntu")  # type: ignore[call-arg]
    assert client.master.list() == []


def test_credentials_need_a_master():
    with pytest.raises(MicadoException, match="no master"):
        MicadoClient(launcher="openstack").master.credentials()


def test_deploy_and_info_from_the_command_line(micado_stack, host, user_key):
    options = deploy_kwargs(micado_stack, user_key)
    deployed = micado("--json", "master", "deploy", "--host", host, "--ssh-key", str(user_key),
                      "--ssh-user", options["ssh_user"], "--ssh-port", str(options["ssh_port"]),
                      "--api-port", str(options["api_port"]), "--remote-cert-path", options["remote_cert_path"],
                      env={"MICADO_PASSWORD": "a-long-web-password"})
    assert deployed.returncode == 0, deployed.stderr
    master_id = json.loads(deployed.stdout)["id"]
    assert "a-long-web-password" not in deployed.stdout + deployed.stderr

    shown = micado("master", "info", master_id)
    assert shown.returncode == 0
    assert f"id: {master_id}" in shown.stdout
    assert "a-long-web-password" not in shown.stdout
    assert "password" not in shown.stdout.replace("show-password", "")
    secret = micado("--json", "master", "info", master_id, "--show-password")
    data = json.loads(secret.stdout)
    assert data["micado_password"] == "a-long-web-password"
    assert data["grafana_password"]
    listed = micado("--json", "master", "list")
    assert "a-long-web-password" not in listed.stdout
    assert data["grafana_password"] not in listed.stdout
    assert micado("master", "info", "ghost").returncode == 2

    destroyed = micado("master", "destroy", master_id)
    assert destroyed.returncode == 0, destroyed.stderr
    assert len(micado_stack.vms.vms()) == 1  # never touched


def test_deploy_without_required_flags_is_a_usage_error(micado_stack):
    missing = micado("master", "deploy", "--host", "127.0.0.1")
    assert missing.returncode == 2
    assert "--ssh-key" in missing.stderr


@pytest.mark.parametrize("host, ssh_user, key_name, problems", [
    ("-oProxyCommand=true", "ubuntu", "id_ok", ["host must not begin with '-'"]),
    ("127.0.0.1", "-oProxyCommand=touch ran", "id_ok", ["ssh_user must not begin with '-'"]),
    ("127.0.0.1", "ubuntu", "-oProxyCommand=touch ran", ["ssh_key must not begin with '-'"]),
    ("127.0.0.1 -v", "ub untu", "id ok", ["host must not hold white space", "ssh_user must not hold white space",
                                          "ssh_key must not hold white space"]),
    ("127.0.0.1\x1bc\x07", "ubuntu\n", "id\x00ok", ["host must not hold control characters",
                                                       "ssh_user must not hold white space",
                                                       "ssh_key must not hold control characters"]),
], ids=["host-dash", "user-dash", "key-dash", "white-space", "control"])
def test_deploy_refuses_a_host_user_or_key_that_ssh_would_misread_before_anything_runs(
        keypair, tmp_path, monkeypatch, host, ssh_user, key_name, problems):
    monkeypatch.chdir(tmp_path)  # the key names are files here; "touch ran" would make tmp_path / "ran"
    marker = tmp_path / "ran"
    (tmp_path / "id_ok").write_text("a key\n")
    if "\x00" not in key_name:
        (tmp_path / key_name).write_text("a key\n")
    key = key_name
    client = MicadoClient(launcher="openstack")
    with pytest.raises(InvalidArgument) as caught:
        client.master.deploy(host=host, ssh_key=key, ssh_user=ssh_user, ssh_timeout=600)
    assert all(problem in str(caught.value) for problem in problems), caught.value
    assert client.master.list() == []
    if "\x00" not in host + ssh_user + key:  # the same through the command (argv cannot hold a NUL)
        started = time.monotonic()
        result = micado("master", "deploy", f"--host={host}", f"--ssh-key={key}", f"--ssh-user={ssh_user}")
        assert time.monotonic() - started < 20  # refused at once, not after the SSH timeout
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("micado: error: InvalidArgument: ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert all(problem in result.stderr for problem in problems)
    assert not marker.exists()
    assert client.master.list() == []


def test_create_refuses_a_dash_led_ssh_user_before_the_cloud_is_asked(keypair):
    with pytest.raises(InvalidArgument, match="ssh_user must not begin with '-': '-oProxyCommand=x'"):
        MicadoClient(launcher="openstack").master.create(
            auth_url="http://127.0.0.1:9/v3", project_id="p", image="i", flavor="f", network="n", keypair="k",
            ssh_user="-oProxyCommand=x")
