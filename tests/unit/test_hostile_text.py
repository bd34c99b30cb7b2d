"""A hostile server's words never carry our secrets or terminal escapes to the user.

Each of the four kinds of server the library talks to (the TOSCA Submitter, Keystone and
Nova, EC2, the OpenID Connect provider) is played by a loopback server that echoes back
everything it was sent (headers, form, JSON: the password, the refresh token, the
basic-auth header) with terminal escape sequences around it. The secret must not appear
in the exception or on the command's standard error, and no control character may
reach either.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from micado import MicadoClient
from micado.exceptions import CredentialsError, LaunchError, MicadoAPIError, server_text

from loopback import EchoServer
from cli_run import micado

#: What a hostile server wraps its echo in: a window title, clear screen, a C1 CSI, a bidi override.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e\x00\r\n"
#: Any character a terminal acts on (C0, DEL, C1) or that reorders text.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PASSWORD = "Pa55-w0rd/with&odd=chars"
REFRESH = "refresh-TOKEN-0123456789abcdef"
CLIENT_SECRET = "client-SECRET-42"
EC2_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def echoed(headers: dict[str, str], body: bytes, *extra: str) -> str:
    """Everything the request carried, and ``extra``, between escapes."""
    return ESCAPES + " ".join(extra) + json.dumps(headers) + body.decode("utf-8", "replace") + ESCAPES


def assert_clean(text: str, *secrets: str) -> None:
    assert not CONTROL.search(text), repr(text)
    for secret in secrets:
        for form in (secret, quote_plus(secret), json.dumps(secret)[1:-1]):
            assert form not in text, (form, text)


def error_line(stderr: str, name: str) -> str:
    """The command's error line (after any progress lines), checked: no control character anywhere."""
    assert stderr.endswith("\n") and not CONTROL.search(stderr.replace("\n", "")), repr(stderr)
    line = stderr.splitlines()[-1]
    assert line.startswith(f"micado: error: {name}: "), stderr
    return line


def private_dir(tmp_path: Path, credentials: str) -> dict[str, str]:
    directory = tmp_path / "micado-cli"
    directory.mkdir(mode=0o700)
    file = directory / "credentials-cloud-api.yml"
    file.write_text(credentials)
    file.chmod(0o600)
    return {"MICADO_CLI_DIR": str(directory), "HOME": str(tmp_path / "home"), "MICADO_MASTER": ""}


CREATE = ("--image", "img", "--flavor", "fl", "--network", "net", "--keypair", "kp", "--security-group", "sg")


@pytest.fixture
def playbook(micado_playbooks) -> str:
    """A local release: a create fails at the cloud, never downloading anything."""
    return str(micado_playbooks["0.12"])


# --- the helper itself ----------------------------------------------------------------------


def test_server_text_masks_every_form_of_a_secret_and_shows_controls():
    text = f"{ESCAPES}{PASSWORD} {quote_plus(PASSWORD)} {json.dumps(PASSWORD)} &amp;{REFRESH[:5]}"
    shown = server_text(text, secrets=[PASSWORD, None, ""])
    assert_clean(shown, PASSWORD)
    assert shown.startswith("\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202e\\x00  ***")
    assert server_text("x" * 5000, limit=100).endswith("[4900 more characters cut]")
    # the secret is masked before the text is cut: no half of it survives the cut
    assert "Pa55" not in server_text("y" * 95 + PASSWORD, secrets=[PASSWORD], limit=100)


# --- the TOSCA Submitter --------------------------------------------------------------------


def submitter_echo(method, path, headers, body):
    auth = headers.get("Authorization", "")
    decoded = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else ""
    if path.endswith("/applications/"):
        message = {"message": "500 Internal Server Error: " + echoed(headers, body, decoded)}
        return 500, "application/json", json.dumps(message).encode()
    return 502, "text/plain", echoed(headers, body, decoded).encode()  # not the API's JSON: a snippet


def test_the_submitter_s_echo_of_the_password_is_masked(tmp_path):
    with EchoServer(submitter_echo) as server:
        endpoint = f"{server.url}/toscasubmitter/"
        with MicadoClient(endpoint=endpoint, auth=("admin", PASSWORD), timeout=5) as client:
            with pytest.raises(MicadoAPIError) as listed:
                client.applications.list()
            with pytest.raises(MicadoAPIError) as got:
                client.applications.get("other")
        header = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        assert all(header in request for request in server.received)
        for caught in (listed, got):
            assert_clean(str(caught.value), PASSWORD, header)
            assert "***" in str(caught.value)
        assert "\\x1b]0;pwned" in str(listed.value)  # shown, not acted on

        cli = micado("app", "--endpoint", endpoint, "--user", "admin", "--password", PASSWORD, "list",
                     env={"MICADO_CLI_DIR": str(tmp_path / "cli"), "MICADO_MASTER": ""}, timeout=60)
    assert cli.returncode == 3, cli.stderr
    assert_clean(error_line(cli.stderr, "ServerError"), PASSWORD, header)


# --- Keystone -------------------------------------------------------------------------------


def keystone_echo(method, path, headers, body):
    error = {"error": {"code": 400, "title": "Bad Request", "message": echoed(headers, body)}}
    return 400, "application/json", json.dumps(error).encode()


