"""The OpenStack emulator itself: Keystone tokens, token checks by the services, Nova
microversions, the hooks, an external Keystone, and the standalone command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from micado.config.credentials import PasswordAuth
from micado.launcher.base import LaunchSpec
from micado.launcher.openstack import OpenStackLauncher
from micado.progress import wait_until
from micado.testing.openstack import OpenStackEmulator
from paths import ROOT



def password_body(login: dict, password: str | None = None) -> dict:
    return {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": login["username"], "domain": {"name": "Default"},
            "password": password or login["password"]}}},
        "scope": {"project": {"id": login["project_id"]}},
    }}


def get_token(cloud: OpenStackEmulator) -> str:
    response = requests.post(f"{cloud.login['auth_url']}/auth/tokens", json=password_body(cloud.login), timeout=5)
    assert response.status_code == 201
    assert {e["type"] for e in response.json()["token"]["catalog"]} == {"identity", "compute", "image", "network"}
    return response.headers["X-Subject-Token"]


def test_keystone_issues_validates_and_refuses_tokens(openstack_cloud):
    cloud = openstack_cloud
    url = f"{cloud.login['auth_url']}/auth/tokens"
    token = get_token(cloud)
    valid = requests.get(url, headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=5)
    assert valid.status_code == 200
    assert valid.json()["token"]["project"]["id"] == cloud.project_id
    unknown = requests.get(url, headers={"X-Auth-Token": token, "X-Subject-Token": "nope"}, timeout=5)
    assert unknown.status_code == 404
    refused = requests.post(url, json=password_body(cloud.login, "wrong"), timeout=5)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == 401
    cloud.faults.auth_failure = True
    assert requests.post(url, json=password_body(cloud.login), timeout=5).status_code == 401


def test_services_want_a_valid_token_but_version_documents_are_public(openstack_cloud):
    base = openstack_cloud.url
    assert requests.get(f"{base}/compute/v2.1/flavors", timeout=5).status_code == 401
    bogus = requests.get(f"{base}/network/v2.0/networks", headers={"X-Auth-Token": "bogus"}, timeout=5)
    assert bogus.status_code == 401
    assert "NeutronError" in bogus.json()
    assert requests.get(f"{base}/image", timeout=5).json()["versions"][0]["status"] == "CURRENT"
    token = get_token(openstack_cloud)
    images = requests.get(f"{base}/image/v2/images", headers={"X-Auth-Token": token}, timeout=5)
    assert [i["name"] for i in images.json()["images"]] == ["ubuntu-22.04"]


def test_nova_answers_with_microversion_headers_and_refuses_unknown_ones(openstack_cloud):
    headers = {"X-Auth-Token": get_token(openstack_cloud)}
    url = f"{openstack_cloud.url}/compute/v2.1/flavors"
    ok = requests.get(url, headers={**headers, "OpenStack-API-Version": "compute 2.1"}, timeout=5)
    assert ok.headers["OpenStack-API-Version"] == "compute 2.1"
    assert ok.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    too_new = requests.get(url, headers={**headers, "OpenStack-API-Version": "compute 2.99"}, timeout=5)
    assert too_new.status_code == 406
    assert "maximum is 2.1" in too_new.json()["notAcceptable"]["message"]


def test_hooks_see_boot_address_and_delete():
    seen: list[tuple] = []
    with OpenStackEmulator(
        boot_delay=0.01,
        on_boot=lambda server: seen.append(("boot", server["name"], server["key_name"], server["user_data"])),
        on_address=lambda server_id, address: seen.append(("address", server_id, address)),
        on_delete=lambda server_id: seen.append(("delete", server_id)),
    ) as cloud:
        login = cloud.login
        launcher = OpenStackLauncher(PasswordAuth(login["username"], login["password"]),
                                     auth_url=login["auth_url"], project_id=login["project_id"])
        spec = LaunchSpec(image="ubuntu-22.04", flavor="m1.small", network="private", keypair="micado-key",
                          user_data="#cloud-config\n", name="MiCADO-Master-hooks")
        vm = launcher.launch(spec, timeout=10)
        launcher.delete(vm, timeout=10)
    assert seen == [
        ("boot", "MiCADO-Master-hooks", "micado-key", "#cloud-config\n"),
        ("address", vm.server_id, vm.ip),
        ("address", vm.server_id, None),
        ("delete", vm.server_id),
    ]


def test_services_can_trust_an_external_keystone(openstack_cloud):
    identity = openstack_cloud
    with OpenStackEmulator(keystone_url=identity.login["auth_url"]) as services:
        assert services.login["auth_url"] == identity.login["auth_url"]
        assert services.login["password"] is None
        token = get_token(identity)
        url = f"{services.url}/compute/v2.1/flavors"
        answer = requests.get(url, headers={"X-Auth-Token": token}, timeout=5)
        assert answer.status_code == 200
        assert answer.json()["flavors"]
        assert requests.get(url, headers={"X-Auth-Token": "forged"}, timeout=5).status_code == 401
    assert ("GET", "/identity/v3/auth/tokens") in identity.requests


def test_standalone_command_writes_ready_file_and_stops_on_sigterm(tmp_path):
    ready = tmp_path / "ready.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "micado.testing.openstack", "--port", "0", "--ready-file", str(ready),
         "--boot-delay", "0.01"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:

        def listening() -> bool | None:
            if process.poll() is not None:
                pytest.fail(f"the emulator exited: {process.stderr.read().decode()}")
            return True if ready.exists() else None

        wait_until(listening, what="the ready file", timeout=20)
        info = json.loads(ready.read_text())
        assert info["pid"] == process.pid
        assert info["security_group"] == "all"
        assert {"auth_url", "region", "project_id", "user_domain_name", "username", "password",
                "application_credential_id", "application_credential_secret",
                "image", "flavor", "network", "keypair"} <= set(info)
        assert ready.stat().st_mode & 0o077 == 0
        launcher = OpenStackLauncher(PasswordAuth(info["username"], info["password"]),
                                     auth_url=info["auth_url"], project_id=info["project_id"])
        spec = LaunchSpec(image=info["image"], flavor=info["flavor"], network=info["network"],
                          keypair=info["keypair"], security_group=info["security_group"])
        launcher.delete(launcher.launch(spec, timeout=10), timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, process.stderr.read().decode()


def test_floating_ip_updates_are_compare_and_swap_with_if_match(openstack_cloud):
    cloud = openstack_cloud
    fip_id = cloud.add_floating_ip()
    headers = {"X-Auth-Token": get_token(cloud)}
    url = f"{cloud.url}/network/v2.0/floatingips/{fip_id}"
    revision = requests.get(url, headers=headers, timeout=5).json()["floatingip"]["revision_number"]
    body = {"floatingip": {"port_id": None}}
    ok = requests.put(url, json=body, headers={**headers, "If-Match": f"revision_number={revision}"}, timeout=5)
    assert ok.status_code == 200
    assert ok.json()["floatingip"]["revision_number"] == revision + 1
    stale = requests.put(url, json=body, headers={**headers, "If-Match": f"revision_number={revision}"}, timeout=5)
    assert stale.status_code == 412
    assert stale.json()["NeutronError"]["type"] == "RevisionNumberConstraintFailed"
    assert requests.put(url, json=body, headers=headers, timeout=5).status_code == 200  # no If-Match: no check
