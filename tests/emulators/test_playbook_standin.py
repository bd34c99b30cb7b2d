"""micado.testing.playbook's day-2 shapes, run by the real ansible-playbook against local sshd VMs.

Through the installer's own working copy (prepare_workdir) and runner (run_playbook):
``--tags update-auth`` pushes new cloud credentials to a master and runs nothing else of
the role; a full run leaves the master's kubeconfig (and, 0.12, the K3s join token); the
0.12 layout's ``agent.yml`` joins agent VMs and, with ``--tags edge-files``, writes the
edge join script and registries file three folders above its run folder.

A full run takes most of the time (15-20 s here), so one 0.12 master is deployed for the
module and the tests that need one share it; each leaves it deployed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from micado.config import paths
from micado.exceptions import InstallError
from micado.installer import ssh
from micado.installer.ansible import prepare_workdir
from micado.installer.playbooks import PlaybookSource, PlaybookTree
from micado.installer.runner import WorkDir, run_playbook
from micado.testing.playbook import (
    AGENT_FILE,
    AGENT_PLAYBOOK,
    CERT_FILE,
    CLOUD_CREDENTIALS_FILE,
    EDGE_REGISTRIES_FILE,
    EDGE_SCRIPT_FILE,
    KUBECONFIG_FILES,
    NODE_TOKEN_FILE,
    READY_FILE,
    REGISTRIES_FILE,
    SETTINGS_FILE,
    UPDATE_AUTH_LOG,
    build_tree,
)
from micado.testing.tls import split_pem
from micado.testing.vm import LocalVM, VMPool, free_port, random_loopback_address

pytestmark = pytest.mark.stack  # every test runs ansible-playbook against sshd VMs

PASSWORD = "web-Pa55word-1"
REGISTRIES = "configs:\n  registry.example:\n    auth:\n      username: me\n      password: registry-Secret-9\n"


def cloud_credentials(secret: str) -> str:
    return f"resource:\n  - type: nova\n    auth_data:\n      username: cloud-user\n      password: {secret}\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _yaml(path: Path) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text())


@dataclass
class Lab:
    """The module's client (HOME, MiCADO dir, key pair) and VM pool; VMs and release trees on demand."""

    folder: Path
    keypair: ssh.KeyPair
    pool: VMPool
    trees: dict[str, PlaybookTree] = field(default_factory=dict)

    def boot(self, name: str) -> LocalVM:
        """A running VM authorising the client's key, its host key recorded."""
        user_data = f"#cloud-config\nusers:\n  - name: micado\n    ssh_authorized_keys: ['{self.keypair.public_key}']\n"
        self.pool.boot({"id": name, "user_data": user_data})
        self.pool.set_address(name, random_loopback_address())
        vm = self.pool.vm(name)
        assert vm.address is not None
        ssh.wait_for_ssh(vm.address, port=vm.port, user=vm.user, key=self.keypair.private_key, timeout=20)
        return vm

    def tree(self, layout: str) -> PlaybookTree:
        if layout not in self.trees:
            self.trees[layout] = PlaybookSource(build_tree(layout, self.folder / f"ansible-micado-{layout}")).resolve()
        return self.trees[layout]

    def credentials(self, name: str, secret: str) -> Path:
        path = self.folder / f"{name}-credentials-cloud-api.yml"
        path.write_text(cloud_credentials(secret))
        return path

    def prepare(self, layout: str, vm: LocalVM, credentials: Path, registries: Path | None = None) -> WorkDir:
        """The master's working copy, made anew (each run removes the copy's secret files)."""
        assert vm.address is not None
        return prepare_workdir(vm.server_id, self.tree(layout), host=vm.address, micado_user="admin",
                               micado_password=PASSWORD, cloud_credentials=credentials,
                               registry_credentials=registries, ssh_user=vm.user, ssh_port=vm.port,
                               ssh_key=self.keypair.private_key, become=False)

    def host(self, vm: LocalVM) -> dict[str, Any]:
        """Inventory variables reaching ``vm`` as the installer's inventory reaches a master."""
        return {"ansible_host": vm.address, "ansible_port": vm.port, "ansible_user": vm.user,
                "ansible_connection": "ssh", "ansible_ssh_private_key_file": str(self.keypair.private_key),
                "ansible_ssh_common_args": shlex.join(ssh.ssh_options(port=vm.port, key=self.keypair.private_key))}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("stand-in")
    with pytest.MonkeyPatch.context() as monkeypatch:
        (folder / "home").mkdir()
        monkeypatch.setenv("HOME", str(folder / "home"))
        monkeypatch.setenv(paths.ENV_DIR, str(folder / "micado-cli"))
        keypair = ssh.ensure_keypair()
        with VMPool(folder / "vms", ssh_port=free_port(), api_port=free_port()) as pool:
            yield Lab(folder, keypair, pool)


@dataclass(frozen=True)
class Master:
    vm: LocalVM
    credentials: Path
    registries: Path


