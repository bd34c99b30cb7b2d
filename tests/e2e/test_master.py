"""Use-cases 1 and 2 on the local MiCADO stack: the real lifecycle, through the public API only.

Every create below goes through openstacksdk/novaclient to the OpenStack emulator, real
``ssh`` to a local sshd "VM", real ``ansible-playbook``, and verified TLS to the
submitter emulator the play starts on the VM.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import (
    CredentialsError,
    InstallError,
    InvalidArgument,
    LaunchError,
    MasterNotFound,
    MicadoTimeout,
)
from micado.testing.stack import LocalStack

from loopback import directory_server
from paths import ADTS

CLEAN = {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Iterator[Path]:
    """A HOME of our own, to prove nothing is written there (no ~/.ssh, no SDK caches)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield home
    assert sorted(path.name for path in home.iterdir()) == []


def stack_with(monkeypatch, tmp_path, **options) -> LocalStack:
    stack = LocalStack(tmp_path / "stack", **options).start()
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    return stack


def assert_nothing_left(stack: LocalStack, client: MicadoClient) -> None:
    assert stack.cloud.leftovers() == CLEAN
    assert client.master.list() == []
    certs = stack.micado_cli_dir / "certs"
    assert not certs.exists() or list(certs.iterdir()) == []
    assert stack.vms.vms() == []


def exercise_applications(client: MicadoClient) -> None:
    assert client.master.api.verify == client.master.info()["cert_path"]  # TLS checked against the master's cert
    app = client.applications.create(app_id="stressng", file=ADTS / "stressng_nova.yaml")
    assert [a.id for a in client.applications.list()] == ["stressng"]
    assert client.applications.get("stressng").adaptors
    app.update(file=ADTS / "stressng_ec2_latest.yaml", params={"replicas": 2})
    app.delete()
    assert client.applications.list() == []


def test_use_case_1_create_use_destroy(micado_stack, home):
    client = MicadoClient(launcher="openstack")
    events: list[tuple[str, str]] = []
    master_id = client.master.create(progress=lambda stage, message: events.append((stage, message)),
                                     **micado_stack.create_kwargs)
    assert master_id == micado_stack.cloud.servers[0]["id"]
    assert micado_stack.cloud.servers[0]["name"].startswith("MiCADO-Master-")
    stages = [stage for stage, _ in events]
    for stage in ("prepare", "launch", "ssh", "ansible", "api", "certificate", "store", "done"):
        assert stage in stages
    assert any("Start the TOSCA Submitter" in message for stage, message in events if stage == "ansible")
    assert set(client.master.timings) >= {"launch", "ssh", "ansible"}

    exercise_applications(client)
    record = client.master.info()
    assert record["id"] == master_id
    assert "micado_password" not in record
    assert "password" not in repr(client.master).lower()
    from micado.config.store import MasterStore

    secret = MasterStore().get(master_id).micado_password
    page = client.master._repr_html_()
    assert master_id in page
    assert "<table>" in page
    assert secret not in page
    assert secret not in repr(client.master)

    client.applications.create(app_id="left-running", file=ADTS / "nginx_nova.yaml")
    client.master.destroy()
    assert_nothing_left(micado_stack, client)
    assert not (micado_stack.micado_cli_dir / "work" / master_id).exists()


def test_web_password_is_random_strong_and_never_stored_in_plaintext(micado_stack):
    client = MicadoClient(launcher="openstack")
    client.master.create(**micado_stack.create_kwargs)
    try:
        from micado.config.store import MasterStore
        from micado.testing.playbook import GRAFANA_PASSWORD_FILE

        record = MasterStore().get(client.master.id)
        assert record.micado_password != "admin"
        assert len(record.micado_password) >= 16
        # The release's Grafana default ("secret") is replaced by a random password, kept encrypted.
        vm_root = micado_stack.vms.vms()[0].root
        assert (vm_root / GRAFANA_PASSWORD_FILE).read_text() == record.grafana_password
        assert record.grafana_password != "secret"
        assert len(record.grafana_password) >= 16
        assert record.extra["micado_version"] == "v0.12.6"
        assert record.extra["micado_layout"] == "0.12"
        for path in micado_stack.micado_cli_dir.rglob("*"):
            if path.is_file():
                assert record.micado_password.encode() not in path.read_bytes(), path
                assert record.grafana_password.encode() not in path.read_bytes(), path
    finally:
        client.master.destroy()


