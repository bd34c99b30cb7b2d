"""OpenStack users keep their config: ``MicadoClient(cloud=NAME)`` and ``OS_*`` read by openstacksdk's loader."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.config.credentials import PasswordAuth, load_credentials
from micado.config.openstack_config import load_cloud
from micado.exceptions import CredentialsError

ADTS = Path(__file__).parent / "adts"


@pytest.fixture
def clouds_yaml(micado_stack, tmp_path, monkeypatch) -> Path:
    """The stack's cloud in a clouds.yaml of the user's, and no MiCADO credentials file."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    login = micado_stack.cloud.login
    (micado_stack.micado_cli_dir / "credentials-cloud-api.yml").unlink()
    path = tmp_path / "clouds.yaml"
    path.write_text(json.dumps({"clouds": {"local": {
        "auth": {"auth_url": login["auth_url"], "username": login["username"], "password": login["password"],
                 "project_id": login["project_id"], "user_domain_name": login["user_domain_name"] or "Default"},
        "region_name": login["region"]}}}))  # JSON is YAML
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    return path


def test_use_case_1_through_clouds_yaml(micado_stack, clouds_yaml, monkeypatch):
    from micado.installer import ansible

    handed: list[tuple[Path, int, object]] = []
    real_install = ansible.install

    def install(*args, **kwargs):  # the real installer; we only look at the file it gets
        path = kwargs["cloud_credentials"]
        handed.append((path, stat.S_IMODE(path.stat().st_mode), load_credentials(path=path)))
        return real_install(*args, **kwargs)

    monkeypatch.setattr(ansible, "install", install)
    kwargs = {k: v for k, v in micado_stack.create_kwargs.items()
              if k not in ("auth_url", "project_id", "region", "user_domain_name")}
    client = MicadoClient(launcher="openstack", cloud="local")
    master_id = client.master.create(**kwargs)

    login = micado_stack.cloud.login
    ((path, mode, credentials),) = handed
    assert mode == 0o600
    assert isinstance(credentials, PasswordAuth)
    assert (credentials.username, credentials.password) == (login["username"], login["password"])
    assert not path.exists()
    assert not path.parent.exists()
    assert not (micado_stack.micado_cli_dir / "credentials-cloud-api.yml").exists()  # the user's dir untouched
    assert client.master.info()["auth_url"].rstrip("/").startswith(login["auth_url"].rstrip("/"))

    client.applications.create(app_id="stressng", file=ADTS / "stressng_nova.yaml")
    MicadoClient(launcher="openstack", cloud="local").master.destroy(master_id)  # logs in through clouds.yaml too
    assert micado_stack.cloud.leftovers()["servers"] == []


def test_os_variables_are_read_when_there_is_no_credentials_file(micado_stack, clouds_yaml, monkeypatch):
    login = micado_stack.cloud.login
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml.parent / "none.yaml"))
    for name, value in (("OS_AUTH_URL", login["auth_url"]), ("OS_USERNAME", login["username"]),
                        ("OS_PASSWORD", login["password"]), ("OS_PROJECT_ID", login["project_id"])):
        monkeypatch.setenv(name, value)
    cloud = load_cloud(None)
    assert (cloud.name, cloud.auth_url, cloud.project_id) == ("envvars", login["auth_url"], login["project_id"])
    assert login["password"] not in repr(cloud)
    assert MicadoClient(launcher="openstack").master._openstack_cloud() == cloud


def test_an_unknown_cloud_lists_the_configured_ones(clouds_yaml):
    with pytest.raises(CredentialsError, match="'elsewhere'.*clouds configured: local"):
        load_cloud("elsewhere")


def test_the_cli_logs_in_through_clouds_yaml_for_create_and_destroy(micado_stack, clouds_yaml, tmp_path):
    from test_cli import micado

    kwargs = {k: v for k, v in micado_stack.create_kwargs.items()
              if k not in ("auth_url", "project_id", "region", "user_domain_name")}
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(kwargs))
    refused = micado("master", "create", "--kwargs-file", str(kwargs_file))  # no credentials file, no --cloud
    assert refused.returncode != 0
    assert refused.stderr.startswith("micado: error: InvalidArgument: missing argument: auth_url (or log in as a "
                                     "cloud of your clouds.yaml")
    assert micado_stack.cloud.leftovers()["servers"] == []

    created = micado("--json", "master", "create", "--cloud", "local", "--kwargs-file", str(kwargs_file))
    assert created.returncode == 0, created.stderr
    master_id = json.loads(created.stdout)["id"]
    assert len(micado_stack.cloud.leftovers()["servers"]) == 1

    unknown = micado("master", "destroy", "--cloud", "elsewhere", "--yes", master_id)
    assert unknown.returncode != 0
    assert "'elsewhere'" in unknown.stderr and "local" in unknown.stderr  # the configured clouds are named
    destroyed = micado("master", "destroy", "--cloud", "local", "--yes", master_id)
    assert destroyed.returncode == 0, destroyed.stderr
    assert micado_stack.cloud.leftovers()["servers"] == []


def test_deploy_on_a_host_hands_the_master_a_credentials_file_derived_from_clouds_yaml(
        micado_stack, clouds_yaml, tmp_path, monkeypatch):
    from micado.installer import ansible
    from micado.testing.vm import random_loopback_address
    from test_cli import micado

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    micado_stack.vms.boot({"id": "my-host", "user_data": "#cloud-config\nssh_authorized_keys:\n  - "
                           + key.with_suffix(".pub").read_text().strip() + "\n"})
    address = random_loopback_address()
    micado_stack.vms.set_address("my-host", address)
    kwargs = micado_stack.create_kwargs
    args = ["master", "deploy", "--host", address, "--ssh-key", str(key), "--ssh-user", kwargs["ssh_user"],
            "--ssh-port", str(kwargs["ssh_port"]), "--api-port", str(kwargs["api_port"]),
            "--remote-cert-path", kwargs["remote_cert_path"]]
    try:
        refused = micado(*args)  # no credentials file, no cloud named
        assert refused.returncode != 0
        assert refused.stderr.endswith("(OpenStack: or log in as a cloud of your clouds.yaml with --cloud NAME)\n")

        handed: list[object] = []
        real_install = ansible.install

        def install(*install_args, **install_kwargs):  # the real installer; we only look at what it gets
            handed.append(load_credentials(path=install_kwargs["cloud_credentials"]))
            return real_install(*install_args, **install_kwargs)

        monkeypatch.setattr(ansible, "install", install)
        client = MicadoClient(launcher="openstack", cloud="local")
        master_id = client.master.deploy(host=address, ssh_key=key, ssh_user=kwargs["ssh_user"],
                                         ssh_port=kwargs["ssh_port"], api_port=kwargs["api_port"],
                                         remote_cert_path=kwargs["remote_cert_path"])
        login = micado_stack.cloud.login
        ((credentials,),) = [handed]
        assert isinstance(credentials, PasswordAuth)
        assert (credentials.username, credentials.password) == (login["username"], login["password"])
        assert not (micado_stack.micado_cli_dir / "credentials-cloud-api.yml").exists()
        client.master.destroy(master_id)
    finally:
        micado_stack.vms.delete("my-host")
