"""OpenStack users keep their config: ``MicadoClient(cloud=NAME)`` and ``OS_*`` read by openstacksdk's loader."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.config.credentials import PasswordAuth, load_credentials
from micado.launcher.openstack.clouds_yaml import load_cloud
from micado.exceptions import CredentialsError, InvalidArgument
from paths import ADTS



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
    path.chmod(0o600)  # it holds the password
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
    assert path.is_relative_to(micado_stack.micado_cli_dir / "work")  # in the MiCADO dir's private work area
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
    no_clouds = clouds_yaml.parent / "none.yaml"
    no_clouds.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(no_clouds))
    for name, value in (("OS_AUTH_URL", login["auth_url"]), ("OS_USERNAME", login["username"]),
                        ("OS_PASSWORD", login["password"]), ("OS_PROJECT_ID", login["project_id"])):
        monkeypatch.setenv(name, value)
    cloud = load_cloud(None)
    assert (cloud.name, cloud.auth_url, cloud.project_id) == ("envvars", login["auth_url"], login["project_id"])
    assert login["password"] not in repr(cloud)
    assert MicadoClient(launcher="openstack").master._configured_login() == cloud


def test_an_unknown_cloud_lists_the_configured_ones(clouds_yaml):
    with pytest.raises(CredentialsError, match="'elsewhere'.*clouds configured: local"):
        load_cloud("elsewhere")


def test_the_cli_logs_in_through_clouds_yaml_for_create_and_destroy(micado_stack, clouds_yaml, tmp_path):
    from cli_run import micado

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
    from cli_run import micado

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


KILLED_CLOUD_CREATE = """
import json, os, signal, sys
from micado import MicadoClient

def progress(stage, message):
    if stage == sys.argv[2] and sys.argv[3] in message:
        os.kill(os.getpid(), signal.SIGKILL)

