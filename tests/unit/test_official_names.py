"""The names code written for the official micado-client 0.12 uses, checked without a stack."""

from __future__ import annotations

import pytest

from micado import MicadoClient
from micado.exceptions import InvalidArgument
from micado.installer.playbooks import DEFAULT_MICADO_VERSION, PlaybookSource, default_micado_version
from micado.launcher.registry import launcher_class


def test_micado_vers_is_the_default_release(monkeypatch):
    monkeypatch.delenv("MICADO_VERS", raising=False)
    assert default_micado_version() == DEFAULT_MICADO_VERSION
    monkeypatch.setenv("MICADO_VERS", "v0.11.0")  # as 0.12 users set it
    assert PlaybookSource().version == "v0.11.0"
    assert PlaybookSource(micado_version="v0.10.0").version == "v0.10.0"  # an argument wins
    monkeypatch.setenv("MICADO_VERS", "  ")
    assert PlaybookSource().version == DEFAULT_MICADO_VERSION
    monkeypatch.setenv("MICADO_VERS", "latest; rm -rf")
    with pytest.raises(InvalidArgument, match=r"^MICADO_VERS='latest; rm -rf' is not a release tag"):
        PlaybookSource()


def test_launcher_names_are_taken_in_any_case():
    assert launcher_class("OpenStack") is launcher_class("openstack")
    assert MicadoClient(launcher="OPENSTACK").master.launcher_name == "openstack"


def test_from_existing_checks_the_certificate_by_default(tmp_path):
    client = MicadoClient.from_existing("https://192.0.2.1/toscasubmitter")
    assert client._api is not None and client._api.verify is True
    cert = tmp_path / "ssl.pem"
    cert.write_text("")
    client = MicadoClient.from_existing("https://192.0.2.1/toscasubmitter", "v2.0", "u", "p", str(cert))
    assert client._api is not None and client._api.verify == str(cert)  # 0.12's fifth argument: cert
    with pytest.raises(InvalidArgument, match="not both"):
        MicadoClient.from_existing("https://192.0.2.1/toscasubmitter", cert=False, verify=True)