def test_the_default_release_comes_from_the_release_url_and_takes_the_web_login(micado_stack):
    """create() without playbook= fetches v0.12.6 (here: the stack's mirror serves the stand-in)."""
    assert "playbook" not in micado_stack.create_kwargs
    assert "micado_version" not in micado_stack.create_kwargs
    client = MicadoClient(launcher="openstack")
    client.master.create(**micado_stack.create_kwargs, micado_user="researcher",
                         micado_password="Ch0sen-by-the-user!",
                         settings={"enable_occopus": True, "web_session_timeout": 1200})
    try:
        import requests

        from micado.testing.playbook import SETTINGS_FILE

        cached = micado_stack.micado_cli_dir / "playbooks"
        assert [path.name for path in cached.iterdir() if path.name.startswith("v0.12.6")]
        url = client.master.endpoint + "v2.0/applications/"
        cert = client.master.info()["cert_path"]
        assert requests.get(url, auth=("researcher", "Ch0sen-by-the-user!"), verify=cert, timeout=10).ok
        assert requests.get(url, auth=("admin", "admin"), verify=cert, timeout=10).status_code == 401
        vm_root = micado_stack.vms.vms()[0].root
        assert json.loads((vm_root / SETTINGS_FILE).read_text()) == {
            "enable_occopus": True, "enable_terraform": True, "web_session_timeout": 1200}
        assert (vm_root / "var/lib/micado/occopus").is_file()  # "when: enable_occopus" got a boolean
    finally:
        client.master.destroy()


def test_unknown_settings_are_refused_before_the_cloud_naming_the_known_ones(micado_stack):
    client = MicadoClient(launcher="openstack")
    with pytest.raises(InvalidArgument, match="enable_ocopus.*enable_occopus"):
        client.master.create(**micado_stack.create_kwargs, settings={"enable_ocopus": True})
    with pytest.raises(InvalidArgument, match="set by micado-client"):
        client.master.create(**micado_stack.create_kwargs, settings={"security": {}})
    assert micado_stack.cloud.servers == []
    assert_nothing_left(micado_stack, client)


ATTACH_AND_DESTROY = """
import json, sys
from micado import MicadoClient
client = MicadoClient(launcher="openstack")
client.master.attach(master_id=sys.argv[1])
apps = [app.id for app in client.applications.list()]
client.master.destroy()
print(json.dumps(apps))
"""

CREATE = """
import json, sys
from micado import MicadoClient
client = MicadoClient(launcher="openstack")
master_id = client.master.create(**json.loads(sys.argv[1]))
client.applications.create(app_id="stressng", file=sys.argv[2])
print(master_id)
"""


