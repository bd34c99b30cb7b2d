"""The suite's pytest setup: the local MiCADO stack's fixtures (an opt-in plugin for users
too) and the marks, given by the folder a test lives in:

* ``tests/unit``: the library's own code, through real protocols against in-process
  loopback servers (mark ``unit``);
* ``tests/emulators``: the emulators' contracts, the ones users test against (``emulators``);
* ``tests/e2e``: whole workflows on the local stack: sshd, ansible-playbook, the CLI, the
  documentation and its examples (``e2e``).

Every e2e test, and any test that uses a fixture starting VMs, moto or a whole stack, is
also marked ``stack`` (as is a module that declares ``pytestmark = pytest.mark.stack``
because it starts such processes itself), so ``pytest -m "not stack"`` is the fast loop.
Helpers live in ``tests/support`` (on ``sys.path``, see ``pytest.ini``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from micado.installer import ssh

pytest_plugins = ["micado.testing.pytest_plugin"]

#: The folders of the suite and the mark each gives its tests.
FOLDER_MARKS = {"unit": pytest.mark.unit, "emulators": pytest.mark.emulators, "e2e": pytest.mark.e2e}
#: Fixtures that start a VM, a stack, moto or ansible: any test using one is end to end too.
STACK_FIXTURES = {"micado_stack", "vm_pool", "ec2_cloud", "ec2_stack"}
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        if folder not in FOLDER_MARKS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in one of tests/{{{','.join(FOLDER_MARKS)}}}")
        item.add_marker(FOLDER_MARKS[folder])
        if folder == "e2e" or STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture
def host(micado_stack, user_key: Path):
    """A machine of the user's: a local VM authorising ``user_key``, at a loopback address."""
    from micado.testing.vm import random_loopback_address

    server_id = "my-own-host"
    micado_stack.vms.boot({"id": server_id, "user_data": "#cloud-config\nssh_authorized_keys:\n  - "
                           + user_key.with_suffix(".pub").read_text().strip() + "\n"})
    address = random_loopback_address()
    micado_stack.vms.set_address(server_id, address)
    yield address
    micado_stack.vms.delete(server_id)


@pytest.fixture
def user_key(tmp_path: Path) -> Path:
    """The user's own key pair, as ssh-keygen makes it."""
    key = tmp_path / "user-keys" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", str(key)], check=True)
    return key


@pytest.fixture
def keypair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssh.KeyPair:
    """The client's own key pair, in a fresh HOME and MiCADO dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MICADO_CLI_DIR", str(tmp_path / "micado-cli"))
    return ssh.ensure_keypair()
