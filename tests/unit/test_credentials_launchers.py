"""A launcher registered by code brings its credentials entry: read, templated, listed, refused when wrong."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from micado.config.credentials import (
    credentials_file_template,
    credentials_template,
    load_credentials,
    supported_kinds,
)
from micado.config.credentials.checks import Method, check_unknown_keys, choose_method, pair
from micado.exceptions import CredentialsError
from micado.launcher.base import Launcher
from micado.launcher.registry import register_launcher, unregister_launcher

TOKEN = Method("token", ("tenant", "token"))


@dataclass(frozen=True)
class ToyAuth:
    tenant: str
    token: str


class ToyLauncher(Launcher):  # only what the credentials loader asks of a launcher
    name = "toy"
    credential_type = "toycloud"
    credentials_template = "# {path}\nresource:\n- type: toycloud\n  auth_data:\n    tenant: YOUR_TENANT\n    token: YOUR_TOKEN\n"
    credentials_file_entry = "# The toy cloud.\n- type: toycloud\n  auth_data:\n    tenant:\n    token:\n"

    @classmethod
    def read_credentials(cls, auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> ToyAuth:
        check_unknown_keys(auth_data, set(TOKEN.keys), file, where)
        tenant, token = pair(auth_data, choose_method(auth_data, (TOKEN,), file, where), file, where,
                             {"YOUR_TENANT", "YOUR_TOKEN"})
        return ToyAuth(tenant, token)


class SilentLauncher(Launcher):
    name = "silent"
    credential_type = "silentcloud"
    credentials_file_entry = ""


@pytest.fixture()
def toy() -> Iterator[None]:
    register_launcher(ToyLauncher)
    register_launcher(SilentLauncher)
    try:
        yield
    finally:
        unregister_launcher("toy")
        unregister_launcher("silent")


def write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "credentials-cloud-api.yml"
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    file.chmod(0o600)
    return file


@pytest.mark.usefixtures("toy")
def test_registered_launcher_reads_its_entry(tmp_path: Path) -> None:
    file = write(tmp_path, """\
        resource:
        - type: nova
          auth_data: {username: alice, password: pw}
        - type: toycloud
          auth_data: {tenant: t-1, token: abc}
        """)
    assert load_credentials("toycloud", file) == ToyAuth("t-1", "abc")
    assert "toycloud" in supported_kinds()


@pytest.mark.usefixtures("toy")
def test_registered_launcher_errors_and_templates(tmp_path: Path) -> None:
    file = write(tmp_path, "resource:\n- type: toycloud\n  auth_data: {tenant: YOUR_TENANT, token: abc}\n")
    with pytest.raises(CredentialsError, match="placeholder") as caught:
        load_credentials("toycloud", file)
    assert caught.value.key == "resource[0].auth_data.tenant"
    with pytest.raises(CredentialsError, match="YOUR_TOKEN"):  # the missing entry shows its template
        load_credentials("toycloud", write(tmp_path, "resource: []\n"))
    assert credentials_template("toycloud", file).startswith(f"# {file}\nresource:\n- type: toycloud\n")
    assert credentials_file_template(file).endswith("\n# The toy cloud.\n- type: toycloud\n  auth_data:\n"
                                                    "    tenant:\n    token:\n")


@pytest.mark.usefixtures("toy")
def test_launcher_that_reads_no_entry_says_so(tmp_path: Path) -> None:
    file = write(tmp_path, "resource:\n- type: silentcloud\n  auth_data: {key: value}\n")
    with pytest.raises(CredentialsError, match="launcher 'silent' reads no credentials-file entry"):
        load_credentials("silentcloud", file)
    assert "- type: silentcloud\n  auth_data:\n" in credentials_template("silentcloud", file)


def test_unregistered_type_is_refused_with_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="supported types: nova, ec2$"):
        load_credentials("toycloud", tmp_path / "absent.yml")
