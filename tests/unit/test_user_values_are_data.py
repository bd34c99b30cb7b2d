"""Every value the caller hands to Ansible reaches the play as data, never as a template.

Ansible evaluates ``{{ }}``, ``{% %}`` and ``{# #}`` in the variables it reads, on this
machine (the controller): a ``lookup('pipe', ...)`` in a setting would run a command
here. Each kind of value (settings and their nested keys and lists, the web login, the
Grafana password, registry and cloud credentials, the deploy host's key path and the
CLI's ``--set``) gets a ``lookup('pipe', 'touch ...')``, a ``{% %}`` statement and a
``{#`` comment opener, goes through ``master.create`` / ``master.deploy`` on the local
stack, and must arrive on the VM as it was written, with no file made by the lookup.
The stand-in playbook reads each value the way the real releases do (``include_vars``
of the credentials, ``copy`` of k3s's registries file, templates of the web login).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import InvalidArgument
from micado.testing.playbook import (
    CLOUD_CREDENTIALS_FILE,
    DOCKER_REGISTRY_FILE,
    GRAFANA_PASSWORD_FILE,
    MORE_SETTINGS_FILE,
    REGISTRIES_FILE,
    SETTINGS_FILE,
    WEB_LOGIN_FILE,
    build_tree,
)
from micado.testing.stack import LocalStack


class Traps:
    """Values that would make a file in ``folder`` if Ansible evaluated them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def lookup(self, *, spaces: bool = True) -> str:
        """``{{ lookup('pipe', 'touch <folder>/pwned-N') }}`` (no white space with ``spaces=False``)."""
        self.count += 1
        target = self.folder / f"pwned-{self.count}"
        if spaces:
            return f"{{{{ lookup('pipe', 'touch {target}') }}}}"
        return f"{{{{lookup('pipe','touch${{IFS}}{target}')}}}}"

    def value(self, prefix: str = "") -> str:
        """A lookup, a statement and a comment opener in one text."""
        return f"{prefix}{self.lookup()}{{% if true %}}x{{% endif %}}{{# not a comment"

    def sprung(self) -> list[str]:
        return sorted(path.name for path in self.folder.glob("pwned-*"))


@pytest.fixture
def traps(tmp_path: Path) -> Traps:
    folder = tmp_path / "traps"
    folder.mkdir()
    return Traps(folder)


