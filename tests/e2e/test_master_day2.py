"""Life after create on the local stack: update-auth, reconfigure, edge files, agents, status, ssh, kubeconfig.

Every command runs the master's own (stand-in) release again with real ``ansible-playbook``
over real SSH, through the library and through the ``micado`` entry point; the local VMs
record what they received, so the assertions are on effects.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import CredentialsError, InstallError, InvalidArgument, MicadoException
from micado.testing import playbook as standin
from micado.testing.adts import EXAMPLES, filled
from micado.testing.vm import random_loopback_address

from cli_run import micado

CLEAN = {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def vm_root(stack, master_id: str) -> Path:
    return stack.vms.vm(master_id).root


def work_copies(stack) -> list[str]:
    work = stack.micado_cli_dir / "work"
    return sorted(path.name for path in work.iterdir()) if work.is_dir() else []


def logs_text(stack) -> str:
    logs = stack.micado_cli_dir / "logs"
    return "".join(path.read_text(errors="replace") for path in logs.glob("*.log")) if logs.is_dir() else ""


def boot_host(stack, name: str, key: Path) -> str:
    """A machine of the user's: a local VM authorising ``key``; returns its address."""
    stack.vms.boot({"id": name, "user_data": "#cloud-config\nssh_authorized_keys:\n  - "
                    + key.with_suffix(".pub").read_text().strip() + "\n"})
    address = random_loopback_address()
    stack.vms.set_address(name, address)
    return address


def test_update_auth_pushes_the_new_credentials_and_keeps_the_record(micado_stack, tmp_path):
    client = MicadoClient(launcher="openstack")
    # the releases push cloud credentials for a cloud orchestrator (0.11 and later: only then)
    master_id = client.master.create(settings={"enable_occopus": True}, **micado_stack.create_kwargs)
    root = vm_root(micado_stack, master_id)
    record_before = client.master.store.get(master_id)
    release = record_before.extra["release"]
    assert release["digest"].startswith("sha256:") and release["layout"] == "0.12"
    # the rotated password: a new credentials file, given explicitly
    rotated = tmp_path / "rotated.yml"
    text = (micado_stack.micado_cli_dir / "credentials-cloud-api.yml").read_text()
    old_password = micado_stack.cloud.login["password"]
    rotated.write_text(text.replace(old_password, "Rotated-Pa55word"))
    events: list[tuple[str, str]] = []
    log = client.master.update_auth(credentials_file=rotated, progress=lambda *event: events.append(event))
    pushed = (root / standin.CLOUD_CREDENTIALS_FILE).read_text()
    assert "Rotated-Pa55word" in pushed and old_password not in pushed
    assert mode(root / standin.CLOUD_CREDENTIALS_FILE) == 0o600
    lines = (root / standin.UPDATE_AUTH_LOG).read_text().splitlines()
    assert len(lines) == 2  # the create's push, then ours
    assert "Rotated-Pa55word" not in log.read_text()
    assert any(stage == "ansible" for stage, _ in events)
    assert work_copies(micado_stack) == []  # the day-2 copy (credentials inside) is gone
    after = client.master.store.get(master_id)
    assert (after.extra, after.micado_password) == (record_before.extra, record_before.micado_password)
    # a wrong file is refused before anything runs: no new log line on the VM
    ec2_only = tmp_path / "ec2.yml"
    ec2_only.write_text("resource:\n- type: ec2\n  auth_data:\n    accesskey_id: A\n    secret_access_key: B\n")
    with pytest.raises(CredentialsError, match="nova"):
        client.master.update_auth(credentials_file=ec2_only)
    with pytest.raises(CredentialsError, match="does not exist"):
        client.master.update_auth(credentials_file=tmp_path / "missing.yml")
    assert len((root / standin.UPDATE_AUTH_LOG).read_text().splitlines()) == 2
    # the CLI, by the real entry point, on the only stored master
    result = micado("--json", "master", "update-auth")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["updated"] is True
    assert old_password in (root / standin.CLOUD_CREDENTIALS_FILE).read_text()  # the MiCADO dir's file again
    assert old_password not in result.stdout + result.stderr
    client.master.destroy()
    assert micado_stack.cloud.leftovers() == CLEAN and work_copies(micado_stack) == []


