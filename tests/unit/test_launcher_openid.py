"""OpenID Connect login of the OpenStack launcher, end to end over loopback HTTP: our OIDC provider
(micado.testing.oidc), the emulator's Keystone federation route, the real keystoneauth/openstacksdk."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

from micado.config.credentials import OIDCAuth, OpenIDRefresh
from micado.exceptions import CredentialsError, InvalidArgument, LaunchError
from micado.launcher.openstack.openid_token import MAX_ANSWER_BYTES, fetch_access_token
from micado.launcher.base import LaunchSpec, cloud_init_user_data
from micado.launcher.openstack import OpenStackLauncher
from micado.testing.oidc import OIDCProvider
from micado.testing.openstack import OpenStackEmulator

from loopback import drip, raw_server, timed
from test_hostile_http import then

IDP = "egi.eu"
FILE = Path("/nonexistent/credentials-cloud-api.yml")
FEDERATION = f"/identity/v3/OS-FEDERATION/identity_providers/{IDP}/protocols/openid/auth"


@pytest.fixture
def provider():
    with OIDCProvider() as running:
        yield running


@pytest.fixture
def cloud(provider):
    with OpenStackEmulator(boot_delay=0.02) as running:
        running.add_identity_provider(IDP, provider.issuer)
        yield running


def creds(provider, refresh_token: str, **block) -> OIDCAuth:
    return OIDCAuth(IDP, refresh=OpenIDRefresh(provider.token_endpoint, refresh_token, key="pre_authentication[0].auth_data",
                                               **block), path=FILE, key="resource[0].auth_data")


def launcher(cloud, credentials: OIDCAuth, **options) -> OpenStackLauncher:
    options.setdefault("project_id", cloud.project_id)
    options.setdefault("request_timeout", 5)
    return OpenStackLauncher(credentials, auth_url=cloud.login["auth_url"], **options)


def spec(cloud) -> LaunchSpec:
    seeded = cloud.seeded
    return LaunchSpec(**{k: seeded[k] for k in ("image", "flavor", "network", "keypair", "security_group")},
                      user_data=cloud_init_user_data("ecdsa-sha2-nistp256 AAAA micado@test"))


def assert_nothing_made(cloud) -> None:
    assert cloud.leftovers() == {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}
    assert [r for r in cloud.requests if r[0] in ("POST", "PUT", "DELETE") and "/identity/" not in r[1]] == []


# --- the happy paths ----------------------------------------------------------------------


def test_refresh_token_login_launches_and_deletes_and_no_token_is_logged(provider, cloud, caplog):
    refresh = provider.issue_refresh_token("alice@egi.eu")
    os_launcher = launcher(cloud, creds(provider, refresh))
    assert "openid" in repr(os_launcher)
    assert refresh not in repr(os_launcher)
    with caplog.at_level(logging.DEBUG):
        vm = os_launcher.launch(spec(cloud), timeout=10)
        [server] = cloud.servers
        assert server["id"] == vm.server_id
        assert server["tenant_id"] == cloud.project_id
        assert os_launcher.delete(vm, timeout=10).server_found
    assert provider.issued_access_tokens == 1  # one exchange per session, kept in memory
    assert provider.requests[0] == ("POST", "/auth/realms/egi/protocol/openid-connect/token")  # no discovery
    assert ("GET", "/auth/realms/egi/protocol/openid-connect/userinfo") in provider.requests
    assert ("POST", FEDERATION) in cloud.requests
    [access] = [t for t in provider._access_tokens]
    assert refresh not in caplog.text
    assert access not in caplog.text
    assert access not in str(os_launcher.record_fields())
    assert refresh not in str(os_launcher.record_fields())
    assert cloud.leftovers()["servers"] == []


def test_public_client_and_confidential_client(cloud):
    with OIDCProvider(client_id="token-portal") as public:
        cloud.add_identity_provider("public", public.issuer)
        login = OIDCAuth("public", refresh=OpenIDRefresh(public.token_endpoint, public.issue_refresh_token("bob"),
                                                         client_id="token-portal"))
        assert launcher(cloud, login)._project() == cloud.project_id
    with OIDCProvider(client_id="micado", client_secret="client-Secret-1") as confidential:
        cloud.add_identity_provider("confidential", confidential.issuer)
        token = confidential.issue_refresh_token("carol")
        login = OIDCAuth("confidential", refresh=OpenIDRefresh(confidential.token_endpoint, token, client_id="micado",
                                                               client_secret="client-Secret-1"))
        assert launcher(cloud, login)._project() == cloud.project_id
        wrong = OIDCAuth("confidential", refresh=OpenIDRefresh(confidential.token_endpoint, token, client_id="micado",
                                                               client_secret="wrong"), path=FILE)
        with pytest.raises(CredentialsError, match="refused the client .*invalid_client") as caught:
            launcher(cloud, wrong).launch(spec(cloud), timeout=5)
        assert caught.value.key == "pre_authentication[0].auth_data.client_id"
        assert "wrong" not in str(caught.value)
    assert_nothing_made(cloud)


def test_literal_access_token_and_its_expiry(provider, cloud):
    access = fetch_access_token(creds(provider, provider.issue_refresh_token("dave")), timeout=5)
    literal = OIDCAuth(IDP, access_token=access, path=FILE)
    assert launcher(cloud, literal)._project() == cloud.project_id
    provider.expire_access_tokens()
    with pytest.raises(CredentialsError, match="refused the access token in .*may have expired") as caught:
        launcher(cloud, literal).launch(spec(cloud), timeout=5)
    assert caught.value.key == "resource[0].auth_data.access_token"
    assert access not in str(caught.value)
    assert_nothing_made(cloud)


# --- faults: each a typed error before any server is made -----------------------------------


def test_revoked_refresh_token_is_a_credentials_error_before_any_cloud_request(provider, cloud):
    refresh = provider.issue_refresh_token("erin")
    provider.revoke(refresh)
    with pytest.raises(CredentialsError, match="refused the refresh token .*invalid_grant") as caught:
        launcher(cloud, creds(provider, refresh)).launch(spec(cloud), timeout=5)
    assert caught.value.key == "pre_authentication[0].auth_data.refresh_token"
    assert refresh not in str(caught.value)
    assert "aai.egi.eu/token" in str(caught.value)
    assert cloud.requests == []


def test_unknown_identity_provider(provider, cloud):
    login = OIDCAuth("nowhere.eu", refresh=OpenIDRefresh(provider.token_endpoint, provider.issue_refresh_token("f")), path=FILE)
    with pytest.raises(CredentialsError, match="has no identity provider 'nowhere.eu' with protocol 'openid'") as caught:
        launcher(cloud, login).launch(spec(cloud), timeout=5)
    assert caught.value.key == "resource[0].auth_data.identity_provider"
    assert_nothing_made(cloud)


def test_user_mapped_to_another_project_cannot_scope(provider, cloud):
    other = cloud.add_project("elsewhere")
    with pytest.raises(LaunchError, match="authentication failed .*OpenID Connect .*project"):
        launcher(cloud, creds(provider, provider.issue_refresh_token("g")), project_id=other.project_id).launch(
            spec(cloud), timeout=5)
    assert_nothing_made(cloud)


def test_provider_down_is_a_launch_error(provider, cloud):
    provider.faults.down = True
    with pytest.raises(LaunchError, match=r"token endpoint .* failed the refresh \(HTTP 503\)"):
        launcher(cloud, creds(provider, provider.issue_refresh_token("h"))).launch(spec(cloud), timeout=5)
    assert cloud.requests == []


def test_provider_not_listening_is_a_launch_error(cloud):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    login = OIDCAuth(IDP, refresh=OpenIDRefresh(f"http://127.0.0.1:{port}/token", "rt"))
    with pytest.raises(LaunchError, match=f"cannot reach the OpenID Connect token endpoint http://127.0.0.1:{port}"):
        launcher(cloud, login).launch(spec(cloud), timeout=5)
    assert cloud.requests == []


def test_slow_provider_hits_the_deadline(provider, cloud):
    provider.faults.slow_answers = 3
    started = time.monotonic()
    with pytest.raises(LaunchError, match=r"token endpoint .* did not answer within 1 s \(request_timeout\)"):
        launcher(cloud, creds(provider, provider.issue_refresh_token("i")), request_timeout=1).launch(
            spec(cloud), timeout=5)
    assert time.monotonic() - started < 2.5
    assert cloud.requests == []


def test_junk_and_huge_answers(provider, cloud):
    refresh = provider.issue_refresh_token("j")
    provider.faults.junk = True
    with pytest.raises(LaunchError, match="not a JSON object with an access_token .*text/html.*token endpoint"):
        launcher(cloud, creds(provider, refresh)).launch(spec(cloud), timeout=5)
    provider.faults.junk = False
    provider.faults.huge_answer = MAX_ANSWER_BYTES
    with pytest.raises(LaunchError, match="token endpoint .*/openid-connect/token to POST is too large"):
        launcher(cloud, creds(provider, refresh)).launch(spec(cloud), timeout=5)
    assert cloud.requests == []


def test_the_issuer_as_url_is_refused_naming_the_token_endpoint(provider, cloud):
    refresh = provider.issue_refresh_token("k")
    login = OIDCAuth(IDP, refresh=OpenIDRefresh(provider.issuer, refresh, key="pre_authentication[0].auth_data"),
                     path=FILE)
    with pytest.raises(CredentialsError) as caught:
        launcher(cloud, login).launch(spec(cloud), timeout=5)
    message = str(caught.value)
    assert message == (f"{FILE}: pre_authentication[0].auth_data.url is the OpenID Connect provider's issuer, not "
                       "its token endpoint: MiCADO posts the refresh token to url itself; write url: "
                       f"{provider.token_endpoint}")
    assert caught.value.key == "pre_authentication[0].auth_data.url"
    # the POST first (MiCADO's meaning), discovery only to explain its refusal
    assert provider.requests == [("POST", "/auth/realms/egi"), ("GET", "/auth/realms/egi/.well-known/openid-configuration")]
    assert provider.issued_access_tokens == 0
    assert_nothing_made(cloud)


def test_a_url_that_is_neither_is_a_launch_error_that_says_token_endpoint(provider, cloud):
    login = OIDCAuth(IDP, refresh=OpenIDRefresh(provider.token_endpoint + "/x", provider.issue_refresh_token("k")))
    with pytest.raises(LaunchError, match=r"refused the refresh \(HTTP 404, text/plain.*\); is .*url the provider's "
                                          "token endpoint"):
        launcher(cloud, login).launch(spec(cloud), timeout=5)
    assert cloud.requests == []


def test_openid_login_needs_a_project(provider, cloud):
    with pytest.raises(InvalidArgument, match="project_id is required for OpenID Connect"):
        OpenStackLauncher(creds(provider, "rt"), auth_url=cloud.login["auth_url"])
    assert provider.requests == []
    assert cloud.requests == []


# --- hostile answers: typed, bounded, and true ----------------------------------------------


def json_head(length: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length


def test_a_deeply_nested_answer_is_a_launch_error(cloud, tmp_path, monkeypatch, micado_playbooks):
    from micado import MicadoClient

    nested = b"[" * 200_000  # under the size cap, far over Python's recursion limit
    with raw_server("http", json_head(len(nested)) + nested, path="/token") as url:
        login = OIDCAuth(IDP, refresh=OpenIDRefresh(url, "rt"))
        with pytest.raises(LaunchError, match="not a JSON object with an access_token"):
            launcher(cloud, login).launch(spec(cloud), timeout=5)
        # the same through create: a LaunchError at the launch step, not an InstallError
        directory = tmp_path / "micado-cli"
        directory.mkdir(mode=0o700)
        (directory / "credentials-cloud-api.yml").write_text(
            f"pre_authentication:\n- type: openid\n  auth_data: &OPENID\n    url: {url}\n    refresh_token: rt\n"
            "resource:\n- type: nova\n  auth_data:\n    identity_provider: egi.eu\n    access_token: *OPENID\n")
        monkeypatch.setenv("MICADO_CLI_DIR", str(directory))
        with pytest.raises(LaunchError, match="not a JSON object") as caught:
            MicadoClient(launcher="openstack").master.create(
                auth_url=cloud.login["auth_url"], project_id=cloud.project_id, playbook=micado_playbooks["0.12"],
                **{k: cloud.seeded[k] for k in ("image", "flavor", "network", "keypair", "security_group")})
    assert caught.value.step == "launch"
    assert "Recursion" not in str(caught.value)
    assert_nothing_made(cloud)


def test_a_provider_that_drips_spaces_past_the_deadline_did_not_answer_within_it(cloud):
    handler = then(json_head(400), drip(b" " * 400, 0.05))  # 20 s of spaces: valid JSON white space, never a value
    with raw_server("http", handler, path="/token") as url:
        login = OIDCAuth(IDP, refresh=OpenIDRefresh(url, "rt"))
        took, error = timed(lambda: launcher(cloud, login, request_timeout=1).launch(spec(cloud), timeout=5))
    assert isinstance(error, LaunchError), error
    assert str(error) == f"the OpenID Connect token endpoint {url} did not answer within 1 s (request_timeout)"
    assert took < 2.5, took
    assert cloud.requests == []


def test_egi_shaped_credentials_post_to_the_token_endpoint_and_ask_nothing_else(provider, cloud, tmp_path):
    from micado.config.credentials import load_credentials

    assert provider.token_endpoint.endswith("/auth/realms/egi/protocol/openid-connect/token")  # EGI Check-in's shape
    file = tmp_path / "credentials-cloud-api.yml"
    file.write_text(  # ansible-micado's sample, filled in as MiCADO's own EGI token script reads it
        "pre_authentication:\n- type: openid\n  auth_data: &OPENID\n"
        "    # Use this anchor for generating OpenID Connect access tokens (see nova)\n"
        f"    url: {provider.token_endpoint}\n    refresh_token: {provider.issue_refresh_token('egi-user')}\n"
        "resource:\n- type: nova\n  auth_data:\n    identity_provider: egi.eu\n    access_token: *OPENID\n"
        f"    project_id: {cloud.project_id}\n")
    file.chmod(0o600)
    login = load_credentials("nova", file)
    assert launcher(cloud, login)._project() == cloud.project_id
    # ours: the one POST, first; then Keystone's own check of the access token (discovery, userinfo)
    assert provider.requests == [("POST", "/auth/realms/egi/protocol/openid-connect/token"),
                                 ("GET", "/auth/realms/egi/.well-known/openid-configuration"),
                                 ("GET", "/auth/realms/egi/protocol/openid-connect/userinfo")]