@pytest.fixture(scope="module")
def masters(lab: Lab) -> dict[str, Master]:
    """A 0.12 (K3s) and a 0.9 (kubeadm) master, deployed by full runs at the same time, with
    registry credentials."""
    from concurrent.futures import ThreadPoolExecutor

    registries = {"0.12": lab.folder / "registries.yml", "0.9": lab.folder / "credentials-docker-registry.yml"}
    registries["0.12"].write_text(REGISTRIES)
    registries["0.9"].write_text("DOCKER_REPO: https://registry.example\nDOCKER_USER: me\nDOCKER_PASS: docker-Secret-8\n")

    def deploy(layout: str) -> Master:
        vm = lab.boot(f"master-{layout}")
        credentials = lab.credentials(f"master-{layout}", "first-Secret-1")
        _run(lab.prepare(layout, vm, credentials, registries[layout]))
        return Master(vm, credentials, registries[layout])

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {layout: pool.submit(deploy, layout) for layout in registries}
        return {layout: future.result(timeout=300) for layout, future in futures.items()}


@pytest.fixture
def master(masters: dict[str, Master]) -> Master:
    """The 0.12 master."""
    return masters["0.12"]


def _run(work: WorkDir, *args: str) -> set[str]:
    """Run the play; the names of the tasks it started (without their role), and their results."""
    tasks: set[str] = set()
    run_playbook(work, timeout=120, extra_args=args,
                 progress=lambda stage, message: tasks.add(message.split(" : ", 1)[-1]) if stage == "ansible" else None)
    return tasks


def _log_lines(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / UPDATE_AUTH_LOG).read_text().splitlines()]


def _password(root: Path) -> str:
    """The password of the cloud credentials stored on the master."""
    return str(_yaml(root / CLOUD_CREDENTIALS_FILE)["resource"][0]["auth_data"]["password"])


def _check_kubeconfig(layout: str, vm: LocalVM) -> None:
    path = vm.root / KUBECONFIG_FILES[layout]
    assert _mode(path) == 0o600
    config = _yaml(path)
    assert (config["apiVersion"], config["kind"]) == ("v1", "Config")
    (cluster,), (user,), (context,) = config["clusters"], config["users"], config["contexts"]
    assert config["current-context"] == context["name"]
    assert context["context"] == {"cluster": cluster["name"], "user": user["name"]}
    server = "https://127.0.0.1:6443" if layout == "0.12" else f"https://{vm.address}:6443"
    assert cluster["cluster"]["server"] == server
    certificate, _key = split_pem((vm.root / CERT_FILE).read_bytes())
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == certificate
    assert re.fullmatch(r"[0-9a-f]{64}", user["user"]["token"])


# --- full runs: what Kubernetes leaves on the master ----------------------------------------


def test_a_k3s_master_has_its_kubeconfig_join_token_and_credentials(lab: Lab, master: Master) -> None:
    root = master.vm.root
    _check_kubeconfig("0.12", master.vm)
    token = root / NODE_TOKEN_FILE
    assert _mode(token) == 0o600
    certificate, _key = split_pem((root / CERT_FILE).read_bytes())
    assert re.fullmatch(rf"K10{hashlib.sha256(certificate).hexdigest()}::server:[0-9a-f]{{32}}\n", token.read_text())
    assert _mode(root / CLOUD_CREDENTIALS_FILE) == 0o600
    first = _log_lines(root)[0]
    assert (first["tags"], first["files"]) == (["all"], [lab.tree("0.12").layout.variables["cloud_cred_path"]])
    assert _mode(root / UPDATE_AUTH_LOG) == 0o600


def test_a_kubeadm_master_has_admin_conf_and_no_join_token(masters: dict[str, Master]) -> None:
    vm = masters["0.9"].vm
    _check_kubeconfig("0.9", vm)
    assert not (vm.root / NODE_TOKEN_FILE).exists()
    assert _password(vm.root) == "first-Secret-1"
    (line,) = _log_lines(vm.root)
    assert (line["tags"], line["files"]) == (["all"], ["./credentials-cloud-api.yml"])


# --- update-auth ----------------------------------------------------------------------------


def test_update_auth_pushes_new_credentials_to_a_running_master(lab: Lab, master: Master) -> None:
    root = master.vm.root
    untouched = {path: path.read_bytes() for path in (root / READY_FILE, root / CERT_FILE, root / NODE_TOKEN_FILE,
                                                      root / KUBECONFIG_FILES["0.12"], root / REGISTRIES_FILE)}
    before = _log_lines(root)
    master.credentials.write_text(cloud_credentials("second-Secret-2"))
    tasks = _run(lab.prepare("0.12", master.vm, master.credentials), "--tags", "update-auth")
    assert _password(root) == "second-Secret-2"
    assert _mode(root / CLOUD_CREDENTIALS_FILE) == 0o600
    assert "(MiCADO) Store the cloud credentials" in tasks
    assert "(System) Read the VM environment" in tasks  # the VM pre-tasks run under any tag
    assert {path: path.read_bytes() for path in untouched} == untouched  # the master was not redeployed

    *earlier, last = _log_lines(root)
    assert earlier == before
    assert (last["tags"], last["files"]) == (["update-auth"], before[0]["files"])
    assert last["time"] > before[-1]["time"]
    for secret in ("first-Secret-1", "second-Secret-2", PASSWORD):
        assert secret not in (root / UPDATE_AUTH_LOG).read_text()
        assert secret not in paths.log_file(master.vm.server_id).read_text()


