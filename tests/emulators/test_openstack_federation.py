"""The emulator's Keystone federation route (OS-FEDERATION, protocol openid) over raw HTTP."""

from __future__ import annotations

import pytest
import requests

from micado.testing.oidc import OIDCProvider
from micado.testing.openstack import OpenStackEmulator


@pytest.fixture
def setup():
    with OIDCProvider() as provider, OpenStackEmulator(boot_delay=0.02) as cloud:
        cloud.add_identity_provider("egi.eu", provider.issuer)
        yield provider, cloud


def access_token(provider: OIDCProvider, subject: str = "alice") -> str:
    answer = requests.post(provider.token_endpoint, timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": provider.issue_refresh_token(subject)})
    assert answer.status_code == 200
    return answer.json()["access_token"]


def federated(cloud: OpenStackEmulator, token: str | None, idp: str = "egi.eu", protocol: str = "openid"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{cloud.url}/identity/v3/OS-FEDERATION/identity_providers/{idp}/protocols/{protocol}/auth",
                         headers=headers, timeout=5)


def rescope(cloud: OpenStackEmulator, token: str, project_id: str):
    return requests.post(f"{cloud.url}/identity/v3/auth/tokens", timeout=5, json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}}, "scope": {"project": {"id": project_id}}}})


def test_unscoped_token_then_rescoped_to_the_mapped_project(setup):
    provider, cloud = setup
    answer = federated(cloud, access_token(provider))
    assert answer.status_code == 201
    unscoped, body = answer.headers["X-Subject-Token"], answer.json()["token"]
    assert "project" not in body
    assert body["user"]["OS-FEDERATION"]["identity_provider"]["id"] == "egi.eu"
    servers = f"{cloud.url}/compute/v2.1/servers"
    assert requests.get(servers, headers={"X-Auth-Token": unscoped}, timeout=5).status_code == 401
    scoped = rescope(cloud, unscoped, cloud.project_id)
    assert scoped.status_code == 201
    assert scoped.json()["token"]["project"]["id"] == cloud.project_id
    assert requests.get(servers, headers={"X-Auth-Token": scoped.headers["X-Subject-Token"]},
                        timeout=5).status_code == 200
    other = cloud.add_project("other")
    assert rescope(cloud, unscoped, other.project_id).status_code == 401


def test_refusals(setup):
    provider, cloud = setup
    token = access_token(provider)
    assert federated(cloud, token, idp="nowhere").status_code == 404
    assert federated(cloud, token, protocol="saml2").status_code == 404
    assert federated(cloud, None).status_code == 401
    assert federated(cloud, "not-a-token").status_code == 401
    provider.expire_access_tokens()
    assert federated(cloud, token).status_code == 401
    provider.faults.down = True
    assert federated(cloud, access_token.__name__).status_code == 503
