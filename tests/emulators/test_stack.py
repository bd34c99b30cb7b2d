"""``python -m micado.testing.stack``: the ready file, a master created against it, and SIGTERM
stopping everything the stack started, the VMs and what runs in them included."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from micado import MicadoClient

pytestmark = pytest.mark.stack  # the stack program in a process of its own


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def test_stack_program_serves_a_master_and_sigterm_stops_everything(tmp_path, monkeypatch):
    ready = tmp_path / "stack.json"
    process = subprocess.Popen([sys.executable, "-m", "micado.testing.stack", "--ready-file", str(ready)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the ready file never appeared"
            time.sleep(0.1)
        described = json.loads(ready.read_text())
        assert described["pid"] == process.pid
        assert {"micado_cli_dir", "create_kwargs", "auth_url", "username", "password", "project_id",
                "user_domain_name", "region"} <= set(described)
        assert oct(ready.stat().st_mode & 0o777) == "0o600"

        assert described["environment"]["MICADO_CLI_DIR"] == described["micado_cli_dir"]
        for name, value in described["environment"].items():  # the cli dir and the release mirror
            monkeypatch.setenv(name, value)
        client = MicadoClient(launcher="openstack")
        kwargs = described["create_kwargs"]
        client.master.create(**kwargs)
        ip = client.master.ip
        assert listening(ip, kwargs["ssh_port"])
        assert listening(ip, kwargs["api_port"])
        client.master.api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while listening(ip, kwargs["ssh_port"]) or listening(ip, kwargs["api_port"]):
        assert time.monotonic() < deadline, "the VM's sshd or submitter outlived the stack"
        time.sleep(0.1)
    assert not os.path.exists(described["micado_cli_dir"])  # its temporary folder is gone too