@pytest.mark.parametrize("layout", ["0.9", "0.10"])
def test_update_auth_runs_only_the_credentials_tasks(lab: Lab, layout: str) -> None:
    """On a VM nothing was deployed to: what appears there is all the role did."""
    vm = lab.boot(f"auth-only-{layout}")
    tasks = _run(lab.prepare(layout, vm, lab.credentials(layout, f"only-Secret-{layout}")), "--tags", "update-auth")
    assert _password(vm.root) == f"only-Secret-{layout}"
    assert _mode(vm.root / CLOUD_CREDENTIALS_FILE) == 0o600
    (line,) = _log_lines(vm.root)
    assert (line["tags"], line["files"]) == (["update-auth"], [lab.tree(layout).layout.variables["cloud_cred_path"]])
    assert "(Ansible) Look for the cloud credentials file" in tasks
    for path in (SETTINGS_FILE, CERT_FILE, READY_FILE, KUBECONFIG_FILES[layout]):
        assert not (vm.root / path).exists(), path
    lab.pool.delete(vm.server_id)


# --- agent.yml (0.12) -------------------------------------------------------------------------


def _agent_run(lab: Lab, work: WorkDir, master: LocalVM, agents: dict[str, LocalVM], *args: str) -> set[str]:
    """Run agent.yml with an inventory holding the master and an ``agents`` group."""
    inventory = work.path / "agents-inventory.yml"
    inventory.write_text(json.dumps({"all": {
        "hosts": {work.layout.host: lab.host(master)},
        "children": {"agents": {"hosts": {name: lab.host(vm) for name, vm in agents.items()}}},
    }}))
    return _run(dataclasses.replace(work, playbook=AGENT_PLAYBOOK, inventory=inventory), *args)


def test_agent_playbook_joins_the_agents(lab: Lab, master: Master) -> None:
    agents = {"Agent-One": lab.boot("agent-1")}
    token = (master.vm.root / NODE_TOKEN_FILE).read_text().strip()
    work = lab.prepare("0.12", master.vm, master.credentials)
    tasks = _agent_run(lab, work, master.vm, agents)
    assert "(K3s) Write the edge join script" not in tasks  # tagged never: only with --tags edge-files
    assert not (work.path / EDGE_SCRIPT_FILE).exists()
    for name, vm in agents.items():
        agent = vm.root / AGENT_FILE
        assert _mode(agent) == 0o600
        assert json.loads(agent.read_text()) == {"server": f"https://{master.vm.address}:6443",
                                                 "node_name": name.lower(), "token": token,
                                                 "external_ip": vm.address}
        assert (vm.root / REGISTRIES_FILE).read_text() == REGISTRIES
        assert _mode(vm.root / REGISTRIES_FILE) == 0o600
        lab.pool.delete(vm.server_id)
    assert token not in paths.log_file(master.vm.server_id).read_text()


def test_edge_files_are_written_beside_the_release(lab: Lab, master: Master) -> None:
    agent = lab.boot("edge-agent")
    token = (master.vm.root / NODE_TOKEN_FILE).read_text().strip()
    work = lab.prepare("0.12", master.vm, master.credentials)
    _agent_run(lab, work, master.vm, {"edge-agent": agent}, "--tags", "edge-files")

    assert work.run_dir.parents[2] == work.path  # ../../../ of <work>/ansible-micado/playbook/project
    script = work.path / EDGE_SCRIPT_FILE
    assert _mode(script) == 0o755
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n")
    assert f'--server "https://{master.vm.address}:6443"' in text
    assert f'--token "{token}"' in text
    assert 'INSTALL_K3S_EXEC="agent"' in text
    assert "YOUR_UNIQUE_EDGE_HOSTNAME" in text and "YOUR_EDGE_PUBLIC_IP" in text
    assert (work.path / EDGE_REGISTRIES_FILE).read_text() == REGISTRIES
    assert _mode(work.path / EDGE_REGISTRIES_FILE) == 0o600
    assert not (agent.root / AGENT_FILE).exists()  # the agents are joined without the tag only
    assert token not in paths.log_file(master.vm.server_id).read_text()
    assert (master.vm.root / NODE_TOKEN_FILE).read_text().strip() == token  # kept, as K3s keeps it
    lab.pool.delete(agent.server_id)


def test_agent_playbook_refuses_a_target_that_runs_no_master(lab: Lab) -> None:
    target, agent = lab.boot("not-a-master"), lab.boot("lone-agent")
    work = lab.prepare("0.12", target, lab.credentials("none", "cloud-Secret-4"))
    with pytest.raises(InstallError) as caught:
        _agent_run(lab, work, target, {"lone-agent": agent})
    assert caught.value.task == "(MiCADO) Check target is a MiCADO control plane"
    assert not (agent.root / AGENT_FILE).exists()
    for vm in (target, agent):
        lab.pool.delete(vm.server_id)