def test_use_case_2_attach_and_destroy_from_another_program(micado_stack):
    env = {**os.environ, **micado_stack.environment}
    created = subprocess.run(
        [sys.executable, "-c", CREATE, json.dumps(micado_stack.create_kwargs), str(ADTS / "stressng_nova.yaml")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert created.returncode == 0, created.stderr
    master_id = created.stdout.strip().splitlines()[-1]
    destroyed = subprocess.run(
        [sys.executable, "-c", ATTACH_AND_DESTROY, master_id], env=env, capture_output=True, text=True, timeout=300
    )
    assert destroyed.returncode == 0, destroyed.stderr
    assert json.loads(destroyed.stdout) == ["stressng"]
    assert micado_stack.cloud.leftovers() == CLEAN
    with pytest.raises(MasterNotFound):
        MicadoClient(launcher="openstack").master.attach(master_id=master_id)


@pytest.mark.parametrize("layout", ["0.9", "0.10"])
def test_the_older_playbook_layouts(monkeypatch, tmp_path, layout):
    stack = stack_with(monkeypatch, tmp_path, layout=layout)
    try:
        client = MicadoClient(launcher="openstack")
        client.master.create(**stack.create_kwargs, micado_user="someone", settings={"web_session_timeout": 90})
        assert client.master.info()["micado_user"] == "someone"
        exercise_applications(client)
        client.master.destroy()
        assert_nothing_left(stack, client)
    finally:
        stack.stop()


def test_playbook_downloaded_from_a_loopback_http_server(micado_stack, tmp_path):
    from micado.testing.playbook import build_tarball

    tarball = build_tarball("0.12", tmp_path)
    with directory_server(tarball.parent) as base:
        url = f"{base}/{tarball.name}"
        client = MicadoClient(launcher="openstack")
        client.master.create(**{**micado_stack.create_kwargs, "playbook": url})
        assert client.applications.list() == []
        client.master.destroy()
    assert micado_stack.cloud.leftovers() == CLEAN


def test_a_malicious_tarball_is_refused_before_any_cloud_resource(micado_stack, tmp_path):
    evil = tmp_path / "ansible-micado-evil.tar.gz"
    payload = tmp_path / "payload.yml"
    payload.write_text("- hosts: all\n")
    with tarfile.open(evil, "w:gz") as archive:
        archive.add(payload, arcname="ansible-micado-evil/micado-master.yml")
        archive.add(payload, arcname="ansible-micado-evil/../../escaped.yml")
    client = MicadoClient(launcher="openstack")
    with pytest.raises(InstallError, match="escaped.yml"):
        client.master.create(**{**micado_stack.create_kwargs, "playbook": str(evil)})
    assert micado_stack.cloud.servers == []
    assert not (tmp_path.parent / "escaped.yml").exists()
    assert_nothing_left(micado_stack, client)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("failure", ["launch", "ssh", "ansible", "certificate"])
def test_a_failure_at_each_step_leaves_nothing_behind(monkeypatch, tmp_path, failure):
    stack = stack_with(monkeypatch, tmp_path, fail_playbook=failure == "ansible")
    try:
        kwargs = dict(stack.create_kwargs)
        expected: type[Exception] = LaunchError
        if failure == "launch":
            stack.cloud.faults.server_error = "No valid host was found. There are not enough hosts available."
        elif failure == "ssh":
            kwargs.update(ssh_port=closed_port(), ssh_timeout=2.0)
            expected = MicadoTimeout
        elif failure == "ansible":
            expected = InstallError
        else:
            kwargs.update(remote_cert_path="var/lib/micado/zorp/config/missing.pem")
            expected = InstallError
        client = MicadoClient(launcher="openstack")
        with pytest.raises(expected) as caught:
            client.master.create(**kwargs)
        assert caught.value.step == failure
        if failure == "launch":
            assert "No valid host" in str(caught.value)
        else:
            assert any(f"step '{failure}'" in note for note in getattr(caught.value, "__notes__", []))
        if failure == "ansible":
            assert "Injected failure" in str(caught.value)
            assert caught.value.log_path
            assert Path(caught.value.log_path).exists()
        assert_nothing_left(stack, client)
        assert client.master.id is None
    finally:
        stack.stop()


def test_destroy_of_a_master_whose_vm_vanished(micado_stack, caplog):
    client = MicadoClient(launcher="openstack")
    master_id = client.master.create(**micado_stack.create_kwargs)
    micado_stack.cloud.remove_server(master_id)
    with caplog.at_level(logging.WARNING, logger="micado"):
        client.master.destroy()
    assert any("no longer exists" in record.getMessage() for record in caplog.records)
    assert client.master.list() == []
    with pytest.raises(MasterNotFound):
        client.master.attach(master_id=master_id)


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"image": ""}, InvalidArgument, "image"),
        ({"auth_url": "keystone:5000"}, InvalidArgument, "auth_url"),
        ({"ssh_port": 0}, InvalidArgument, "ssh_port"),
        ({"micado_password": "short"}, InvalidArgument, "micado_password"),
        ({"micado_user": "a b"}, InvalidArgument, "micado_user"),
        ({"project_id": None}, InvalidArgument, "project_id"),
        ({"playbook": "/no/such/playbook.tar.gz"}, InvalidArgument, "playbook"),
    ],
)
def test_bad_input_fails_before_any_cloud_request(micado_stack, change, error, message):
    before = len(micado_stack.cloud.requests)
    with pytest.raises(error, match=message):
        MicadoClient(launcher="openstack").master.create(**{**micado_stack.create_kwargs, **change})
    assert len(micado_stack.cloud.requests) == before
    assert micado_stack.cloud.servers == []


