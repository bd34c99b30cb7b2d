"""The ``micado`` command end to end on the local stack: output, ``--json`` and exit codes."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import closed_port, micado, one_line
from paths import ADTS



def test_master_and_app_commands_on_the_local_stack(micado_stack, tmp_path):
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(micado_stack.create_kwargs))

    created = micado("--json", "master", "create", "--kwargs-file", str(kwargs_file),
                     "--set", "enable_occopus=true", "--set", "web_session_timeout=900")
    assert created.returncode == 0, created.stderr
    master = json.loads(created.stdout)
    master_id = master["id"]
    from micado.testing.playbook import SETTINGS_FILE

    settings = json.loads((micado_stack.vms.vms()[0].root / SETTINGS_FILE).read_text())
    assert (settings["enable_occopus"], settings["web_session_timeout"]) == (True, 900)  # typed, not text
    assert master["endpoint"].startswith("https://")
    assert "micado_password" not in created.stdout
    # not a terminal: plain progress lines with elapsed time, stage and the Ansible tasks
    assert "ansible: micado_master/start : (MiCADO) Start the TOSCA Submitter" in created.stderr
    assert all(line.startswith("[") for line in created.stderr.strip().splitlines())

    listed = micado("--json", "master", "list")
    assert [m["id"] for m in json.loads(listed.stdout)] == [master_id]
    assert "password" not in listed.stdout

    # the demos of the master's release (the only stored master; its cloud, nova, by default)
    listed_demos = micado("app", "demo")
    assert listed_demos.returncode == 0, listed_demos.stderr
    assert "stressng: ec2, nova" in listed_demos.stdout and "master " + master_id in listed_demos.stdout
    unfilled = tmp_path / "stressng.yaml"
    wrote = micado("app", "demo", "stressng", "--output", str(unfilled))
    assert wrote.returncode == 0, wrote.stderr
    assert "fill in worker-node.properties.image_id, " in one_line(wrote.stdout)
    refused = micado("app", "create", "s", "--file", str(unfilled))
    assert refused.returncode == 2 and "worker-node.properties.image_id" in one_line(refused.stderr)
    assert micado("app", "demo", "stressng", "--output", str(unfilled)).returncode == 2  # it exists
    values = [f"{name}=x" for name in ("image_id", "flavor_name", "project_id", "network_id", "key_name",
                                       "security_groups", "endpoint")]
    ready = micado("--json", "app", "demo", "stressng", "--force", "--output", str(unfilled),
                   *[word for value in values for word in ("--set", value)])
    assert json.loads(ready.stdout)["fill"] == [], ready.stderr
    assert micado("app", "create", "s", "--file", str(unfilled), "--dry-run").returncode == 0
    assert micado("app", "delete", "s").returncode == 0

    app = ("app", "--master", master_id)
    made = micado("--json", *app, "create", "stressng", "--file", str(ADTS / "stressng_nova.yaml"), "--param", "n=2")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {"id": "stressng", "created": True, "dryrun": False}
    assert json.loads(micado("--json", *app, "list").stdout) == ["stressng"]
    shown = micado(*app, "get", "stressng")
    assert shown.returncode == 0
    assert shown.stdout.startswith("stressng\n  ")
    updated = micado(*app, "update", "stressng", "--file", str(ADTS / "stressng_ec2_latest.yaml"))
    assert updated.stdout.strip() == "updated application stressng"

    missing = micado(*app, "get", "ghost")
    assert missing.returncode == 3
    assert missing.stderr.startswith("micado: error: ApplicationNotFound: 404")
    assert "Traceback" not in missing.stderr

    deleted = micado(*app, "delete", "stressng", "--force")
    assert deleted.returncode == 0
    assert micado_stack.cloud.servers
    assert micado("--json", *app, "list").stdout.strip() == "[]"

    attached = micado("--json", "master", "attach", master_id)
    assert json.loads(attached.stdout)["applications"] == []

    # "" is a beginning of every id: refused (exit 2) wherever an id is taken, and nothing is touched
    made_so_far = micado_stack.cloud.leftovers()
    assert made_so_far["servers"] and made_so_far["attached_floating_ips"]
    for args in (("master", "destroy", "", "--yes"), ("master", "destroy", " ", "--yes"), ("master", "info", ""),
                 ("app", "--master", "", "list")):
        refused = micado(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert refused.stderr.startswith("micado: error: InvalidArgument: ") and refused.stderr.count("\n") == 1
    assert micado("app", "list", env={"MICADO_MASTER": " "}).returncode == 2
    assert micado_stack.cloud.leftovers() == made_so_far  # the server and its floating IP are still there
    assert json.loads(micado("--json", "master", "info", master_id[:4]).stdout)["id"] == master_id

    kept = on_a_terminal("n", "master", "destroy", master_id[:4])  # a prefix is enough
    assert kept.returncode == 1
    assert kept.stderr.startswith(f"Destroy master {master_id} (")
    assert kept.stderr.endswith(
        "[y/N] micado: error: MicadoException: cancelled: nothing was changed\n")
    assert [m["id"] for m in json.loads(micado("--json", "master", "list").stdout)] == [master_id]

    destroyed = micado("master", "destroy", master_id[:4])  # stdin is not a terminal: nothing asked
    assert destroyed.returncode == 0, destroyed.stderr
    assert "Destroy master" not in destroyed.stderr
    assert destroyed.stdout == f"destroyed master {master_id}\n"
    assert micado_stack.cloud.leftovers() == {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}
    assert micado("master", "list").stdout.strip() == "no masters"
    gone = micado("master", "attach", master_id)
    assert gone.returncode == 2
    assert "MasterNotFound" in gone.stderr


def test_app_commands_against_an_endpoint(submitter):
    env = {"MICADO_API_PASSWORD": submitter.password}
    base = ("app", "--endpoint", submitter.endpoint, "--user", submitter.user, "--cert", str(submitter.cert_path))
    made = micado(*base, "create", "--file", str(ADTS / "nginx_nova.yaml"), "--dry-run", env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created (dry run) application ")
    assert [app["dryrun"] for app in submitter.applications.values()] == [True]
    wrong = micado(*base, "list", env={"MICADO_API_PASSWORD": "wrong"})
    assert wrong.returncode == 3
    assert "AuthenticationError" in wrong.stderr


def on_a_terminal(answer: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``micado *args`` with a terminal as standard input, on which ``answer`` is typed."""
    import pty

    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode() + b"\n")
        return subprocess.run([sys.executable, "-m", "micado", *args], stdin=terminal, capture_output=True,
                              text=True, timeout=300)
    finally:
        os.close(controller)
        os.close(terminal)