def test_reconfigure_records_new_settings_and_refuses_unknown_ones(micado_stack):
    client = MicadoClient(launcher="openstack")
    master_id = client.master.create(settings={"web_session_timeout": 900}, **micado_stack.create_kwargs)
    root = vm_root(micado_stack, master_id)
    with pytest.raises(InvalidArgument, match="not a setting"):
        client.master.reconfigure({"enable_warp_drive": True})
    client.applications.create(app_id="stressng", adt=filled(EXAMPLES / "stressng_nova.yaml"))
    settings = client.master.reconfigure({"enable_occopus": True})
    assert settings == {"web_session_timeout": 900, "enable_occopus": True}
    on_vm = json.loads((root / standin.SETTINGS_FILE).read_text())
    assert on_vm["enable_occopus"] is True and on_vm["web_session_timeout"] == 900
    # the services restarted (the API answers with the re-fetched certificate), the application is still there
    assert [app.id for app in client.applications.list()] == ["stressng"]
    client.applications.delete("stressng")
    # another program sees the new settings; the CLI puts one back to the release's default
    assert MicadoClient(launcher="openstack").master.store.get(master_id).extra["settings"]["enable_occopus"] is True
    result = micado("--json", "master", "reconfigure", master_id[:8], "--set", "web_session_timeout=null")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"] == {"enable_occopus": True}
    assert work_copies(micado_stack) == []
    client.master.destroy()


