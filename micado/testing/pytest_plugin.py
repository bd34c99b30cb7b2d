"""Pytest fixtures of the local MiCADO stack: opt in with ``pytest -p micado.testing.pytest_plugin``
or ``pytest_plugins = ["micado.testing.pytest_plugin"]`` in a ``conftest.py``.

Every fixture starts its emulator on loopback, yields a handle to it, and stops it
(and everything it started) at teardown. Heavy imports happen inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from micado.testing.ec2 import EC2Emulator
    from micado.testing.openstack import OpenStackEmulator
    from micado.testing.stack import LocalStack
    from micado.testing.submitter import SubmitterEmulator
    from micado.testing.vm import VMPool

# --- submitter fixtures --------------------------------------------------------------


@pytest.fixture
def submitter() -> Iterator[SubmitterEmulator]:
    """A started :class:`~micado.testing.submitter.SubmitterEmulator` on 127.0.0.1.

    It has user ``admin``, a random password, a fresh self-signed certificate
    (``submitter.cert_path``) and no applications; it is stopped at teardown.
    """
    from micado.testing.submitter import SubmitterEmulator

    emulator = SubmitterEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


# --- openstack fixtures --------------------------------------------------------------


@pytest.fixture
def openstack_cloud() -> Iterator[OpenStackEmulator]:
    """A started :class:`~micado.testing.openstack.OpenStackEmulator` on 127.0.0.1.

    Seeded with one image, flavors, a private and an external network, a key pair
    and the security groups ``default`` and ``all`` (see ``openstack_cloud.seeded``);
    log in with ``openstack_cloud.login``. Boots take 0.02 s. Stopped at teardown.
    """
    from micado.testing.openstack import OpenStackEmulator

    emulator = OpenStackEmulator(boot_delay=0.02)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def ec2_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EC2Emulator]:
    """A started :class:`micado.testing.ec2.EC2Emulator` (moto behind the fault proxy), no VMs."""
    from micado.testing.ec2 import EC2Emulator

    with EC2Emulator(log_dir=tmp_path_factory.mktemp("moto")) as cloud:
        yield cloud


# --- vm / stack fixtures -------------------------------------------------------------


@pytest.fixture
def vm_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VMPool]:
    """A :class:`micado.testing.vm.VMPool` in a temporary folder, on free ports.

    Every VM it still has at teardown is deleted (sshd, processes, root folder).
    """
    from micado.testing.vm import VMPool, free_port

    with VMPool(tmp_path_factory.mktemp("vms"), ssh_port=free_port(), api_port=free_port()) as pool:
        yield pool


@pytest.fixture
def micado_stack(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalStack]:
    """A started :class:`~micado.testing.stack.LocalStack` with ``MICADO_CLI_DIR`` pointing at its
    MiCADO dir; ``client.master.create(**micado_stack.create_kwargs)`` runs the whole lifecycle."""
    from micado.testing.stack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("stack")) as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        yield stack


# --- playbook fixtures ---------------------------------------------------------------


@pytest.fixture(scope="session")
def micado_playbooks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """ansible-micado-like release tarballs of the emulator playbooks, built once per session.

    A mapping ``{"0.9": Path, "0.12": Path}``: pass one as ``playbook=`` to
    ``client.master.create()`` or :class:`micado.installer.ansible.PlaybookSource`.
    See :mod:`micado.testing.playbook` for what the play does on a local VM.
    """
    from micado.testing.playbook import LAYOUTS, build_tarball

    folder = tmp_path_factory.mktemp("playbooks")
    return {layout: build_tarball(layout, folder) for layout in LAYOUTS}
