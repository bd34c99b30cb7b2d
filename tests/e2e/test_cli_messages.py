"""What a new user meets with the ``micado`` command: one line, the right advice, exit codes that hold.

Every test runs the real entry point in a subprocess against the loopback servers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from micado.config.record import MasterRecord
from micado.config.store import MasterStore

from cli_run import closed_port, micado, one_line
from paths import ADTS



@pytest.fixture
def micado_dir(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with an empty MiCADO dir and no MICADO_* settings."""
    env = {name: "" for name in os.environ if name.startswith("MICADO_")}
    return {**env, "MICADO_CLI_DIR": str(tmp_path / "micado-cli")}


@pytest.fixture
def endpoint_args(submitter) -> tuple[str, ...]:
    return ("app", "--endpoint", submitter.endpoint, "--user", submitter.user, "--password", submitter.password)


def record(master_id: str, submitter) -> MasterRecord:
    """A master recorded by another program, reachable at the submitter emulator."""
    return MasterRecord(id=master_id, ip="127.0.0.1", endpoint=submitter.endpoint, api_version="v2.0",
                        cert_path=str(submitter.cert_path), micado_user=submitter.user,
                        micado_password=submitter.password)


def store(env: dict[str, str], *records: MasterRecord) -> None:
    directory = Path(env["MICADO_CLI_DIR"])
    directory.mkdir(mode=0o700, exist_ok=True)
    for item in records:
        MasterStore(directory / "data.yml").add(item)


# --- version, headers, init ---------------------------------------------------------------


def test_version():
    import micado as package

    result = micado("--version")
    assert (result.returncode, result.stdout) == (0, f"micado {package.__version__} (micado-client)\n")


def test_init_writes_a_private_template_once_and_a_missing_file_points_at_it(micado_dir):
    create = ("master", "create", "--auth-url", "http://127.0.0.1:9/v3", "--project-id", "p", "--image", "i",
              "--flavor", "f", "--network", "n", "--keypair", "k", "--security-group", "s")
    missing = micado(*create, env=micado_dir)
    assert missing.returncode == 2
    file = Path(micado_dir["MICADO_CLI_DIR"]) / "credentials-cloud-api.yml"
    assert one_line(missing.stderr) == (f"micado: error: CredentialsError: the cloud credentials file {file} "
                                        "does not exist: run `micado init` to write a template (OpenStack: or log in "
                                        "as a cloud of your clouds.yaml with --cloud NAME)")

    made = micado("--json", "init", env=micado_dir)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {"path": str(file), "written": True}
    assert file.stat().st_mode & 0o777 == 0o600
    text = file.read_text()
    assert "- type: nova" in text
    assert "- type: ec2" in text
    assert "# pre_authentication:" in text
    assert micado("init", "--print", env=micado_dir).stdout == text

    again = micado("init", env=micado_dir)
    assert again.returncode == 2
    assert one_line(again.stderr).endswith(f"{file} already exists; edit it, or move it away first")
    assert file.read_text() == text

    unfilled = micado(*create, env=micado_dir)  # the template as written: one line saying what to fill in
    assert unfilled.returncode == 2
    assert "fills in no authentication method; give username + password" in one_line(unfilled.stderr)

    file.write_text("resource: []\n")
    empty = micado(*create, env=micado_dir)
    assert one_line(empty.stderr).endswith("no resource entry of type 'nova' (types present: none, the list is "
                                           "empty) (`micado init --print` shows the format)")


def test_an_unreachable_auth_url_is_one_line(micado_dir, micado_playbooks):
    Path(micado_dir["MICADO_CLI_DIR"]).mkdir(mode=0o700)
    micado("init", env=micado_dir)
    file = Path(micado_dir["MICADO_CLI_DIR"]) / "credentials-cloud-api.yml"
    file.write_text(file.read_text().replace("    username:\n    password:", "    username: u\n    password: p"))
    port = closed_port()
    result = micado("master", "create", "--auth-url", f"http://127.0.0.1:{port}/v3", "--project-id", "p",
                    "--image", "i", "--flavor", "f", "--network", "n", "--keypair", "k", "--security-group", "s",
                    "--playbook", str(micado_playbooks["0.12"]), env=micado_dir)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(f"micado: error: LaunchError: cannot reach the OpenStack cloud at http://127.0.0.1:{port}/v3")
    assert line.endswith("[Errno 111] Connection refused")
    assert "HTTPConnectionPool" not in result.stderr
    assert "urllib3" not in result.stderr


# --- errors: one line, JSON with --json, the same exit code with --debug --------------------


def test_debug_adds_the_traceback_and_keeps_the_exit_code(micado_dir):
    args = ("app", "--endpoint", "https://h/x/", "--insecure", "get", "a b")
    plain = micado(*args, env=micado_dir)
    debug = micado("--debug", *args, env=micado_dir)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]


