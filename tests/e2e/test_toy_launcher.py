"""A third-party launcher, registered without editing micado/: the whole lifecycle on its cloud.

The toy cloud (``tests/support/toy_cloud.py``) boots local VMs; registered with
``register_launcher`` it gets ``create``/``attach``/``destroy``/``cleanup``, its
credentials entry and its error messages, and as an installed package's entry point
(a ``.dist-info`` folder on the path) its ``micado master create`` options.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.config.store import MasterStore
from micado.exceptions import CredentialsError, InvalidArgument
from micado.launcher.base import CREATOR_TAG, LaunchSpec, cloud_init_user_data
from micado.launcher.registry import launcher_names, register_launcher, unregister_launcher
from micado.testing.vm import random_loopback_address

from paths import SUPPORT
from toy_cloud import ZONES, ToyAuth, ToyCloud, ToyLauncher

TOKEN = "toy-secret-token"


@pytest.fixture
def toy(vm_pool, micado_playbooks, keypair, monkeypatch):
    """The toy cloud in zone ``z1``, its launcher registered, a credentials file with its token."""
    register_launcher(ToyLauncher)
    base = random_loopback_address().rsplit(".", 1)[0]
    cloud = ToyCloud("z1", vm_pool, TOKEN, [f"{base}.{host}" for host in range(10, 14)])
    credentials = Path(os.environ["MICADO_CLI_DIR"]) / "credentials-cloud-api.yml"
    credentials.write_text(f"resource:\n- type: toy\n  auth_data:\n    token: {TOKEN}\n")
    credentials.chmod(0o600)
    kwargs = {"zone": "z1", "image": "toy-image", "flavor": "small", "ssh_user": vm_pool.user,
              "ssh_port": vm_pool.ssh_port, "api_port": vm_pool.api_port, "playbook": micado_playbooks["0.12"],
              "remote_cert_path": "var/lib/micado/zorp/config/ssl.pem"}
    yield cloud, kwargs
    ZONES.pop("z1", None)
    unregister_launcher("toy")


def test_a_registered_launcher_creates_attaches_and_destroys(toy):
    cloud, kwargs = toy
    assert "toy" in launcher_names()
    client = MicadoClient(launcher="toy")
    master_id = client.master.create(**kwargs)
    assert list(cloud.servers) == [master_id]
    assert client.applications.list() == []
    assert MasterStore().get(master_id).extra["cloud"] == {"zone": "z1"}

    other = MicadoClient(launcher="toy")
    other.master.attach(master_id)
    assert other.applications.list() == []
    other.master.destroy()
    assert cloud.servers == {}
    assert MasterStore().list() == []


def test_cleanup_removes_what_a_killed_toy_create_left_and_never_another_dirs(toy):
    cloud, kwargs = toy
    client = MicadoClient(launcher="toy")
    launcher = ToyLauncher(ToyAuth(TOKEN), zone="z1")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl toy"
    ours = launcher.launch(LaunchSpec(image="i", flavor="f", network="", user_data=cloud_init_user_data(key),
                                      store_id=MasterStore().identity()))
    theirs = launcher.launch(LaunchSpec(image="i", flavor="f", network="", user_data=cloud_init_user_data(key),
                                        store_id="another-dir"))
    killed = subprocess.run([sys.executable, "-c", "from micado.launcher.base import creator_mark; "
                             "print(creator_mark())"], capture_output=True, text=True, timeout=60).stdout.strip()
    cloud.servers[ours.server_id]["marks"][CREATOR_TAG] = killed  # launched by a create that was killed
    client.master.create(**kwargs)  # a record on the toy cloud: cleanup looks there
    found = {item.id: item for item in client.master.cleanup()}
    assert found[ours.server_id].removed
    assert not found[theirs.server_id].removed and not found[theirs.server_id].ours
    assert set(cloud.servers) == {theirs.server_id, client.master.id}
    client.master.destroy()


def test_the_toy_credentials_entry_and_error_messages(toy):
    cloud, kwargs = toy
    credentials = Path(os.environ["MICADO_CLI_DIR"]) / "credentials-cloud-api.yml"
    client = MicadoClient(launcher="toy")
    with pytest.raises(InvalidArgument, match="auth_url is not an argument of the toy launcher"):
        client.master.create(**kwargs, auth_url="https://keystone.example/v3")
    with pytest.raises(InvalidArgument, match="missing argument: zone"):
        client.master.create(**{k: v for k, v in kwargs.items() if k != "zone"})
    credentials.write_text("resource:\n- type: toy\n  auth_data:\n    secret: x\n")
    with pytest.raises(CredentialsError, match=r"resource\[0\]\.auth_data has unknown key\(s\) secret"):
        client.master.create(**kwargs)
    credentials.unlink()
    with pytest.raises(CredentialsError, match="type: toy") as missing:
        client.master.create(**kwargs)
    assert "YOUR_TOY_TOKEN" in str(missing.value)
    assert cloud.servers == {} and MasterStore().list() == []


def _installed_as_a_package(tmp_path: Path) -> dict[str, str]:
    """An environment where the toy launcher is an installed package's entry point."""
    site = tmp_path / "site"
    info = site / "micado_toy-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: micado-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[micado.launchers]\ntoy = toy_cloud:ToyLauncher\n")
    path = os.pathsep.join([str(site), str(SUPPORT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "MICADO_CLI_DIR": str(tmp_path / "micado-cli")}


def test_an_installed_launcher_gets_its_cli_options_and_messages(tmp_path):
    env = _installed_as_a_package(tmp_path)
    micado = [sys.executable, "-m", "micado"]
    shown = subprocess.run([*micado, "master", "create", "--help"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "--zone" in shown.stdout and "the toy cloud's zone" in " ".join(shown.stdout.split())
    assert "toy" in shown.stdout  # a --launcher choice
    refused = subprocess.run([*micado, "master", "create", "--launcher", "toy", "--image", "i", "--flavor", "f"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "missing argument: zone" in refused.stderr
    init = subprocess.run([*micado, "init"], env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    assert "- type: toy" in (tmp_path / "micado-cli" / "credentials-cloud-api.yml").read_text()