def test_edge_files_agents_kubeconfig_ssh_and_status(micado_stack, tmp_path, user_key):
    client = MicadoClient(launcher="openstack")
    master_id = client.master.create(**micado_stack.create_kwargs)
    root = vm_root(micado_stack, master_id)
    token = (root / standin.NODE_TOKEN_FILE).read_text().strip()
    # edge files: 0700 folder, 0700 script holding the token, never in logs or output
    dest = tmp_path / "edge"
    written = client.master.edge_files(dest)
    assert sorted(written) == ["connect_edge.sh"]
    assert mode(dest) == 0o700 and mode(written["connect_edge.sh"]) == 0o700
    script = written["connect_edge.sh"].read_text()
    assert token in script and f"https://{client.master.ip}:6443" in script
    result = micado("master", "edge", "--output", str(tmp_path / "edge2"))
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr + logs_text(micado_stack)
    # an agent: the user's machine joins with the token
    address = boot_host(micado_stack, "my-agent", user_key)
    client.master.add_agent(address, user_key, ssh_user=micado_stack.create_kwargs["ssh_user"],
                            ssh_port=micado_stack.create_kwargs["ssh_port"], name="edge-1")
    joined = json.loads((micado_stack.vms.vm("my-agent").root / standin.AGENT_FILE).read_text())
    assert joined["token"] == token and joined["node_name"] == "edge-1"
    assert joined["server"] == f"https://{client.master.ip}:6443"
    assert client.master.info()["agents"] == ["edge-1"]
    # kubeconfig: pointed at the master, 0600, with a tunnel hint (nothing listens on 6443 here)
    kube = client.master.kubeconfig(tmp_path / "kube.yaml")
    assert mode(kube.path) == 0o600 and kube.server == f"https://{client.master.ip}:6443"
    assert not kube.reachable and "-L 6443:127.0.0.1:6443" in kube.hint
    result = micado("--json", "master", "kubeconfig")
    assert result.returncode == 0, result.stderr
    assert mode(Path(json.loads(result.stdout)["path"])) == 0o600
    # ssh: the exit code passes through, the command runs on the master
    result = micado("master", "ssh", "--", "cat", standin.READY_FILE)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)
    assert micado("master", "ssh", master_id[:6], "--", "sh", "-c", "exit 7").returncode == 7
    # status: every check answers
    status = client.master.status()
    assert status.ok, status.as_dict()
    result = micado("--json", "master", "status", "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)[0]["ok"] is True
    assert client.master.info()["id"] == master_id
    html = client.master._repr_html_()
    assert f'href="https://{client.master.ip}' in html and "grafana" in html
    # destroy removes what day-2 commands left in the MiCADO dir; the user's edge files stay
    default_kube = micado_stack.micado_cli_dir / "kube" / f"{master_id}.yaml"
    assert default_kube.exists()
    client.master.destroy()
    assert not default_kube.exists() and work_copies(micado_stack) == []
    assert written["connect_edge.sh"].exists()


def test_day2_failures_leave_the_record_as_it_was(micado_stack, tmp_path):
    client = MicadoClient(launcher="openstack")
    tree = standin.build_tree("0.12", tmp_path / "no-tags")
    for path in tree.rglob("*.yml"):  # a release without the update-auth tag
        path.write_text(path.read_text().replace("- update-auth\n", "- renamed-auth\n"))
    master_id = client.master.create(playbook=tree, **{k: v for k, v in micado_stack.create_kwargs.items()
                                                        if k != "micado_version"})
    record = client.master.store.get(master_id)
    with pytest.raises(MicadoException, match="update-auth"):
        client.master.update_auth()
    # the release changed since create: refused, naming its checksum
    (tree / "playbook" / "project" / "extra.yml").write_text("---\n[]\n")
    with pytest.raises(InstallError, match="checksum"):
        client.master.reconfigure({"enable_occopus": True})
    (tree / "playbook" / "project" / "extra.yml").unlink()
    # the master's SSH unreachable: the play fails, the record stays, status says which check failed
    micado_stack.vms.set_address(master_id, None)
    with pytest.raises(InstallError):
        client.master.reconfigure({"enable_occopus": True})
    status = client.master.status(timeout=1.0)
    assert not status.ok and not status.check("ssh").ok and status.check("submitter").ok
    assert client.master.store.get(master_id).extra == record.extra
    assert work_copies(micado_stack) == []
    client.master.destroy()


def test_ctrl_c_mid_play_keeps_the_record(micado_stack):
    client = MicadoClient(launcher="openstack")
    master_id = client.master.create(**micado_stack.create_kwargs)
    before = client.master.store.get(master_id).extra
    process = subprocess.Popen([sys.executable, "-m", "micado", "master", "reconfigure", "--set",
                                "enable_occopus=true"], env=dict(os.environ), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (micado_stack.micado_cli_dir / "logs").glob("*.reconfigure-*.log"):
        time.sleep(0.05)
    while time.monotonic() < deadline and not any(
            "TASK" in path.read_text() for path in (micado_stack.micado_cli_dir / "logs").glob("*.reconfigure-*")):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert client.master.store.get(master_id).extra == before
    assert work_copies(micado_stack) == []
    client.master.destroy()


def test_edge_files_need_a_release_with_agent_yml(tmp_path, monkeypatch):
    from micado.testing.stack import LocalStack

    with LocalStack(tmp_path / "stack", layout="0.9") as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        client = MicadoClient(launcher="openstack")
        client.master.create(**stack.create_kwargs)
        with pytest.raises(MicadoException, match="v0.12.6"):
            client.master.edge_files(tmp_path / "edge")
        assert not (tmp_path / "edge").exists()
        client.master.update_auth()  # 0.9 has the tag
        kube = client.master.kubeconfig()
        assert kube.server == f"https://{client.master.ip}:6443"
        client.master.destroy()


def test_update_auth_and_status_on_ec2(tmp_path, monkeypatch):
    from micado.testing.ec2.stack import EC2Stack

    with EC2Stack(tmp_path / "stack") as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        client = MicadoClient(launcher="ec2")
        master_id = client.master.create(settings={"enable_terraform": True}, **stack.create_kwargs)
        client.master.update_auth()
        assert (stack.vms.vm(master_id).root / standin.UPDATE_AUTH_LOG).read_text().count("\n") == 2
        assert client.master.status().ok
        client.master.destroy()
        assert stack.leftovers() == {"instances": [], "addresses": []}