def test_json_errors_are_json_on_stderr(micado_dir):
    library = micado("--json", "app", "list", env=micado_dir)
    assert library.returncode == 2
    assert library.stdout == ""
    error = json.loads(library.stderr)
    assert error["error"] == "InvalidArgument"
    assert error["exit_code"] == 2
    assert error["message"].startswith("which master? give --master ID (or set MICADO_MASTER) or --endpoint URL")

    usage = micado("--json", "master", "nothing", env=micado_dir)
    assert usage.returncode == 2
    assert json.loads(usage.stderr) == {
        "error": "UsageError", "exit_code": 2,
        "message": "argument command: invalid choice: 'nothing' (choose from 'create', 'attach', 'destroy', "
                   "'list', 'cleanup', 'info', 'deploy', 'update-auth', 'reconfigure', 'edge', "
                   "'add-node', 'status', 'ssh', 'kubeconfig')"}

    unreachable = micado("--json", "app", "--endpoint", f"https://127.0.0.1:{closed_port()}/toscasubmitter/",
                         "--insecure", "list", env=micado_dir)
    assert unreachable.returncode == 4
    assert json.loads(unreachable.stderr.splitlines()[-1])["error"] == "MicadoConnectionError"


# --- TLS and the endpoint -------------------------------------------------------------------


