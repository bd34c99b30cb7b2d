"""Coming from the official micado-client 0.12: its ``data.yml`` and its code, on the local stack.

The snippets are written as a user of 0.12.x writes them (the names and calls of its
README and docstrings); the official client's own writes to ``data.yml`` are re-enacted
with the YAML library and settings it uses (``tests/support/official_client.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

import official_client as official
from micado import MicadoClient
from micado.exceptions import InvalidArgument, MicadoException, TLSError
from micado.testing.stack import LocalStack

from cli_run import micado, one_line
from paths import ADTS

OFFICIAL_ID = "5a1e0c2d-7f3b-4e11-9c2a-1d2e3f4a5b6c"
UNFINISHED_ID = "6b2f1d3e-8a4c-4f22-ad3b-2e3f4a5b6c7d"


def official_store(micado_dir: Path, submitter) -> Path:
    """The data.yml the official 0.12 client leaves: a master it created (here: the submitter
    emulator, with its certificate where 0.12 keeps it) and one whose deploy did not finish."""
    micado_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store_file = micado_dir / "data.yml"
    cert = micado_dir / f"{OFFICIAL_ID}-ssl.pem"
    cert.write_bytes(Path(submitter.cert_path).read_bytes())
    official.official_master(store_file, OFFICIAL_ID, "127.0.0.1", password=submitter.password,
                             user=submitter.user, cert_path=str(cert), endpoint=submitter.endpoint.rstrip("/"))
    official.persist(store_file, UNFINISHED_ID, ip="192.0.2.44", endpoint="https://192.0.2.44/toscasubmitter")
    return store_file


def stressng() -> dict:
    return YAML(typ="safe").load((ADTS / "stressng_nova.yaml").read_text())


@pytest.fixture()
def shared_dir(tmp_path, monkeypatch, submitter) -> Path:
    micado_dir = tmp_path / "micado-cli"
    official_store(micado_dir, submitter)
    monkeypatch.setenv("MICADO_CLI_DIR", str(micado_dir))
    return micado_dir


def test_a_0_12_snippet_attaches_to_a_master_of_the_official_client(shared_dir, submitter):
    # --- as written for micado-client 0.12 ---
    client = MicadoClient(launcher="OpenStack", installer="ansible")
    client.micado.attach(micado_id=OFFICIAL_ID)
    client.applications.create(app_id="stressng", adt=stressng())
    apps = client.applications.list()
    assert [app.id for app in apps] == ["stressng"]
    assert apps[0].info["adaptors"] == apps[0].adaptors
    assert apps[0].info["message"]
    assert client.micado.micado_id == OFFICIAL_ID
    assert client.micado.micado_ip == "127.0.0.1"
    client.applications.delete("stressng")
    assert client.applications.list() == []
    # --- what this library adds: it says where the master came from, and never destroys it ---
    assert client.micado.api.verify == str(shared_dir / f"{OFFICIAL_ID}-ssl.pem")  # TLS checked
    assert client.micado.info()["state"] == "imported"
    with pytest.raises(AttributeError):
        client.micado.micado_id = "other"  # read only
    before = (shared_dir / "data.yml").read_bytes()
    with pytest.raises(MicadoException, match="official micado-client.*never destroys it"):
        client.micado.destroy()
    with pytest.raises(MicadoException, match="never changes it"):
        client.micado.reconfigure({"x": 1})
    with pytest.raises(MicadoException, match="did not finish deploying"):
        MicadoClient(launcher="openstack").master.attach(UNFINISHED_ID)
    assert (shared_dir / "data.yml").read_bytes() == before
    assert all(item.id not in (OFFICIAL_ID, UNFINISHED_ID) for item in client.master.cleanup(dry_run=True))


def test_the_cli_lists_and_attaches_the_official_masters(shared_dir, submitter):
    listed = micado("--json", "master", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[OFFICIAL_ID]["state"] == rows[UNFINISHED_ID]["state"] == "imported"
    table = micado("master", "list")
    assert "imported" in table.stdout and OFFICIAL_ID in table.stdout
    attached = micado("master", "attach", OFFICIAL_ID[:8])
    assert attached.returncode == 0, attached.stderr
    assert "applications none" in attached.stdout
    before = (shared_dir / "data.yml").read_bytes()
    refused = micado("master", "destroy", OFFICIAL_ID)
    assert refused.returncode != 0
    assert "official micado-client" in one_line(refused.stderr)
    assert (shared_dir / "data.yml").read_bytes() == before


def test_from_existing_as_in_0_12_but_the_certificate_is_checked(submitter):
    endpoint = submitter.endpoint.rstrip("/")
    # 0.12 turned verification off by default; here a self-signed master refuses, and the message says what to pass
    client = MicadoClient.from_existing(endpoint, "v2.0", submitter.user, submitter.password)
    with pytest.raises(TLSError, match=r"verify=<path of the master's certificate>, or verify=False"):
        client.applications.list()
    client = MicadoClient.from_existing(endpoint, "v2.0", submitter.user, submitter.password,
                                        cert=submitter.cert_path)  # 0.12's keyword
    assert client.applications.list() == []
    client = MicadoClient.from_existing(endpoint=endpoint, version="v2.0", username=submitter.user,
                                        password=submitter.password, verify=submitter.cert_path)
    client.applications.create(app_id="stressng", adt=stressng())
    assert client.applications.get("stressng").info["adaptors"]
    client.applications.delete("stressng")
    with pytest.raises(InvalidArgument, match="cert= .* or verify=, not both"):
        MicadoClient.from_existing(endpoint, cert=submitter.cert_path, verify=submitter.cert_path)
    insecure = MicadoClient.from_existing(endpoint, password=submitter.password, cert=False)  # said explicitly
    assert insecure.applications.list() == []


def test_launcher_names_in_any_case():
    assert repr(MicadoClient(launcher="OpenStack")) == "<MicadoClient launcher='openstack'>"
    assert MicadoClient(launcher="EC2").master.launcher_name == "ec2"
    with pytest.raises(InvalidArgument, match="CloudBroker.*not supported; choose one of: openstack, ec2"):
        MicadoClient(launcher="CloudBroker")


def test_an_add_keeps_the_official_entries_byte_for_byte(micado_stack, submitter):
    store_file = official_store(micado_stack.micado_cli_dir, submitter)
    before = store_file.read_text()
    client = MicadoClient(launcher="openstack")
    master_id = client.master.create(**micado_stack.create_kwargs)
    after = store_file.read_text()
    assert after.startswith(before)
    assert [(r["id"], r["state"]) for r in client.master.list()] == [
        (master_id, "ready"), (OFFICIAL_ID, "imported"), (UNFINISHED_ID, "imported")]
    assert client.master.credentials().password not in after  # ours encrypted, as always
    assert official.get(store_file, OFFICIAL_ID)["micado_password"] == submitter.password  # 0.12 still finds its own
    assert client.applications.list() == []
    client.master.destroy()
    assert store_file.read_text().startswith(before)
    assert micado_stack.cloud.leftovers()["servers"] == []


def test_micado_vers_is_the_default_release(tmp_path, monkeypatch):
    stack = LocalStack(tmp_path / "stack", layout="0.10").start()
    try:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        kwargs = dict(stack.create_kwargs)
        release = kwargs.pop("micado_version")  # the stand-in 0.10 release, the only one the mirror has
        monkeypatch.setenv("MICADO_VERS", "no such tag!")
        client = MicadoClient(launcher="openstack")
        with pytest.raises(InvalidArgument, match=r"MICADO_VERS='no such tag!' is not a release tag"):
            client.master.create(**kwargs)
        assert stack.cloud.leftovers()["servers"] == []  # refused before the cloud was touched
        monkeypatch.setenv("MICADO_VERS", release)
        client.master.create(**kwargs)
        assert client.master.info()["release"] == release
        client.master.destroy()
    finally:
        stack.stop()
