"""OpenID Connect in the credentials file: MiCADO's pre_authentication block, the alias, and every mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from micado.config import paths
from micado.config.credentials import OIDCAuth, OpenIDRefresh, load_credentials
from micado.exceptions import CredentialsError

REFRESH = "rt-Very-Secret-0123456789"
ACCESS = "at-Very-Secret-9876543210"


@pytest.fixture()
def micado_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "micado-cli"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv(paths.ENV_DIR, str(directory))
    return directory


def write(text: str) -> Path:
    file = paths.credentials_file()
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    file.chmod(0o600)
    return file


def openid_file(block: str = f"url: https://aai.egi.eu/auth/realms/egi\nrefresh_token: {REFRESH}\n",
                nova: str = "identity_provider: egi.eu\naccess_token: *OPENID\nproject_id: p-1\n") -> str:
    """MiCADO's shape: the openid block with an anchor, an ec2 entry, the nova entry (resource[1])."""
    block = textwrap.indent(textwrap.dedent(block), " " * 4)
    nova = textwrap.indent(textwrap.dedent(nova), " " * 4)
    return (f"pre_authentication:\n- type: openid\n  auth_data: &OPENID\n{block}"
            f"resource:\n- type: ec2\n  auth_data:\n    accesskey:\n    secretkey:\n"
            f"- type: nova\n  auth_data:\n{nova}")


def fails(file: Path, key: str, *fragments: str) -> CredentialsError:
    with pytest.raises(CredentialsError) as info:
        load_credentials("nova")
    message = str(info.value)
    assert info.value.path == file and info.value.key == key, (info.value.key, message)
    assert str(file) in message
    for fragment in fragments:
        assert fragment in message, message
    assert REFRESH not in message
    assert ACCESS not in message
    return info.value


def test_micado_format_with_the_alias(micado_dir: Path) -> None:
    file = write(openid_file())
    creds = load_credentials("nova")
    assert creds == OIDCAuth("egi.eu", refresh=OpenIDRefresh("https://aai.egi.eu/auth/realms/egi", REFRESH),
                             project_id="p-1", path=file, key="resource[1].auth_data")
    assert REFRESH not in repr(creds)


def test_client_and_scope_for_providers_that_need_them(micado_dir: Path) -> None:
    write(openid_file(f"url: https://idp.example/token/\nrefresh_token: {REFRESH}\nclient_id: token-portal\n"
                      f"client_secret: {ACCESS}\nscope: openid email profile eduperson_entitlement\n"))
    creds = load_credentials("nova")
    assert isinstance(creds, OIDCAuth)
    assert creds.refresh is not None
    assert (creds.refresh.url, creds.refresh.client_id, creds.refresh.client_secret) == (
        "https://idp.example/token/", "token-portal", ACCESS)  # as written: MiCADO posts to it as it is
    assert creds.refresh.scope == "openid email profile eduperson_entitlement"
    assert ACCESS not in repr(creds)
    assert REFRESH not in repr(creds)


def test_literal_access_token(micado_dir: Path) -> None:
    write(openid_file(nova=f"identity_provider: egi.eu\naccess_token: {ACCESS}\n"))
    creds = load_credentials("nova")
    assert isinstance(creds, OIDCAuth)
    assert (creds.access_token, creds.refresh, creds.project_id) == (ACCESS, None, None)
    assert ACCESS not in repr(creds)


def test_the_ec2_entry_of_the_same_file_is_unaffected(micado_dir: Path) -> None:
    write(openid_file().replace("accesskey:\n    secretkey:", "accesskey: AKIA1\n    secretkey: s"))
    assert load_credentials("ec2").access_key_id == "AKIA1"