def test_keystone_s_echo_of_the_password_is_masked(tmp_path, monkeypatch, playbook):
    credentials = ("resource:\n- type: nova\n  auth_data:\n    username: alice\n"
                   f"    password: {json.dumps(PASSWORD)}\n    domain_name: Default\n")
    env = private_dir(tmp_path, credentials)
    with EchoServer(keystone_echo) as keystone:
        auth_url = f"{keystone.url}/identity/v3"
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(LaunchError) as caught:
            MicadoClient(launcher="openstack").master.create(
                auth_url=auth_url, project_id="p", image="img", flavor="fl", network="net", keypair="kp",
                security_group="sg", playbook=playbook)
        args = ("master", "create", "--auth-url", auth_url, "--project-id", "p", *CREATE, "--playbook", playbook)
        cli = micado(*args, env=env, timeout=120)
        debug = micado("--debug", *args, env=env, timeout=120)  # the traceback too: no raw SDK text in it
        assert keystone.received and all(json.dumps(PASSWORD) in request for request in keystone.received)
    assert "***" in str(caught.value) and "\\x1b" in str(caught.value)
    assert_clean(str(caught.value), PASSWORD)
    assert cli.returncode == 1, cli.stderr
    assert_clean(error_line(cli.stderr, "LaunchError"), PASSWORD)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert_clean(debug.stderr.replace("\n", " "), PASSWORD)


# --- EC2 ------------------------------------------------------------------------------------


def ec2_echo(method, path, headers, body):
    # XML 1.0 carries C1 controls and bidi overrides (not C0): the secret key as if the
    # endpoint knew it, and the request it was sent.
    words = "\x9b2J\u202e" + EC2_SECRET + " " + html.escape(body.decode()[:200])
    xml = (f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>InvalidParameterValue</Code>"
           f"<Message>{words}</Message></Error></Errors><RequestID>r-1</RequestID></Response>")
    return 400, "text/xml", xml.encode()


def ec2_broken(method, path, headers, body):
    return 400, "text/xml", f"<Response>{ESCAPES}{EC2_SECRET}{ESCAPES}".encode()  # not XML at all


@pytest.mark.parametrize("respond", [ec2_echo, ec2_broken], ids=["xml error", "broken xml"])
def test_ec2_s_words_are_shown_without_the_secret_key(tmp_path, monkeypatch, respond, playbook):
    credentials = f"resource:\n- type: ec2\n  auth_data:\n    accesskey: AKIAEXAMPLE12345\n    secretkey: {EC2_SECRET}\n"
    env = private_dir(tmp_path, credentials)
    with EchoServer(respond) as ec2:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(LaunchError) as caught:
            MicadoClient(launcher="ec2").master.create(
                region="eu-west-1", endpoint_url=ec2.url, image="ami-12345678", flavor="t3.medium", playbook=playbook)
        cli = micado("master", "create", "--launcher", "ec2", "--region", "eu-west-1", "--endpoint-url", ec2.url,
                     "--image", "ami-12345678", "--flavor", "t3.medium", "--playbook", playbook, env=env, timeout=120)
    assert_clean(str(caught.value), EC2_SECRET)
    assert cli.returncode == 1, cli.stderr
    assert_clean(error_line(cli.stderr, "LaunchError"), EC2_SECRET)


# --- the OpenID Connect provider ------------------------------------------------------------


def openid_file(url: str, *, client: bool = False) -> str:
    extra = f"      client_id: micado\n      client_secret: {CLIENT_SECRET}\n" if client else ""
    return ("pre_authentication:\n  - type: openid\n    auth_data: &OPENID\n"
            f"      url: {url}\n      refresh_token: {REFRESH}\n{extra}"
            "resource:\n  - type: nova\n    auth_data:\n      identity_provider: egi.eu\n"
            "      access_token: *OPENID\n      project_id: p\n")


def refusing(code: str):
    def respond(method, path, headers, body):
        if method == "GET":  # the discovery asked to diagnose: a hostile token_endpoint
            document = {"token_endpoint": f"http://127.0.0.1:1/{ESCAPES}{REFRESH}"}
            return 200, "application/json", json.dumps(document).encode()
        said = {"error": code, "error_description": echoed(headers, body, REFRESH, CLIENT_SECRET)}
        return 400, "application/json", json.dumps(said).encode()

    return respond


@pytest.mark.parametrize(("code", "error", "exit_code"), [
    ("invalid_grant", CredentialsError, 2),  # a token endpoint's refusal, its description quoted
    ("invalid_client", CredentialsError, 2),
    (ESCAPES + REFRESH, LaunchError, 1),  # not OAuth's words; and a hostile token_endpoint is not advised
], ids=["invalid_grant", "invalid_client", "not oauth"])
def test_the_provider_s_echo_of_the_refresh_token_and_client_secret_is_masked(tmp_path, monkeypatch, playbook, code,
                                                                              error, exit_code):
    with EchoServer(refusing(code)) as provider:
        env = private_dir(tmp_path, openid_file(f"{provider.url}/token", client=True))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(error) as caught:
            MicadoClient(launcher="openstack").master.create(
                auth_url="http://127.0.0.1:9/v3", image="img", flavor="fl", network="net", keypair="kp",
                security_group="sg", playbook=playbook)
        cli = micado("master", "create", "--auth-url", "http://127.0.0.1:9/v3", *CREATE, "--playbook", playbook, env=env,
                     timeout=120)
        assert any(quote_plus(REFRESH) in request for request in provider.received)
    pair = base64.b64encode(f"micado:{CLIENT_SECRET}".encode()).decode()
    assert_clean(str(caught.value), REFRESH, CLIENT_SECRET, pair)
    assert cli.returncode == exit_code, cli.stderr
    assert_clean(error_line(cli.stderr, error.__name__), REFRESH, CLIENT_SECRET, pair)