@pytest.mark.parametrize(
    "args, code, text",
    [
        (("app", "list"), 2, "which master? give --master ID"),
        (("app", "--endpoint", "https://127.0.0.1:{port}/toscasubmitter/", "--insecure", "list"), 4, "cannot reach"),
        (("app", "--endpoint", "https://h/x/", "--insecure", "get", "a b"), 2, "InvalidArgument"),
        (("app", "create", "--file", "a.yaml", "--url", "http://h/a.yaml"), 2, "not allowed with"),
        (("master", "nothing"), 2, "invalid choice"),
        (("master", "create", "--set", "enable_occopus"), 2, "is not KEY=VALUE"),
        (("master", "create", "--set", "x=[1"), 2, "the value is not YAML"),
    ],
)
def test_exit_codes_and_messages_without_tracebacks(args, code, text, tmp_path):
    args = tuple(arg.format(port=closed_port()) for arg in args)
    result = micado(*args, env={"MICADO_CLI_DIR": str(tmp_path), "MICADO_API_ENDPOINT": ""})
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "content, text",
    [
        (None, "cannot be read: No such file or directory"),
        ("{'image': 'i'}", "is not JSON: Expecting property name"),
        ('["image", "i"]', "must hold a JSON object of keyword arguments, not a list"),
        ('{"image": "i", "colour": "red"}', "has unknown key(s) colour; valid keys: address, api_port, api_timeout, auth_url"),
    ],
    ids=["missing", "not-json", "a-list", "unknown-key"],
)
def test_a_bad_kwargs_file_is_a_one_line_usage_error(content, text, tmp_path):
    kwargs_file = tmp_path / "kwargs.json"
    if content is not None:
        kwargs_file.write_text(content)
    result = micado("master", "create", "--kwargs-file", str(kwargs_file), env={"MICADO_CLI_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"micado: error: InvalidArgument: --kwargs-file {kwargs_file} {text}")
    assert result.stderr.count("\n") == 1
    assert result.stderr.endswith("\n")


def test_debug_shows_the_traceback(tmp_path):
    result = micado("--debug", "app", "--endpoint", "https://h/x/", "--insecure", "get", "a b",
                    env={"MICADO_CLI_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_master_create_reports_missing_credentials_as_a_usage_error(tmp_path):
    result = micado("master", "create", "--auth-url", "http://127.0.0.1:9/v3", "--project-id", "p",
                    "--image", "i", "--flavor", "f", "--network", "n", "--keypair", "k",
                    env={"MICADO_CLI_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("micado: error: CredentialsError: the cloud credentials file")
    assert result.stderr.endswith("does not exist: run `micado init` to write a template (OpenStack: or log in as a cloud of your "
                                  "clouds.yaml with --cloud NAME)\n")


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "micado"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "master" in result.stdout


def test_master_create_shows_a_live_progress_line_on_a_terminal(micado_stack, tmp_path):
    import pty

    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(micado_stack.create_kwargs))
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "micado", "--json", "master", "create", "--kwargs-file", str(kwargs_file)],
        env={**os.environ, **micado_stack.environment}, stdout=subprocess.PIPE, stderr=terminal,
    )
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        screen += chunk
    out, _ = process.communicate(timeout=300)
    os.close(controller)
    assert process.returncode == 0, screen.decode(errors="replace")[-2000:]
    text = screen.decode()
    assert text.count("\r") > 5  # one line, rewritten in place
    assert text.rstrip("\r\n").count("\n") <= 1
    assert re.search(r"\r\[00:0\d\] ansible: micado_master/start", text)
    micado("master", "destroy", json.loads(out)["id"], env=micado_stack.environment)
    assert micado_stack.cloud.leftovers()["servers"] == []