@pytest.mark.parametrize(("block", "key", "fragment"), [
    (f"refresh_token: {REFRESH}\n", "pre_authentication[0].auth_data.url", "is missing"),
    (f"url:\nrefresh_token: {REFRESH}\n", "pre_authentication[0].auth_data.url", "is empty"),
    ("url: https://idp.example\nrefresh_token:\n", "pre_authentication[0].auth_data.refresh_token", "is empty"),
    ("url: https://idp.example\n", "pre_authentication[0].auth_data.refresh_token", "is missing"),
    (f"url: http://idp.example\nrefresh_token: {REFRESH}\n", "pre_authentication[0].auth_data.url", "plain http"),
    (f"url: ftp://idp.example\nrefresh_token: {REFRESH}\n", "pre_authentication[0].auth_data.url", "https URL"),
    (f"url: https://idp.example:99999\nrefresh_token: {REFRESH}\n", "pre_authentication[0].auth_data.url",
     "not a valid URL"),
    (f"url: https://idp.example?x=1\nrefresh_token: {REFRESH}\n", "pre_authentication[0].auth_data.url", "query"),
    (f"url: https://idp.example\nrefresh_token: {REFRESH}\nclient_secret: {ACCESS}\n",
     "pre_authentication[0].auth_data.client_id", "without client_id"),
    (f"url: https://idp.example\nrefresh_token: {REFRESH}\nclientid: x\n",
     "pre_authentication[0].auth_data.clientid", "unknown key"),
    ("url: https://idp.example\nrefresh_token: 12345\n", "pre_authentication[0].auth_data.refresh_token",
     "must be text"),
    (f"url: https://idp.example\nrefresh_token: {REFRESH} x\n", "pre_authentication[0].auth_data.refresh_token",
     "white space"),
])
def test_malformed_openid_block(micado_dir: Path, block: str, key: str, fragment: str) -> None:
    file = write(openid_file(block))
    fails(file, key, fragment)


def test_alias_is_resolved_even_with_blank_keys_before_it(micado_dir: Path) -> None:
    # MiCADO's template lists every key of every method; only OpenID filled in here.
    file = write(openid_file(nova="username:\npassword:\napplication_credential_id:\n"
                                  "identity_provider: egi.eu\naccess_token: *OPENID\n"))
    assert isinstance(load_credentials("nova"), OIDCAuth)
    assert file.exists()


def test_identity_provider_without_access_token(micado_dir: Path) -> None:
    file = write(openid_file(nova="identity_provider: egi.eu\n"))
    fails(file, "resource[1].auth_data.access_token", "is missing", "OpenID Connect")


def test_access_token_alias_to_a_blank_block(micado_dir: Path) -> None:
    file = write(openid_file(block="url:\nrefresh_token:\n"))
    fails(file, "pre_authentication[0].auth_data.url", "is empty")


def test_identity_provider_with_a_slash(micado_dir: Path) -> None:
    file = write(openid_file(nova="identity_provider: egi.eu/x\naccess_token: *OPENID\n"))
    fails(file, "resource[1].auth_data.identity_provider", "without slashes")


def test_access_token_mapping_that_is_no_openid_block(micado_dir: Path) -> None:
    file = write(openid_file(nova=f"identity_provider: egi.eu\naccess_token:\n  url: https://x\n  "
                                  f"refresh_token: {REFRESH}\n"))
    fails(file, "resource[1].auth_data.access_token", "not the auth_data of a pre_authentication", "*OPENID")


def test_pre_authentication_that_is_not_a_list(micado_dir: Path) -> None:
    text = openid_file().replace("pre_authentication:\n- type: openid\n  auth_data: &OPENID\n",
                                 "pre_authentication:\n  type: openid\n  auth_data: &OPENID\n")
    text = text.replace("\n    url:", "\n    url:").replace("    url", "      url").replace("    refresh", "      refresh")
    file = write(text)
    fails(file, "pre_authentication", "must be a list")


def test_literal_access_token_with_white_space(micado_dir: Path) -> None:
    file = write(openid_file(nova=f"identity_provider: egi.eu\naccess_token: {ACCESS} two\n"))
    fails(file, "resource[1].auth_data.access_token", "white space")


def test_loopback_http_is_accepted(micado_dir: Path) -> None:
    write(openid_file(f"url: http://127.0.0.1:8080/realm\nrefresh_token: {REFRESH}\n"))
    creds = load_credentials("nova")
    assert isinstance(creds, OIDCAuth)
    assert creds.refresh is not None
    assert creds.refresh.url == "http://127.0.0.1:8080/realm"
