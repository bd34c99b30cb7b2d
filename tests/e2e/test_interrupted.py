"""A create killed at any step (SIGKILL cannot be caught) is visible and removable; SIGTERM/SIGHUP undo.

Each create runs in a program of its own against the local stack of the test; a
progress callback kills that program at the chosen moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import MicadoException

from leftovers import processes_mentioning

CLEAN = {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}

KILLED_CREATE = """
import json, os, signal, sys
from micado import MicadoClient

stage_wanted, message_wanted = sys.argv[2], sys.argv[3]

def progress(stage, message):
    if stage == stage_wanted and message_wanted in message:
        os.kill(os.getpid(), signal.SIGKILL)

MicadoClient(launcher="openstack").master.create(progress=progress, **json.loads(sys.argv[1]))
"""


@pytest.mark.parametrize("stage, message", [
    ("launch", "waiting for ACTIVE"),       # the server exists, its floating IP is not attached yet
    ("ssh", "starting"),                    # the server runs with its floating IP
    ("ansible", "Start the TOSCA Submitter"),  # ansible-playbook runs, credentials in the working copy
    ("certificate", "starting"),            # deployed, not recorded as ready
])
def test_a_create_killed_at_each_step_is_listed_and_cleaned_up(micado_stack, stage: str, message: str) -> None:
    env = {**os.environ, **micado_stack.environment}
    killed = subprocess.run([sys.executable, "-c", KILLED_CREATE, json.dumps(micado_stack.create_kwargs),
                             stage, message], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    client = MicadoClient(launcher="openstack")
    (listed,) = client.master.list()
    assert listed["state"] == "creating"
    assert micado_stack.cloud.leftovers() != CLEAN or stage == "launch"
    work = micado_stack.micado_cli_dir / "work"
    store_id = (micado_stack.micado_cli_dir / "store-id").read_text().strip()
    for server in micado_stack.cloud.servers:  # what the killed create left carries this dir's identity
        assert server["metadata"]["micado-client-store"] == store_id

    found = client.master.cleanup(dry_run=True)
    assert any(item.kind == "record" for item in found)
    assert not any(item.removed for item in found)
    assert client.master.list() != []  # a dry run removes nothing

    removed = client.master.cleanup()
    assert all(item.removed for item in removed), [str(item) for item in removed]
    kinds = {item.kind for item in removed}
    assert "record" in kinds
    if stage != "launch":
        assert {"server", "address"} <= kinds
    assert micado_stack.cloud.leftovers() == CLEAN
    assert client.master.list() == []
    assert not work.exists() or list(work.iterdir()) == []  # no working copy, so no credentials on disk
    deadline = time.monotonic() + 10
    while processes_mentioning(str(work)):  # the ansible-playbook of the killed create was stopped
        assert time.monotonic() < deadline, "an ansible-playbook of the killed create survived the cleanup"
        time.sleep(0.1)
    assert client.master.cleanup() == []  # nothing left the second time


def test_a_create_running_elsewhere_is_never_cleaned_up(micado_stack) -> None:
    client = MicadoClient(launcher="openstack")
    created = []

    def progress(stage: str, message: str) -> None:
        if stage == "ssh" and message == "starting" and not created:
            created.append(True)
            other = MicadoClient(launcher="openstack")
            (listed,) = other.master.list()
            assert listed["state"] == "creating"
            assert other.master.cleanup() == []  # this process still creates it
            with pytest.raises(MicadoException, match="is being created"):
                other.master.destroy(listed["id"])

    client.master.create(progress=progress, **micado_stack.create_kwargs)
    assert created
    assert [m["state"] for m in client.master.list()] == ["ready"]
    client.master.destroy()
    assert micado_stack.cloud.leftovers() == CLEAN


def test_destroy_removes_a_master_whose_create_was_killed(micado_stack) -> None:
    env = {**os.environ, **micado_stack.environment}
    killed = subprocess.run([sys.executable, "-c", KILLED_CREATE, json.dumps(micado_stack.create_kwargs),
                             "ssh", "starting"], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    client = MicadoClient(launcher="openstack")
    (listed,) = client.master.list()
    with pytest.raises(MicadoException, match="being created"):
        client.master.attach(master_id=listed["id"])
    client.master.destroy(listed["id"])
    assert micado_stack.cloud.leftovers() == CLEAN
    assert client.master.list() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_the_cli_undoes_a_create_on_sigterm_and_sighup(micado_stack, tmp_path, signum: int) -> None:
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(micado_stack.create_kwargs))
    process = subprocess.Popen([sys.executable, "-m", "micado", "master", "create", "--kwargs-file", str(kwargs_file)],
                               env={**os.environ, **micado_stack.environment}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:  # plain progress lines (not a terminal)
        lines.append(line)
        if "ansible: " in line and "Start the TOSCA Submitter" in line:
            process.send_signal(signum)
            break
    rest = process.communicate(timeout=300)[1]
    assert process.returncode == 128 + signum, "".join(lines) + rest
    assert f"micado: interrupted ({signal.Signals(signum).name})" in rest
    assert "was deleted" in rest
    assert "Traceback" not in rest
    assert micado_stack.cloud.leftovers() == CLEAN
    assert MicadoClient(launcher="openstack").master.list() == []
    assert processes_mentioning(str(micado_stack.micado_cli_dir / "work")) == []


def test_cleanup_takes_only_the_control_folders_of_programs_that_are_gone(tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setenv("MICADO_CLI_DIR", str(tmp_path / "micado-cli"))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(ended.stdout)
    base = Path(tempfile.gettempdir() if len(tempfile.gettempdir()) <= 48 else "/tmp")
    mine = Path(tempfile.mkdtemp(prefix=f"micado-cp-{os.getpid()}-", dir=base))
    gone = Path(tempfile.mkdtemp(prefix=f"micado-cp-{dead_pid}-", dir=base))
    try:
        items = MicadoClient(launcher="openstack").master.cleanup()
        taken = [item.id for item in items if item.kind == "control folder"]
        assert str(gone) in taken
        assert str(mine) not in taken
        assert mine.is_dir()
        assert not gone.exists()
    finally:
        for folder in (mine, gone):
            if folder.exists():
                folder.rmdir()