MicadoClient(launcher="openstack", cloud="local").master.create(progress=progress, **json.loads(sys.argv[1]))
"""


def _files_holding(secret: bytes, *roots: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    found = []
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            if any(path.is_relative_to(other) for other in skip) or path.is_symlink() or not path.is_file():
                continue
            if secret in path.read_bytes():
                found.append(path)
    return found


@pytest.mark.parametrize("how, stage, message", [
    ("library", "ansible", "running "),  # the working copy is made, the play not started
    ("library", "ansible", "Start the TOSCA Submitter"),  # ansible-playbook runs
    ("cli", "ansible", "Start the TOSCA Submitter"),
])
def test_a_create_with_a_cloud_killed_mid_play_leaves_the_password_only_in_the_private_work_area(
        micado_stack, clouds_yaml, tmp_path, how: str, stage: str, message: str) -> None:
    """SIGKILL during ``--cloud`` create: the derived credentials are in the MiCADO dir (0700), and cleanup takes them."""
    password = str(micado_stack.cloud.login["password"]).encode()
    temp = tmp_path / "tmpdir"  # the killed program's temporary folder, to look into
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    kwargs = {k: v for k, v in micado_stack.create_kwargs.items()
              if k not in ("auth_url", "project_id", "region", "user_domain_name")}
    if how == "library":
        killed = subprocess.run([sys.executable, "-c", KILLED_CLOUD_CREATE, json.dumps(kwargs), stage, message],
                                env=env, capture_output=True, text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    else:
        kwargs_file = tmp_path / "kwargs.json"
        kwargs_file.write_text(json.dumps(kwargs))
        process = subprocess.Popen([sys.executable, "-m", "micado", "master", "create", "--cloud", "local",
                                    "--kwargs-file", str(kwargs_file)], env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        for line in process.stderr:
            if f"{stage}: " in line and message in line:
                process.kill()
                break
        process.communicate(timeout=300)
        assert process.returncode == -signal.SIGKILL

    cli_dir = micado_stack.micado_cli_dir
    # the user's own clouds.yaml holds it, and the master's disk gets it by design: nothing else outside the MiCADO dir
    outside = _files_holding(password, temp, tmp_path, micado_stack.base_dir,
                             skip=(clouds_yaml, cli_dir, micado_stack.vms.base_dir))
    assert outside == []
    inside = _files_holding(password, cli_dir)
    assert inside, "the killed play's credentials copy should be in the working copy until cleanup"
    for path in inside:
        assert path.is_relative_to(cli_dir / "work")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        work_copy = cli_dir / "work" / path.relative_to(cli_dir / "work").parts[0]
        for folder in (cli_dir / "work", work_copy):  # nobody else can get in
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

    client = MicadoClient(launcher="openstack", cloud="local")
    removed = client.master.cleanup()
    assert all(item.removed for item in removed), [str(item) for item in removed]
    assert _files_holding(password, cli_dir) == []
    assert micado_stack.cloud.leftovers()["servers"] == []
    assert client.master.list() == []


# --- broken and doubtful clouds.yaml files: one typed error naming the file, nothing sent ----------

_LOGIN = {"auth_url": "https://keystone.example:5000/v3", "username": "u", "password": "a-password",
          "project_id": "p"}


def _clouds(auth_type: str | None = None) -> str:
    cloud: dict[str, object] = {"auth": _LOGIN}
    if auth_type is not None:
        cloud["auth_type"] = auth_type
    return json.dumps({"clouds": {"local": cloud}})


def _broken_file(case: str, folder: Path) -> tuple[dict[str, str], str, str | None]:
    """A broken configuration: the environment that points at it, what the error says, the file it names."""
    path = folder / "clouds.yaml"
    if case == "bad YAML":
        path.write_text("clouds:\n  local: [\n")
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "is not valid YAML at line 3", str(path)
    if case == "clouds: 5":
        path.write_text("clouds: 5\n")
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "its 'clouds' is a number, not a mapping", str(path)
    if case == "a cloud that is text":
        path.write_text("clouds:\n  local: just text\n")
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "cloud 'local' is text, not a mapping", str(path)
    if case == "auth: 5":
        path.write_text("clouds:\n  local:\n    auth: 5\n")
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "the auth of cloud 'local' is not a mapping", str(path)
    if case == "binary":
        path.write_bytes(bytes(range(256)) * 8)
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "is not UTF-8 text", str(path)
    if case == "folder":
        path.mkdir()
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "is a folder, not a file", str(path)
    if case == "/dev/zero":
        return {"OS_CLIENT_CONFIG_FILE": "/dev/zero"}, "is not a regular file", "/dev/zero"
    if case == "named pipe":  # opening it for reading would wait for a writer forever
        os.mkfifo(path)
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "is not a regular file", str(path)
    if case == "too large":
        path.write_text("# " + "x" * (300 << 10) + "\n" + _clouds())
        return {"OS_CLIENT_CONFIG_FILE": str(path)}, "larger than", str(path)
    if case in ("auth_type: token", "auth_type: v3oidcpassword"):
        path.write_text(_clouds(case.partition(": ")[2]))
        path.chmod(0o600)
        return ({"OS_CLIENT_CONFIG_FILE": str(path)},
                "supported: password, v3password, v3applicationcredential", str(path))
    if case == "OS_CLIENT_CONFIG_FILE=/nonexistent":
        return ({"OS_CLIENT_CONFIG_FILE": str(folder / "nonexistent")},
                f"OS_CLIENT_CONFIG_FILE names {folder / 'nonexistent'}, which does not exist", None)
    if case == "secure.yaml a folder":
        path.write_text(_clouds())
        path.chmod(0o600)
        (folder / "secure.yaml").mkdir()
        return ({"OS_CLIENT_CONFIG_FILE": str(path), "OS_CLIENT_SECURE_FILE": str(folder / "secure.yaml")},
                "is a folder, not a file", str(folder / "secure.yaml"))
    raise AssertionError(case)


BROKEN = ["bad YAML", "clouds: 5", "a cloud that is text", "auth: 5", "binary", "folder", "/dev/zero", "named pipe", "too large", "auth_type: token",
          "auth_type: v3oidcpassword", "OS_CLIENT_CONFIG_FILE=/nonexistent", "secure.yaml a folder"]


@pytest.fixture
def no_openstack_config(tmp_path, monkeypatch) -> Path:
    """A user without openstacksdk configuration: a fresh HOME and MiCADO dir, no OS_* variables."""
    for name in list(os.environ):
        if name.startswith("OS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MICADO_CLI_DIR", str(tmp_path / "micado-cli"))
    folder = tmp_path / "config"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_clouds_yaml_is_a_credentials_error_naming_the_file(no_openstack_config, monkeypatch, case):
    env, says, names = _broken_file(case, no_openstack_config)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(CredentialsError) as caught:
        MicadoClient(launcher="openstack", cloud="local").master.create()  # refused before any argument check
    assert says in str(caught.value)
    if names is not None:
        assert names in str(caught.value) and str(caught.value.path) == names
    assert "a-password" not in str(caught.value)


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_clouds_yaml_is_one_line_with_exit_code_2(no_openstack_config, case):
    from cli_run import one_line

    env, says, names = _broken_file(case, no_openstack_config)
    env = {name: value for name, value in os.environ.items() if not name.startswith("OS_")} | env
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "micado", "master", "create", "--cloud", "local"],
                            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                            cwd=no_openstack_config.parent)
    assert time.monotonic() - started < 30  # /dev/zero and a pipe are not read
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("micado: error: CredentialsError: ") and says in line
    assert names is None or names in line
    assert "a-password" not in result.stderr


def test_http_to_keystone_beyond_loopback_is_warned_about(no_openstack_config, monkeypatch, caplog):
    path = no_openstack_config / "clouds.yaml"
    path.write_text(json.dumps({"clouds": {
        "plain": {"auth": {**_LOGIN, "auth_url": "http://keystone.example:5000/v3"}},
        "loopback": {"auth": {**_LOGIN, "auth_url": "http://127.0.0.1:5000/v3"}},
        "tls": {"auth": _LOGIN}}}))
    path.chmod(0o600)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    for name in ("loopback", "tls"):
        caplog.clear()
        with pytest.raises(InvalidArgument, match="missing argument"):  # checked after the cloud: nothing sent
            MicadoClient(launcher="openstack", cloud=name).master.create()
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    caplog.clear()
    with pytest.raises(InvalidArgument, match="missing argument"):
        MicadoClient(launcher="openstack", cloud="plain").master.create()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "'plain'" in warning and "plain http" in warning and "keystone.example" in warning
    assert "a-password" not in warning


@pytest.mark.parametrize("which", ["clouds.yaml", "secure.yaml"])
def test_a_clouds_yaml_others_can_read_gets_the_credentials_file_warning(no_openstack_config, monkeypatch, caplog,
                                                                         which):
    from micado.launcher.openstack.clouds_yaml import load_cloud

    clouds = no_openstack_config / "clouds.yaml"
    secure = no_openstack_config / "secure.yaml"
    public = {key: value for key, value in _LOGIN.items() if key != "password"}
    clouds.write_text(json.dumps({"clouds": {"local": {"auth": public}}}))  # no secret: readable is fine
    secure.write_text(json.dumps({"clouds": {"local": {"auth": {"password": _LOGIN["password"]}}}}))
    clouds.chmod(0o644)
    secure.chmod(0o600)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.setenv("OS_CLIENT_SECURE_FILE", str(secure))
    assert load_cloud("local").credentials == PasswordAuth("u", "a-password", None, "p")  # merged by openstacksdk
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    if which == "clouds.yaml":
        clouds.write_text(_clouds())
    (no_openstack_config / which).chmod(0o644)
    load_cloud("local")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning == (f"{no_openstack_config / which} holds cloud secrets but others can read it; "
                       f"run: chmod 600 {no_openstack_config / which}")


def test_the_cli_warns_about_a_clouds_yaml_others_can_read(no_openstack_config):
    path = no_openstack_config / "clouds.yaml"
    path.write_text(_clouds())
    path.chmod(0o644)
    env = {name: value for name, value in os.environ.items() if not name.startswith("OS_")}
    result = subprocess.run([sys.executable, "-m", "micado", "master", "create", "--cloud", "local"],
                            env={**env, "OS_CLIENT_CONFIG_FILE": str(path)}, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2  # then: missing arguments
    assert f"{path} holds cloud secrets but others can read it; run: chmod 600 {path}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["clouds: 5", "/dev/zero", "auth_type: token", "OS_CLIENT_CONFIG_FILE=/nonexistent"])
def test_destroy_with_a_broken_clouds_yaml_is_one_line_and_keeps_the_record(no_openstack_config, case):
    from micado.config.record import MasterRecord
    from micado.config.store import MasterStore
    from cli_run import one_line

    cli_dir = no_openstack_config.parent / "micado-cli"
    cli_dir.mkdir(mode=0o700)
    MasterStore(cli_dir / "data.yml").add(MasterRecord(
        id="server-1", ip="127.0.0.1", endpoint="https://127.0.0.1:9/toscasubmitter/", api_version="v2.0",
        cert_path=None, micado_user="admin", micado_password="web-password", launcher="openstack",
        auth_url="https://keystone.example:5000/v3", project_id="p", extra={"server_id": "server-1",
                                                                            "os_cloud": "local"}))
    env, says, names = _broken_file(case, no_openstack_config)
    env = {name: value for name, value in os.environ.items() if not name.startswith("OS_")} | env
    result = subprocess.run([sys.executable, "-m", "micado", "master", "destroy", "--cloud", "local", "--yes",
                             "server-1"], env={**env, "MICADO_CLI_DIR": str(cli_dir)}, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("micado: error: CredentialsError: ") and says in line
    assert names is None or names in line
    assert [record.id for record in MasterStore(cli_dir / "data.yml").list()] == ["server-1"]