def test_a_tls_failure_advises_the_command_line_flags(endpoint_args, micado_dir):
    result = micado(*endpoint_args, "list", env={**micado_dir, "REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""})
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert line.startswith("micado: error: TLSError: TLS failure talking to https://127.0.0.1:")
    assert line.endswith("give the master's certificate with --cert FILE, or --insecure to skip the check")
    assert "verify=" not in line


@pytest.mark.parametrize("password", ["-starts-with-a-dash", "--looks-like-a-flag", "-"])
def test_a_password_that_starts_with_a_dash_is_taken_as_the_value(password, micado_dir):
    from micado.testing.submitter import SubmitterEmulator

    with SubmitterEmulator(password=password) as emulator:
        result = micado("app", "--endpoint", emulator.endpoint, "--user", emulator.user, "--password", password,
                        "--cert", str(emulator.cert_path), "list", env=micado_dir)
    assert (result.returncode, result.stdout, result.stderr) == (0, "no applications\n", "")


def test_generated_passwords_never_start_with_a_dash():
    from micado.config.crypto import new_password

    assert not any(new_password(1).startswith("-") for _ in range(2000))


def test_insecure_prints_one_clean_warning(endpoint_args, micado_dir):
    result = micado(*endpoint_args, "--insecure", "list", env=micado_dir)
    assert (result.returncode, result.stdout) == (0, "no applications\n")
    assert result.stderr == ("micado: warning: the master's TLS certificate is not checked (--insecure); "
                             "give --cert FILE to check it\n")


def test_a_wrong_endpoint_path_says_it_is_not_a_tosca_submitter(submitter, micado_dir):
    wrong = submitter.endpoint.replace("/toscasubmitter/", "/toscasubmiter/")
    result = micado("app", "--endpoint", wrong, "--user", submitter.user, "--password", submitter.password,
                    "--cert", str(submitter.cert_path), "list", env=micado_dir)
    assert result.returncode == 3
    assert one_line(result.stderr).startswith(
        "micado: error: ProtocolError: 404: the endpoint does not look like a TOSCA Submitter: ")


# --- applications ---------------------------------------------------------------------------


def test_an_adt_that_is_not_yaml_is_refused_before_the_upload(endpoint_args, submitter, micado_dir, tmp_path):
    adt = tmp_path / "broken.yaml"
    adt.write_text("tosca_definitions_version: tosca_simple_yaml_1_2\nimports: [unclosed\n  x: 1\n")
    submitter.requests.clear()
    result = micado(*endpoint_args, "--cert", str(submitter.cert_path), "create", "--file", str(adt),
                    env=micado_dir)
    assert result.returncode == 2
    assert one_line(result.stderr) == (f"micado: error: InvalidArgument: {adt}:3:4: the ADT is not valid YAML: "
                                       "expected ',' or ']', but got ':'")
    assert list(submitter.requests) == []
    assert submitter.applications == {}


def test_a_second_application_names_the_first_and_how_to_remove_it(endpoint_args, submitter, micado_dir):
    args = (*endpoint_args, "--cert", str(submitter.cert_path))
    assert micado(*args, "create", "first", "--file", str(ADTS / "nginx_nova.yaml"), env=micado_dir).returncode == 0
    second = micado(*args, "create", "second", "--file", str(ADTS / "nginx_nova.yaml"), env=micado_dir)
    assert second.returncode == 3
    line = one_line(second.stderr)
    assert line.startswith("micado: error: BadRequest: 400: the master already runs application first (MiCADO runs "
                           "one per master); remove it first with: micado app --endpoint ")
    assert f"{submitter.endpoint} delete first (POST " in line
    assert list(submitter.applications) == ["first"]


# --- which master: a prefix, MICADO_MASTER, the only one -------------------------------------


def test_a_master_is_found_by_prefix_environment_or_being_the_only_one(submitter, micado_dir):
    submitter.add_application("running")
    store(micado_dir, record("abc111", submitter))
    assert micado("app", "list", env=micado_dir).stdout == "running\n"  # the only master
    store(micado_dir, record("abc222", submitter))

    none = micado("app", "list", env=micado_dir)
    assert none.returncode == 2
    assert one_line(none.stderr).endswith("stored masters: abc111, abc222")
    assert micado("app", "--master", "abc2", "list", env=micado_dir).stdout == "running\n"
    assert micado("app", "list", env={**micado_dir, "MICADO_MASTER": "abc1"}).stdout == "running\n"

    for args in (("app", "--master", "abc", "list"), ("master", "destroy", "abc"), ("master", "attach", "ab")):
        ambiguous = micado(*args, env=micado_dir)
        assert ambiguous.returncode == 2
        assert one_line(ambiguous.stderr).endswith(
            "is ambiguous: it begins abc111, abc222; give more of it"), args
    unknown = micado("master", "attach", "zzz", env=micado_dir)
    assert unknown.returncode == 2
    assert "MasterNotFound" in unknown.stderr

    listed = micado("master", "list", env=micado_dir).stdout.splitlines()
    assert re.split(r"\s+", listed[0]) == ["ID", "STATE", "IP", "ENDPOINT", "CREATED"]
    assert [line.split()[:3] for line in listed[1:]] == [["abc111", "ready", "127.0.0.1"],
                                                         ["abc222", "ready", "127.0.0.1"]]
    assert listed[1].index("ready") == listed[0].index("STATE")  # columns line up


# --- shell completion -----------------------------------------------------------------------


def complete(script: str, line: str) -> list[str]:
    """What bash offers for ``line`` (ending where the cursor is) with ``script`` loaded."""
    words = line.split(" ")
    program = (f"{script}\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; "
               f"COMP_LINE='{line}'; COMP_POINT={len(line)}; _shtab_micado; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.split()


def test_bash_and_zsh_completion_scripts_come_from_the_parser():
    bash = micado("completion", "bash")
    assert bash.returncode == 0, bash.stderr
    assert complete(bash.stdout, "micado ma") == ["master"]
    assert sorted(complete(bash.stdout, "micado master de")) == ["deploy", "destroy"]
    assert "--yes" in complete(bash.stdout, "micado master destroy --")
    zsh = micado("completion", "zsh")
    assert zsh.returncode == 0
    assert zsh.stdout.startswith("#compdef micado")
    assert "completion" in zsh.stdout
    assert "--security-group" in zsh.stdout
    wrong = micado("completion", "fish")
    assert wrong.returncode == 2
    assert "invalid choice: 'fish'" in wrong.stderr


def test_help_lists_every_command():
    result = micado("--help")
    assert result.returncode == 0
    assert "{init,master,app,completion}" in result.stdout
    assert "--version" in result.stdout


# --- warnings: one prefixed line each, once ------------------------------------------------------


def test_log_warnings_are_prefixed_lines_and_the_0_9_store_warning_shows_once(submitter, micado_dir):
    submitter.add_application("running")
    directory = Path(micado_dir["MICADO_CLI_DIR"])
    directory.mkdir()
    directory.chmod(0o755)  # readable by others: a warning of the library's log, not of warnings.warn
    made = micado("init", env=micado_dir)
    assert made.returncode == 0, made.stderr
    assert made.stderr == (f"micado: warning: the MiCADO dir {directory} can be read by other users (mode 0755); "
                           f"its files are private (0600), but consider: chmod 700 {directory}\n")
    (directory / "data.yml").write_text(  # a store written by micado-client 0.9, as it wrote them
        f"masters:\n  - abc111:\n      api_version: v2.0\n      cert_path: {submitter.cert_path}\n"
        f"      endpoint: {submitter.endpoint}\n      ip: 127.0.0.1\n      micado_user: {submitter.user}\n"
        f"      micado_password: {submitter.password}\n")
    for args in (("app", "--master", "abc", "list"), ("app", "list"), ("master", "info", "abc")):
        result = micado(*args, env=micado_dir)
        assert result.returncode == 0, result.stderr
        assert result.stderr == (f"micado: warning: {directory}/data.yml was written by micado-client 0.9 and "
                                 "holds MiCADO passwords in plaintext; the next change to the store rewrites it "
                                 "with the passwords encrypted\n"), args
