"""The OpenStack emulator keeps projects apart, as Nova, Neutron and Glance do, through the
real openstacksdk and the launcher: two projects of the emulator's own Keystone, and
services behind another Keystone (a second emulator's) that validates every token."""

from __future__ import annotations

import subprocess
import sys

import openstack.connection
import openstack.exceptions
import pytest
import requests

from micado.config.credentials import PasswordAuth
from micado.exceptions import LaunchError
from micado.launcher.base import LaunchSpec
from micado.launcher.openstack import OpenStackLauncher
from micado.testing.openstack import OpenStackEmulator
from micado.testing.openstack.identity.models import Account


def sdk(login: dict) -> openstack.connection.Connection:
    """An openstacksdk connection logged in with ``login`` (a project-scoped password login)."""
    return openstack.connection.Connection(
        auth_url=login["auth_url"], project_id=login["project_id"], username=login["username"],
        password=login["password"], user_domain_name="Default", region_name="RegionOne", timeout=5)


def launcher_for(login: dict) -> OpenStackLauncher:
    return OpenStackLauncher(PasswordAuth(login["username"], login["password"]), auth_url=login["auth_url"],
                             project_id=login["project_id"], request_timeout=5)


def token_for(login: dict) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": login["username"], "domain": {"name": "Default"}, "password": login["password"]}}},
        "scope": {"project": {"id": login["project_id"]}}}}
    answer = requests.post(f"{login['auth_url']}/auth/tokens", json=body, timeout=5)
    assert answer.status_code == 201
    return answer.headers["X-Subject-Token"]


@pytest.fixture
def project_b(openstack_cloud: OpenStackEmulator) -> Account:
    """A second project of the emulator's Keystone, with its own network, key pair and group."""
    cloud = openstack_cloud
    account = cloud.add_project("project-b")
    cloud.add_network("private-b", cidr="10.2.0.0/24", project_id=account.project_id)
    cloud.add_keypair("micado-key", project_id=account.project_id)
    cloud.add_security_group("all", project_id=account.project_id)
    return account


def b_spec(**overrides: str) -> LaunchSpec:
    fields = dict(image="ubuntu-22.04", flavor="m1.small", network="private-b", keypair="micado-key",
                  security_group="all")
    fields.update(overrides)
    return LaunchSpec(**fields)


def test_a_project_never_sees_nor_deletes_another_projects_servers_and_floating_ips(openstack_cloud, project_b):
    cloud = openstack_cloud
    login_b = project_b.login(cloud.login["auth_url"], "RegionOne")
    vm = launcher_for(login_b).launch(b_spec(), timeout=10)
    [server] = cloud.servers
    assert (server["tenant_id"], server["user_id"]) == (project_b.project_id, project_b.user_id)
    [fip] = cloud.floating_ips
    assert fip["project_id"] == project_b.project_id

    a = sdk(cloud.login)
    assert list(a.compute.servers()) == []
    assert list(a.network.ips()) == []
    assert [p.id for p in a.network.ports()] == []
    with pytest.raises(openstack.exceptions.ResourceNotFound):
        a.compute.get_server(vm.server_id)
    with pytest.raises(openstack.exceptions.ResourceNotFound):
        a.network.delete_ip(vm.floating_ip_id, ignore_missing=False)
    removal = launcher_for(cloud.login).delete(vm.server_id, floating_ip_id=vm.floating_ip_id,
                                               floating_ip_allocated=True, timeout=10)
    assert not removal.server_found
    assert not removal.floating_ip_released
    assert cloud.leftovers()["servers"] == [vm.server_id]  # still there: it is B's

    b = sdk(login_b)
    assert [s.id for s in b.compute.servers()] == [vm.server_id]
    assert [ip.id for ip in b.network.ips()] == [vm.floating_ip_id]
    launcher_for(login_b).delete(vm, timeout=10)
    assert cloud.leftovers() == {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}