def test_missing_credentials_fail_before_any_cloud_request(micado_stack):
    (micado_stack.micado_cli_dir / "credentials-cloud-api.yml").unlink()
    with pytest.raises(CredentialsError, match="does not exist") as caught:
        MicadoClient(launcher="openstack").master.create(**micado_stack.create_kwargs)
    assert caught.value.step == "prepare"
    assert micado_stack.cloud.requests == [] or all("/v3" not in r[1] for r in micado_stack.cloud.requests)
    assert micado_stack.cloud.servers == []


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError], ids=["ctrl-c", "unexpected-error"])
def test_an_interruption_after_launch_is_undone(micado_stack, interrupt):
    def progress(stage: str, message: str) -> None:
        if stage == "ansible" and "TOSCA Submitter" in message:
            raise interrupt("stop right there")

    client = MicadoClient(launcher="openstack")
    with pytest.raises(interrupt) as caught:  # the caller's own exception comes back as it is
        client.master.create(progress=progress, **micado_stack.create_kwargs)
    assert any("step 'ansible'" in note and "was deleted" in note for note in caught.value.__notes__)
    assert_nothing_left(micado_stack, client)


def test_destroy_removes_the_vm_even_when_the_api_refuses(micado_stack):
    client = MicadoClient(launcher="openstack")
    client.master.create(**micado_stack.create_kwargs)
    client.applications.create(app_id="stressng", file=ADTS / "stressng_nova.yaml")
    client.master.api.session.auth = ("admin", "changed-on-the-master")
    events: list[tuple[str, str]] = []
    client.master.destroy(progress=lambda stage, message: events.append((stage, message)))
    assert any("applications not deleted" in message for _, message in events)
    assert_nothing_left(micado_stack, client)


OLD_PYTHON = "#!/bin/sh\necho /usr/bin/python3.7 3 7 17\n"  # what an Ubuntu 18.04-era image answers


def test_an_image_whose_python_ansible_cannot_use_is_refused_before_the_play(micado_stack):
    from micado.installer import target

    micado_stack.vms.image_programs = {"python3.13": OLD_PYTHON}  # found first, as Ansible's discovery does
    client = MicadoClient(launcher="openstack")
    stages: list[str] = []
    with pytest.raises(InvalidArgument) as refused:
        client.master.create(**micado_stack.create_kwargs, progress=lambda stage, _: stages.append(stage))
    message = str(refused.value)
    assert "ansible" not in stages and "ssh" in stages  # found over SSH, before the play
    need = target.required_target_python(target.ansible_core_version())
    assert "has Python 3.7.17 (/usr/bin/python3.7)" in message and "\n" not in message
    assert f"ansible-core installed here ({target.ansible_core_version()}) needs Python {need[0]}.{need[1]}" in message
    assert "Ubuntu 22.04" in message
    assert micado_stack.cloud.leftovers() == CLEAN  # the VM it was found on is gone
    assert client.master.list() == []


def test_the_python_each_ansible_core_needs_on_the_master():
    from micado.installer.target import required_target_python

    assert required_target_python("2.19.14") == (3, 8)
    assert required_target_python("2.21.5") == (3, 9)
    assert required_target_python("2.20.0rc1") == (3, 9)
    assert required_target_python("2.30.1") == (3, 9)  # newer than known: as the newest known
