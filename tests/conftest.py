"""The suite's pytest setup: the local MiCADO stack's fixtures (an opt-in plugin for users too),
and the ``stack`` mark on the end-to-end tests, so ``pytest -m "not stack"`` is the fast loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from micado.installer import ssh

pytest_plugins = ["micado.testing.pytest_plugin"]

#: Modules whose tests run the whole local stack (real sshd, ansible-playbook, the CLI, moto,
#: Keystone): about four fifths of the suite's time.
STACK_MODULES = {
    "test_master", "test_master_ec2", "test_master_openid", "test_interrupted", "test_real_releases",
    "test_real_keystone", "test_doc_examples", "test_demo", "test_stack", "test_cli", "test_cli_messages",
    "test_launcher_ec2", "test_ec2_vms", "test_docs",
}
#: Fixtures that start a VM, a stack, moto or ansible: any test using one is end to end too.
STACK_FIXTURES = {"micado_stack", "vm_pool", "ec2_cloud", "ec2_stack"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if module in STACK_MODULES or STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture
def keypair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssh.KeyPair:
    """The client's own key pair, in a fresh HOME and MiCADO dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MICADO_CLI_DIR", str(tmp_path / "micado-cli"))
    return ssh.ensure_keypair()