@pytest.fixture
def stack_09(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The local stack serving the 0.9-shaped stand-in (registry credentials read with include_vars)."""
    with LocalStack(tmp_path / "stack-09", layout="0.9") as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        yield stack


def _add_cloud_entry(stack: LocalStack, traps: Traps) -> tuple[str, str]:
    """A second cloud in the credentials file (handed to the master, unused for the launch)."""
    access, secret = traps.value("AKIA"), traps.value("sk-")
    path = stack.micado_cli_dir / "credentials-cloud-api.yml"
    path.write_text(path.read_text() + "  - type: ec2\n    auth_data:\n"
                    f"      accesskey: {json.dumps(access)}\n      secretkey: {json.dumps(secret)}\n")
    return access, secret


def _vm_root(stack: LocalStack) -> Path:
    (vm,) = stack.vms.vms()
    return vm.root


def _ec2_entry(root: Path) -> dict[str, str]:
    """The ec2 entry of the credentials the play stored on the VM (Ansible's to_yaml of include_vars)."""
    import yaml

    stored = yaml.safe_load((root / CLOUD_CREDENTIALS_FILE).read_text())
    (entry,) = [item for item in stored["resource"] if item["type"] == "ec2"]
    return entry["auth_data"]


def _check_web_login(client: MicadoClient, root: Path, user: str, password: str) -> None:
    import requests

    assert json.loads((root / WEB_LOGIN_FILE).read_text()) == {"username": user, "password": password}
    url = client.master.endpoint + "v2.0/applications/"
    cert = client.master.info()["cert_path"]
    assert requests.get(url, auth=(user, password), verify=cert, timeout=10).ok


def test_jinja_in_every_value_of_a_create_is_data(micado_stack: LocalStack, traps: Traps, tmp_path: Path) -> None:
    settings = {
        "web_session_timeout": traps.value(),
        "master_hostname": traps.value("host-"),
        "grafana_admin_pwd": traps.value("graf-"),
        "docker_images": {traps.value("key-"): traps.value("image-"), "zorp": [traps.value(), 7, True, None]},
        "supported_connections": ["ssh", traps.value()],  # also tested in an assert of the play
    }
    user, password = traps.lookup(spaces=False), traps.value("pw-")
    registries = tmp_path / "registries.yml"
    registries.write_text("configs:\n  registry.example:\n    auth:\n      username: me\n"
                          f"      password: {json.dumps(traps.value('reg-'))}  # {{{{ a comment }}}}\n")
    access, secret = _add_cloud_entry(micado_stack, traps)

    client = MicadoClient(launcher="openstack")
    client.master.create(**micado_stack.create_kwargs, micado_user=user, micado_password=password,
                         settings=settings, registry_credentials=registries)
    try:
        assert traps.sprung() == []
        root = _vm_root(micado_stack)
        assert json.loads((root / SETTINGS_FILE).read_text())["web_session_timeout"] == settings["web_session_timeout"]
        assert json.loads((root / MORE_SETTINGS_FILE).read_text()) == {
            name: settings[name] for name in ("master_hostname", "docker_images", "supported_connections")}
        assert (root / GRAFANA_PASSWORD_FILE).read_text() == settings["grafana_admin_pwd"]
        assert client.master.credentials().grafana_password == settings["grafana_admin_pwd"]
        _check_web_login(client, root, user, password)
        assert (root / REGISTRIES_FILE).read_bytes() == registries.read_bytes()  # copied as it is (0.12)
        assert _ec2_entry(root) == {"accesskey": access, "secretkey": secret}
    finally:
        client.master.destroy()
    assert traps.sprung() == []


@pytest.mark.stack  # stack_09 is a whole local stack of its own
def test_the_09_shape_reads_registry_credentials_as_variables_and_gets_them_as_data(
        stack_09: LocalStack, traps: Traps, tmp_path: Path) -> None:
    registry = {"DOCKER_REPO": traps.value("https://"), "DOCKER_USER": traps.value("u-"),
                "DOCKER_PASS": traps.value("p-")}
    registries = tmp_path / "credentials-docker-registry.yml"
    registries.write_text("".join(f"{name}: {json.dumps(value)}\n" for name, value in registry.items()))
    access, secret = _add_cloud_entry(stack_09, traps)
    settings = {"web_session_timeout": traps.value(), "docker_images": {"zorp": traps.value()}}

    client = MicadoClient(launcher="openstack")
    client.master.create(**stack_09.create_kwargs, settings=settings, registry_credentials=registries,
                         micado_password=traps.value("pw-"))
    try:
        assert traps.sprung() == []
        root = _vm_root(stack_09)
        assert json.loads((root / DOCKER_REGISTRY_FILE).read_text()) == {
            "server": registry["DOCKER_REPO"], "username": registry["DOCKER_USER"],
            "password": registry["DOCKER_PASS"]}
        assert _ec2_entry(root) == {"accesskey": access, "secretkey": secret}
        assert json.loads((root / SETTINGS_FILE).read_text())["web_session_timeout"] == settings["web_session_timeout"]
        assert json.loads((root / MORE_SETTINGS_FILE).read_text())["docker_images"] == settings["docker_images"]
    finally:
        client.master.destroy()


def test_a_release_that_would_template_a_credentials_file_is_refused_before_the_cloud(
        micado_stack: LocalStack, traps: Traps, tmp_path: Path) -> None:
    """A release that reads the registries file through ``template`` would evaluate its text."""
    tree = build_tree("0.12", tmp_path / "templating-release")
    tasks = tree / "playbook/project/roles/micado_master/start/tasks/registry-login.yml"
    tasks.write_text(tasks.read_text() + '\n- name: Render the registries\n  ansible.builtin.template:\n'
                     '    src: "{{ registry_cred_path }}"\n    dest: /tmp/never\n')
    registries = tmp_path / "registries.yml"
    secret = traps.value()
    registries.write_text(f"configs:\n  r:\n    auth:\n      password: {json.dumps(secret)}\n")
    client = MicadoClient(launcher="openstack")
    with pytest.raises(InvalidArgument) as caught:
        client.master.create(**micado_stack.create_kwargs, playbook=tree, registry_credentials=registries)
    message = str(caught.value)
    assert "configs.r.auth.password" in message and "registry_cred_path" in message and "template" in message
    assert secret not in message  # the secret itself is never quoted
    assert micado_stack.cloud.servers == []
    assert client.master.list() == []
    # A value without Jinja is fine with the same release.
    registries.write_text("configs:\n  r:\n    auth:\n      password: plain-Secret-1\n")
    from micado.installer.ansible import prepare_workdir
    from micado.installer.playbooks import detect_layout

    work = prepare_workdir("srv", detect_layout(tree), host="127.0.0.2", micado_user="admin",
                           micado_password="a-long-password", ssh_key=tmp_path / "k",
                           registry_credentials=registries)
    assert (work.run_dir / work.layout.registry_credentials).read_text() == registries.read_text()


def test_deploy_takes_the_host_values_as_data(micado_stack: LocalStack, traps: Traps, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's key lives in a folder whose name is a template.

    Written for ssh's sake without '/', '%', '$' or white space (ssh expands ``%x`` and
    ``${X}`` in ``-i``): the lookup would make ``$HOME/pwned-key`` with a shell redirection.
    """
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    folder = tmp_path / "{{lookup('pipe','cd;>pwned-key')}}{#x"
    folder.mkdir()
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    micado_stack.vms.boot({"id": "my-host", "user_data": "#cloud-config\nssh_authorized_keys:\n  - "
                           + key.with_suffix(".pub").read_text().strip() + "\n"})
    from micado.testing.vm import random_loopback_address

    host = random_loopback_address()
    micado_stack.vms.set_address("my-host", host)
    kwargs = micado_stack.create_kwargs
    password = traps.value("pw-")
    settings = {"web_session_timeout": traps.value()}
    client = MicadoClient(launcher="openstack")
    client.master.deploy(host=host, ssh_key=key, ssh_user=kwargs["ssh_user"], ssh_port=kwargs["ssh_port"],
                         api_port=kwargs["api_port"], remote_cert_path=kwargs["remote_cert_path"],
                         micado_password=password, settings=settings, ssh_timeout=60)
    try:
        assert traps.sprung() == []
        assert not (home / "pwned-key").exists()
        root = _vm_root(micado_stack)
        assert json.loads((root / SETTINGS_FILE).read_text())["web_session_timeout"] == settings["web_session_timeout"]
        _check_web_login(client, root, "admin", password)
    finally:
        client.master.destroy()
        micado_stack.vms.delete("my-host")


def test_the_command_line_set_is_data(micado_stack: LocalStack, traps: Traps, tmp_path: Path) -> None:
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(micado_stack.create_kwargs))
    timeout, hostname = traps.value("x"), traps.value("h")

    def micado(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "micado", *args], env=dict(os.environ), capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)

    created = micado("--json", "master", "create", "--kwargs-file", str(kwargs_file),
                     "--set", f"web_session_timeout={timeout}", "--set", f"master_hostname={hostname}")
    assert created.returncode == 0, created.stderr
    try:
        assert traps.sprung() == []
        root = _vm_root(micado_stack)
        assert json.loads((root / SETTINGS_FILE).read_text())["web_session_timeout"] == timeout
        assert json.loads((root / MORE_SETTINGS_FILE).read_text())["master_hostname"] == hostname
    finally:
        assert micado("master", "destroy", json.loads(created.stdout)["id"]).returncode == 0
    assert traps.sprung() == []