def test_neutron_shows_a_project_its_own_resources_and_the_shared_networks(openstack_cloud, project_b):
    cloud = openstack_cloud
    login_b = project_b.login(cloud.login["auth_url"], "RegionOne")
    a, b = sdk(cloud.login), sdk(login_b)
    assert sorted(n.name for n in a.network.networks()) == ["private", "public"]
    assert sorted(n.name for n in b.network.networks()) == ["private-b", "public"]  # public is external
    assert sorted(s.name for s in b.network.subnets()) == ["private-b-subnet", "public-subnet"]
    groups = list(b.network.security_groups())
    assert sorted(g.name for g in groups) == ["all", "default"]  # default: made on first use, as Neutron does
    assert {g.project_id for g in groups} == {project_b.project_id}
    assert [k.name for k in b.compute.keypairs()] == ["micado-key"]
    assert [i.name for i in b.image.images()] == ["ubuntu-22.04"]  # public
    private = cloud.add_image("a-only", project_id=cloud.project_id, visibility="private")
    assert private not in [i.id for i in b.image.images()]
    assert private in [i.id for i in a.image.images()]
    with pytest.raises(LaunchError, match=r"unknown network 'private'; available: private-b, public"):
        launcher_for(login_b).launch(b_spec(network="private"), timeout=10)
    assert cloud.servers == []


def test_a_revoked_token_stops_working_at_once(openstack_cloud):
    cloud = openstack_cloud
    token = token_for(cloud.login)
    headers = {"X-Auth-Token": token}
    url = f"{cloud.url}/compute/v2.1/flavors"
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    revoke = requests.delete(f"{cloud.login['auth_url']}/auth/tokens",
                             headers={**headers, "X-Subject-Token": token}, timeout=5)
    assert revoke.status_code == 204
    assert requests.get(url, headers=headers, timeout=5).status_code == 401


def test_services_need_a_project_scoped_token(openstack_cloud):
    login = openstack_cloud.login
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": login["username"], "domain": {"name": "Default"}, "password": login["password"]}}}}}
    answer = requests.post(f"{login['auth_url']}/auth/tokens", json=body, timeout=5)
    assert answer.status_code == 201
    assert "project" not in answer.json()["token"]
    refused = requests.get(f"{openstack_cloud.url}/network/v2.0/networks",
                           headers={"X-Auth-Token": answer.headers["X-Subject-Token"]}, timeout=5)
    assert refused.status_code == 401
    assert refused.json()["NeutronError"]["message"] == "Unable to determine service tenancy."


def test_behind_another_keystone_the_token_says_whose_resources_and_revocation_is_immediate(openstack_cloud):
    identity = openstack_cloud  # only its Keystone is used: it issues and validates the tokens
    other = identity.add_project("other")
    with OpenStackEmulator(keystone_url=identity.login["auth_url"], project_id=identity.project_id,
                           boot_delay=0.01) as services:
        assert services.login["project_id"] == identity.project_id
        token = token_for(identity.login)
        compute = f"{services.url}/compute/v2.1/servers"
        body = {"server": {"name": "mine", "imageRef": next(iter(services.images_by_id)), "flavorRef": "1",
                           "key_name": "micado-key", "networks": [{"uuid": services.find_network("private")["id"]}],
                           "security_groups": [{"name": "all"}]}}
        created = requests.post(compute, json=body, headers={"X-Auth-Token": token}, timeout=5)
        assert created.status_code == 202, created.text  # the seeded resources are the token's project's
        [server] = services.servers
        assert (server["tenant_id"], server["user_id"]) == (identity.project_id, identity.user_id)

        theirs = {"X-Auth-Token": token_for(other.login(identity.login["auth_url"], "RegionOne"))}
        assert requests.get(f"{compute}/detail", headers=theirs, timeout=5).json()["servers"] == []
        assert requests.delete(f"{compute}/{server['id']}", headers=theirs, timeout=5).status_code == 404
        assert len(services.servers) == 1

        validations = len([r for r in identity.requests if r == ("GET", "/identity/v3/auth/tokens")])
        assert validations == len(services.requests) == 3  # one per service request: nothing is cached
        requests.delete(f"{identity.login['auth_url']}/auth/tokens",
                        headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=5)
        assert requests.get(f"{compute}/detail", headers={"X-Auth-Token": token}, timeout=5).status_code == 401


def test_the_state_never_imports_the_http_front_end():
    code = ("import sys, micado.testing.openstack.state, micado.testing.openstack.identity.external\n"
            "loaded = [m for m in sys.modules if m == 'werkzeug' or m.rsplit('.', 1)[-1] in "
            "('responses', 'urls', 'wsgi', 'server')]\n"
            "print(loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
