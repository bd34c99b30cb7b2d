"""The pure parts of day-2 operations: what a record keeps, tags handed to includes, the ssh command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micado.cli.argv import split_remote_command
from micado.config.store import MasterRecord, MasterStore
from micado.installer.compat import tag_included_tasks
from micado.installer.playbooks import detect_layout, playbook_tags, release_digest, release_tags
from micado.master.operations import _pointed_at, ssh_argv
from micado.master.release import recorded_settings, split_settings
from micado.testing.playbook import build_tree


def test_secret_looking_settings_are_kept_apart_and_encrypted(tmp_path: Path) -> None:
    public, secret = split_settings({"enable_occopus": True, "registry_token": "T0ken-xyz",
                                     "grafana_admin_pwd": "G-pass"})
    assert public == {"enable_occopus": True}
    assert json.loads(secret or "") == {"registry_token": "T0ken-xyz"}
    store = MasterStore(tmp_path / "data.yml")
    record = MasterRecord(id="m1", ip="127.0.0.9", endpoint="https://127.0.0.9/toscasubmitter/", api_version="v2.0",
                          cert_path=None, micado_user="admin", micado_password="pw", grafana_password="G-pass",
                          secret_settings=secret, extra={"settings": public})
    store.add(record)
    on_disk = (tmp_path / "data.yml").read_text()
    assert "T0ken-xyz" not in on_disk and "G-pass" not in on_disk
    assert recorded_settings(store.get("m1")) == {"enable_occopus": True, "registry_token": "T0ken-xyz",
                                                  "grafana_admin_pwd": "G-pass"}
    assert "T0ken-xyz" not in repr(store.get("m1"))


def test_a_release_digest_changes_with_any_file(tmp_path: Path) -> None:
    tree = build_tree("0.12", tmp_path / "release")
    first = release_digest(tree)
    assert first == release_digest(tree)
    (tree / "playbook" / "project" / "host_vars" / "micado.yml").write_text("changed: true\n")
    assert release_digest(tree) != first


def test_the_tag_of_a_dynamic_include_reaches_its_tasks(tmp_path: Path) -> None:
    tree = build_tree("0.12", tmp_path / "release")
    run_dir = detect_layout(tree).run_dir
    tasks = run_dir / "roles" / "x" / "tasks"
    tasks.mkdir(parents=True)
    main = tasks / "main.yml"
    main.write_text("---\n- include_tasks: load-auth.yml\n  when: enable_occopus\n  tags:\n  - update-auth\n"
                    "- include_tasks: other.yml\n  tags: [start]\n- name: plain\n  debug: {msg: hi}\n"
                    "  tags: update-auth\n")
    assert "update-auth" in playbook_tags(main)
    assert "update-auth" in release_tags(detect_layout(tree))
    assert tag_included_tasks(run_dir, "update-auth") == ["roles/x/tasks/main.yml:2"]
    from micado.config.bounded_yaml import safe_load

    tasks_after = safe_load(main.read_text())
    assert tasks_after[0]["include_tasks"] == {"file": "load-auth.yml", "apply": {"tags": ["update-auth"]}}
    assert tasks_after[1]["include_tasks"] == "other.yml"  # another tag: left as it is
    assert tag_included_tasks(run_dir, "update-auth") == []  # once


@pytest.mark.parametrize(("argv", "expected"), [
    (["master", "ssh", "abc", "--", "ls", "-la"], (["master", "ssh", "abc"], ["ls", "-la"])),
    (["--json", "master", "ssh", "--", "--", "x"], (["--json", "master", "ssh"], ["--", "x"])),
    (["app", "create", "--", "ssh"], (["app", "create", "--", "ssh"], None)),
    (["master", "list"], (["master", "list"], None)),
])
def test_the_remote_command_is_what_follows_master_ssh_double_dash(argv, expected) -> None:
    assert split_remote_command(argv) == expected


def test_the_ssh_command_line_uses_only_our_key_and_known_hosts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MICADO_CLI_DIR", str(tmp_path / "micado"))
    record = MasterRecord(id="m1", ip="127.0.0.9", endpoint="", api_version="v2.0", cert_path=None,
                          micado_user="admin", micado_password="pw", extra={"ssh_user": "ubuntu", "ssh_port": 2222})
    argv = ssh_argv(record, ["cat", "a file"])
    assert argv[-3:] == ["--", "127.0.0.9", "cat 'a file'"]
    assert "-F" in argv and "/dev/null" in argv
    assert f"UserKnownHostsFile={tmp_path / 'micado' / 'ssh' / 'known_hosts'}" in argv
    assert "StrictHostKeyChecking=yes" in argv and "Port=2222" in argv
    assert argv[argv.index("-l"):argv.index("-l") + 2] == ["-l", "ubuntu"]


def test_a_kubeconfig_server_is_pointed_at_the_master() -> None:
    assert _pointed_at("https://127.0.0.1:6443", "203.0.113.7") == ("https://203.0.113.7:6443", True)
    assert _pointed_at("https://10.0.0.5:6443/", "10.0.0.5") == ("https://10.0.0.5:6443/", False)
    assert _pointed_at("https://127.0.0.1", "2001:db8::1") == ("https://[2001:db8::1]:6443", True)
