"""The OpenStack emulator and the local stack behind a real Keystone (the ``keystone`` package).

Keystone runs on 127.0.0.1 from the virtualenv ``sh scripts/keystone.sh`` makes (these
tests are skipped where it is absent); the emulator's services are in its catalog and
validate every token with it. Two users in two projects, driven through the real
keystoneauth1, openstacksdk and the launcher: each sees and deletes only its own.
"""

from __future__ import annotations

import json

import openstack.connection
import openstack.exceptions
import pytest
import requests
import real_keystone

from micado import MicadoClient
from micado.config.credentials import PasswordAuth
from micado.launcher.base import LaunchSpec
from micado.launcher.openstack import OpenStackLauncher
from micado.testing.openstack import OpenStackEmulator
from micado.testing.stack import LocalStack

CLEAN = {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}

pytestmark = [
    pytest.mark.stack,  # a Keystone server in a process of its own
    pytest.mark.skipif(
        not real_keystone.installed(),
        reason=f"no Keystone at {real_keystone.VENV}: run 'sh scripts/keystone.sh' to test behind a real one"),
]


@pytest.fixture(scope="module")
def keystone(tmp_path_factory: pytest.TempPathFactory):
    with real_keystone.RealKeystone(tmp_path_factory.mktemp("keystone")) as server:
        yield server


@pytest.fixture(scope="module")
def alice(keystone) -> dict[str, str]:
    return keystone.add_user("project-a", "alice")


@pytest.fixture(scope="module")
def bob(keystone) -> dict[str, str]:
    return keystone.add_user("project-b", "bob")


@pytest.fixture
def cloud(keystone, alice):
    """The emulator behind the Keystone, seeded for alice's project, in the catalog."""
    with OpenStackEmulator(keystone_url=keystone.url, project_id=alice["project_id"], boot_delay=0.02) as emulator:
        services = keystone.register(emulator.endpoints)
        try:
            yield emulator
        finally:
            keystone.unregister(services)


def launcher_for(login: dict[str, str]) -> OpenStackLauncher:
    return OpenStackLauncher(PasswordAuth(login["username"], login["password"]), auth_url=login["auth_url"],
                             project_id=login["project_id"], request_timeout=10)


def sdk(login: dict[str, str]) -> openstack.connection.Connection:
    return openstack.connection.Connection(
        auth_url=login["auth_url"], project_id=login["project_id"], username=login["username"],
        password=login["password"], user_domain_name="Default", region_name="RegionOne", timeout=10)


def test_the_launcher_finds_the_seeded_resources_and_projects_stay_apart(cloud, alice, bob):
    seeded = cloud.seeded
    spec = LaunchSpec(**{k: seeded[k] for k in ("image", "flavor", "network", "keypair", "security_group")})
    vm = launcher_for(alice).launch(spec, timeout=20)
    [server] = cloud.servers
    assert (server["tenant_id"], server["user_id"]) == (alice["project_id"], alice["user_id"])  # Keystone's ids

    theirs = sdk(bob)
    assert list(theirs.compute.servers()) == []
    assert list(theirs.network.ips()) == []
    assert sorted(n.name for n in theirs.network.networks()) == ["public"]  # only the external one is shared
    with pytest.raises(openstack.exceptions.ResourceNotFound):
        theirs.compute.delete_server(vm.server_id, ignore_missing=False)
    with pytest.raises(openstack.exceptions.ResourceNotFound):
        theirs.network.delete_ip(vm.floating_ip_id, ignore_missing=False)
    assert cloud.leftovers()["servers"] == [vm.server_id]

    removal = launcher_for(alice).delete(vm, timeout=20)
    assert removal.server_found
    assert removal.floating_ip_released
    assert cloud.leftovers() == CLEAN


def test_a_token_revoked_in_keystone_stops_working_at_once(cloud, keystone, alice):
    token = keystone.token(alice["username"], alice["password"], project_id=alice["project_id"])
    headers = {"X-Auth-Token": token}
    networks = f"{cloud.endpoints['network']}/v2.0/networks"
    assert requests.get(networks, headers=headers, timeout=10).status_code == 200
    revoked = requests.delete(f"{keystone.url}/auth/tokens", headers={**headers, "X-Subject-Token": token}, timeout=10)
    assert revoked.status_code == 204
    refused = requests.get(networks, headers=headers, timeout=10)
    assert refused.status_code == 401
    assert "NeutronError" in refused.json()


def test_the_local_stack_creates_and_destroys_a_master_with_the_users_own_credentials(
        keystone, alice, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    credentials = tmp_path / "alice.yml"
    credentials.write_text(
        "resource:\n- type: nova\n  auth_data:\n"
        f"    username: {json.dumps(alice['username'])}\n    password: {json.dumps(alice['password'])}\n"
        f"    domain_name: Default\n    project_id: {alice['project_id']}\n")
    credentials.chmod(0o600)
    with LocalStack(tmp_path / "stack", keystone_url=keystone.url, project_id=alice["project_id"],
                    credentials_file=credentials) as stack:
        services = keystone.register(stack.cloud.endpoints)
        try:
            for name, value in stack.environment.items():
                monkeypatch.setenv(name, value)
            assert stack.create_kwargs["auth_url"] == keystone.url
            client = MicadoClient(launcher="openstack")
            master_id = client.master.create(**stack.create_kwargs)
            [server] = stack.cloud.servers
            assert server["id"] == master_id
            assert server["tenant_id"] == alice["project_id"]
            client.master.destroy()
            assert stack.cloud.leftovers() == CLEAN
        finally:
            keystone.unregister(services)
