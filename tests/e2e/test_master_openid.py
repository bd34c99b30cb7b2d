"""Use-case 1 on the local stack with OpenID Connect credentials: MiCADO's format, the stack's own
provider, Keystone federation in the emulator; the access token stored nowhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import CredentialsError
from micado.testing.stack import LocalStack

CLEAN = {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def test_use_case_1_with_openid_connect(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with LocalStack(tmp_path / "stack", oidc=True) as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        provider = stack.oidc_provider
        assert provider is not None
        credentials = (stack.micado_cli_dir / "credentials-cloud-api.yml").read_text()
        assert "access_token: *OPENID" in credentials
        assert "&OPENID" in credentials
        # MiCADO's meaning of url, the token endpoint (EGI's shape), which MiCADO reads again on the master
        assert f"url: \"{provider.token_endpoint}\"" in credentials
        assert provider.token_endpoint.endswith("/auth/realms/egi/protocol/openid-connect/token")
        client = MicadoClient(launcher="openstack")
        with caplog.at_level(logging.DEBUG):
            master_id = client.master.create(**stack.create_kwargs)
            assert master_id == stack.cloud.servers[0]["id"]
            assert provider.issued_access_tokens >= 1
            assert provider.requests[0] == ("POST", "/auth/realms/egi/protocol/openid-connect/token")
            [access_token] = list(provider._access_tokens)
            [refresh_token] = list(provider._refresh_tokens)
            assert ("POST", "/identity/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth") \
                in stack.cloud.requests
            record = client.master.info()
            assert access_token not in str(record)
            assert refresh_token not in str(record)
            # Nothing of ours on disk holds the access token; the refresh token only in the
            # user's credentials file (and its copy for MiCADO on the master, as MiCADO intends).
            for path in files_under(stack.micado_cli_dir) + files_under(stack.base_dir / "vms"):
                data = path.read_bytes()
                assert access_token.encode() not in data, path
                if refresh_token.encode() in data:
                    # the user's file, or the master's copies: the release's cloud_cred_path
                    # and the auth_data.yaml it stores from it (under the VM's root)
                    on_master = stack.base_dir / "vms" in path.parents
                    assert path.name == "credentials-cloud-api.yml" or (on_master and path.name == "auth_data.yaml"), path
            client.master.destroy()
        assert access_token not in caplog.text
        assert refresh_token not in caplog.text
        assert stack.cloud.leftovers() == CLEAN
        assert client.master.list() == []
        assert stack.vms.vms() == []

        # The refresh token revoked at the provider: a typed error before any server is made.
        provider.revoke(refresh_token)
        before = len(stack.cloud.requests)
        with pytest.raises(CredentialsError, match="invalid_grant") as caught:
            client.master.create(**stack.create_kwargs)
        assert caught.value.key == "pre_authentication[0].auth_data.refresh_token"
        assert stack.cloud.requests[before:] == []
        assert stack.cloud.leftovers() == CLEAN
        assert client.master.list() == []
