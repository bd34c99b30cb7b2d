"""Use-case 3: applications on an existing master, through real HTTPS to the submitter emulator."""

from __future__ import annotations

import datetime
import io
import json
import socket
import time
import warnings
import zipfile
from collections.abc import Iterator

import certifi
import pytest

from micado import MicadoClient
from micado.api.client import MicadoInsecureWarning
from micado.exceptions import (
    ApplicationNotFound,
    AuthenticationError,
    BadRequest,
    InvalidArgument,
    MicadoConnectionError,
    MicadoException,
    MicadoTimeout,
    NotFound,
    ProtocolError,
    ServerError,
    TLSError,
)
from micado.progress import wait_until

from loopback import directory_server, raw_server
from paths import ADTS

NOVA_ADTS = sorted(ADTS.glob("*_nova.yaml"))


@pytest.fixture
def client(submitter) -> Iterator[MicadoClient]:
    with MicadoClient(
        endpoint=submitter.endpoint,
        version="v2.0",
        verify=submitter.cert_path,
        auth=(submitter.user, submitter.password),
    ) as micado:
        yield micado


@pytest.fixture
def adt_server() -> Iterator[str]:
    """A plain HTTP server on loopback that serves tests/support/adts/."""
    with directory_server(ADTS) as url:
        yield url + "/"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers (not even the TLS handshake)."""
    with raw_server("https", None) as url:
        yield url


def api_requests(submitter) -> list:
    return [entry for entry in submitter.requests if "/applications" in entry[1]]


@pytest.mark.parametrize("adt_path", NOVA_ADTS, ids=lambda p: p.name)
def test_use_case_3_lifecycle_with_real_adts(client, submitter, adt_path):
    created = client.applications.create(app_id="stressng", file=adt_path)
    assert created.id == "stressng"
    assert [app.id for app in client.applications.list()] == ["stressng"]

    app = client.applications.get("stressng")
    assert app.adaptors
    assert all(isinstance(state, str) for state in app.adaptors.values())
    assert "stressng" in repr(app)
    page = app._repr_html_()
    assert "<table>" in page
    assert all(name in page for name in app.adaptors)

    app.update(file=ADTS / "stressng_ec2_latest.yaml")
    assert submitter.applications["stressng"]["adt"]["description"].startswith("ADT for stressng")

    app.delete()
    assert client.applications.list() == []


def test_list_makes_one_request_until_details_are_read(client, submitter):
    client.applications.create(app_id="web", file=ADTS / "nginx_nova.yaml")
    submitter.requests.clear()
    apps = client.applications.list()
    assert len(api_requests(submitter)) == 1
    assert apps[0].adaptors  # first read of the details: one more request
    assert apps[0].adaptors  # kept: no further request
    assert len(api_requests(submitter)) == 2


def test_create_from_mapping_gets_the_server_generated_id(client, submitter):
    from ruamel.yaml import YAML

    adt = YAML(typ="safe").load((ADTS / "wordpress_nova.yaml").read_text())
    app = client.applications.create(adt=adt)
    assert len(app.id) == 8
    assert app.id.isalnum()
    assert app.id.upper() == app.id
    assert list(submitter.applications) == [app.id]
    assert client.applications.get(app.id).adaptors


def test_create_from_yaml_text_with_params(client, submitter):
    text = (ADTS / "nginx_ec2_latest.yaml").read_text()
    client.applications.create(app_id="text", adt=text, params={"replicas": 2})
    assert submitter.applications["text"]["params"] == {"replicas": 2}


def test_create_from_url_is_fetched_by_the_server(client, submitter, adt_server):
    client.applications.create(app_id="byurl", url=adt_server + "stressng_nova.yaml")
    assert submitter.applications["byurl"]["adt"]["tosca_definitions_version"] == "tosca_simple_yaml_1_2"


def test_create_from_unreachable_url_is_a_server_error(client):
    with pytest.raises(ServerError) as caught:
        client.applications.create(app_id="nourl", url="http://127.0.0.1:9/nothing.yaml")
    assert caught.value.status_code == 500
    assert "Error while validating" in caught.value.explanation


def test_create_from_csar(client, submitter, tmp_path):
    csar = tmp_path / "stressng.csar"
    with zipfile.ZipFile(csar, "w") as archive:
        archive.writestr(
            "TOSCA-Metadata/TOSCA.meta",
            "TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: tests\n"
            "Entry-Definitions: definitions/stressng.yaml\n",
        )
        archive.write(ADTS / "stressng_nova.yaml", "definitions/stressng.yaml")
    client.applications.create(app_id="csar", file=csar)
    assert "csar" in submitter.applications


def test_create_from_an_unnamed_csar_in_memory(client, submitter):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(ADTS / "stressng_nova.yaml", "stressng.yaml")
    client.applications.create(app_id="mem", file=io.BytesIO(buffer.getvalue()))
    assert submitter.applications["mem"]["filename"] == "adt.csar"
    assert submitter.applications["mem"]["adt"]["tosca_definitions_version"] == "tosca_simple_yaml_1_2"


def test_create_from_file_object(client, submitter):
    with open(ADTS / "stressng_nova.yaml", "rb") as handle:
        client.applications.create(app_id="fobj", file=handle)
    assert "fobj" in submitter.applications


def test_dryrun_is_registered_until_deleted_like_on_the_real_server(client, submitter):
    app = client.applications.create(app_id="dry", file=ADTS / "stressng_nova.yaml", dryrun=True)
    assert submitter.applications["dry"]["dryrun"] is True
    assert [a.id for a in client.applications.list()] == ["dry"]
    app.delete()
    assert client.applications.list() == []


def test_second_application_is_refused(client):
    client.applications.create(app_id="first", file=ADTS / "stressng_nova.yaml")
    with pytest.raises(BadRequest) as caught:
        client.applications.create(app_id="second", file=ADTS / "nginx_nova.yaml")
    assert caught.value.status_code == 400
    assert "Multiple applications are not supported" in str(caught.value)
    with pytest.raises(BadRequest, match="already exists"):
        client.applications.create(app_id="first", file=ADTS / "nginx_nova.yaml")


def test_missing_application_is_not_found_and_the_existing_ones_are_named(client, submitter):
    for call in (
        lambda: client.applications.get("ghost"),
        lambda: client.applications.update("ghost", file=ADTS / "stressng_nova.yaml"),
        lambda: client.applications.delete("ghost"),
    ):
        with pytest.raises(ApplicationNotFound) as caught:
            call()
        assert caught.value.status_code == 404
        assert isinstance(caught.value, NotFound)
        assert "ghost" in caught.value.explanation
        assert caught.value.explanation.endswith("applications on this master: none")
    submitter.add_application("real")
    with pytest.raises(ApplicationNotFound, match="applications on this master: real"):
        client.applications.get("ghost")


def test_invalid_yaml_is_a_server_error_and_registers_nothing(client, submitter):
    with pytest.raises(ServerError) as caught:
        client.applications.create(app_id="bad", adt="tosca_definitions_version: [unclosed\n  - x: :")
    assert caught.value.status_code == 500
    assert caught.value.explanation.startswith("500 ")
    assert "Error while validating" in caught.value.explanation
    assert submitter.applications == {}


def test_a_yaml_file_that_does_not_parse_is_refused_before_the_upload(client, submitter, tmp_path):
    adt = tmp_path / "broken.yaml"
    adt.write_text("tosca_definitions_version: tosca_simple_yaml_1_2\nimports: [unclosed\n  x: 1\n")
    submitter.requests.clear()
    with pytest.raises(InvalidArgument) as caught:
        client.applications.create(app_id="bad", file=adt)
    assert str(caught.value) == f"{adt}:3:4: the ADT is not valid YAML: expected ',' or ']', but got ':'"
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidArgument, match=r"broken.yaml:3:4: "):
        client.applications.update("bad", file=adt)
    assert submitter.applications == {}
    assert list(submitter.requests) == []


def test_a_wrong_endpoint_path_is_a_protocol_error_not_a_missing_application(submitter):
    wrong = submitter.endpoint.replace("/toscasubmitter/", "/toscasubmiter/")
    with MicadoClient(endpoint=wrong, verify=submitter.cert_path, auth=(submitter.user, submitter.password)) as client:
        with pytest.raises(ProtocolError) as caught:
            client.applications.list()
    assert not isinstance(caught.value, NotFound)
    assert caught.value.status_code == 404
    assert str(caught.value).startswith("404: the endpoint does not look like a TOSCA Submitter: ")
    assert "doctype" not in str(caught.value).lower()  # no HTML


def test_failed_update_keeps_the_application(client, submitter):
    client.applications.create(app_id="keep", file=ADTS / "stressng_nova.yaml")
    before = json.dumps(submitter.applications["keep"], sort_keys=True, default=str)
    with pytest.raises(ServerError):
        client.applications.update("keep", adt="just: a mapping without tosca\n")
    assert json.dumps(submitter.applications["keep"], sort_keys=True, default=str) == before


def test_delete_force_is_sent_as_the_form_field_the_server_reads(client, submitter):
    client.applications.create(app_id="gone", file=ADTS / "stressng_nova.yaml")
    client.applications.get("gone").delete(force=True)
    assert submitter.applications == {}
    assert submitter.deletions[-1] == ("gone", True)


def test_wrong_password_is_an_authentication_error(submitter):
    with MicadoClient(endpoint=submitter.endpoint, verify=submitter.cert_path, auth=("admin", "wrong")) as bad:
        with pytest.raises(AuthenticationError) as caught:
            bad.applications.list()
    assert caught.value.status_code == 401


def test_html_login_page_is_a_clear_error(client, submitter):
    submitter.login_page = True
    with pytest.raises(AuthenticationError, match="login page"):
        client.applications.list()


def test_the_proxy_html_pages_for_missing_and_wrong_credentials_are_authentication_errors(submitter):
    submitter.html_auth_pages = True
    with MicadoClient(endpoint=submitter.endpoint, verify=submitter.cert_path) as anonymous:
        with pytest.raises(AuthenticationError, match="HTML login page") as caught:
            anonymous.applications.list()
    assert caught.value.status_code == 200
    with MicadoClient(endpoint=submitter.endpoint, verify=submitter.cert_path, auth=("admin", "wrong")) as bad:
        with pytest.raises(AuthenticationError, match="'Authentication failed' page"):
            bad.applications.get("x")
    with MicadoClient(
        endpoint=submitter.endpoint, verify=submitter.cert_path, auth=(submitter.user, submitter.password)
    ) as good:
        assert good.applications.list() == []


def test_verify_true_fails_on_the_self_signed_certificate(submitter, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with MicadoClient(endpoint=submitter.endpoint, verify=True, auth=(submitter.user, submitter.password)) as c:
        with pytest.raises(TLSError, match="certificate"):
            c.applications.list()


def test_verify_certificate_path_wins_over_requests_ca_bundle(submitter, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    with MicadoClient(
        endpoint=submitter.endpoint, verify=submitter.cert_path, auth=(submitter.user, submitter.password)
    ) as c:
        assert c.applications.list() == []


def test_verify_false_wins_over_requests_ca_bundle_and_warns_once(submitter, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with MicadoClient(endpoint=submitter.endpoint, verify=False, auth=(submitter.user, submitter.password)) as c:
            for _ in range(3):
                assert c.applications.list() == []
    messages = [str(w.message) for w in caught]
    assert len([w for w in caught if w.category is MicadoInsecureWarning]) == 1, messages
    assert not [m for m in messages if "Unverified HTTPS request" in m], messages


def test_silent_server_times_out_within_the_configured_timeout(silent_server):
    with MicadoClient(endpoint=silent_server, verify=False, timeout=0.5) as c:
        start = time.monotonic()
        with pytest.raises(MicadoTimeout) as caught:
            c.applications.list()
    assert time.monotonic() - start < 5
    assert caught.value.timeout == 0.5


def test_refused_connection_is_a_connection_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with MicadoClient(endpoint=f"https://127.0.0.1:{port}/toscasubmitter/", verify=False) as c:
        with pytest.raises(MicadoConnectionError, match="cannot reach"):
            c.applications.list()


@pytest.mark.parametrize("bad_id", ["", "a/b", "two words", " lead", "tab\t", "new\nline", ".", "..", None, 5])
def test_bad_app_ids_are_rejected_before_any_request(client, submitter, bad_id):
    calls = [
        lambda: client.applications.get(bad_id),
        lambda: client.applications.update(bad_id, file=ADTS / "stressng_nova.yaml"),
        lambda: client.applications.delete(bad_id),
    ]
    if bad_id is not None:  # no id at all is fine for create: the server makes one
        calls.append(lambda: client.applications.create(app_id=bad_id, file=ADTS / "stressng_nova.yaml"))
    for call in calls:
        with pytest.raises(InvalidArgument):
            call()
    assert api_requests(submitter) == []


def test_app_ids_are_url_quoted(client, submitter):
    with pytest.raises(ApplicationNotFound):
        client.applications.get("a?b#c%")
    assert api_requests(submitter)[0][1].endswith("/applications/a%3Fb%23c%25/")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"adt": {"a": 1}, "url": "http://127.0.0.1/x.yaml"},
        {"adt": "x: 1", "file": ADTS / "stressng_nova.yaml"},
        {"adt": 42},
        {"adt": "   "},
        {"url": "ftp://127.0.0.1/x.yaml"},
        {"url": "not a url"},
        {"file": "/nonexistent/adt.yaml"},
        {"file": 3.5},
        {"adt": {"a": 1}, "params": ["not", "a", "mapping"]},
        {"adt": {"a": 1}, "dryrun": "yes"},
        {"adt": {"tosca_definitions_version": "tosca_simple_yaml_1_2", "template_version": datetime.date(2025, 1, 2)}},
        {"adt": {"a": 1}, "params": {"when": datetime.date(2025, 1, 2)}},
        {"adt": {"a": 1}, "params": {"ratio": float("nan")}},
        {"adt": "a: 1", "params": {"cores": {1, 2}}},
        {"file": ADTS / "stressng_nova.yaml", "params": {"x": object()}},
    ],
)
def test_bad_arguments_are_rejected_before_any_request(client, submitter, kwargs):
    with pytest.raises(InvalidArgument):
        client.applications.create(app_id="x", **kwargs)
    assert api_requests(submitter) == []


def test_bad_delete_force_is_rejected_before_any_request(client, submitter):
    with pytest.raises(InvalidArgument, match="force"):
        client.applications.delete("x", force="yes")
    assert api_requests(submitter) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"endpoint": "micado/toscasubmitter"}, "endpoint"),
        ({"endpoint": "https://h/toscasubmitter/", "version": "2"}, "version"),
        ({"endpoint": "https://h/toscasubmitter/", "verify": "/no/such/cert.pem"}, "verify"),
        ({"endpoint": "https://h/toscasubmitter/", "auth": ("user",)}, "auth"),
        ({"endpoint": "https://h/toscasubmitter/", "timeout": 0}, "timeout"),
        ({"endpoint": "https://h:port/toscasubmitter/"}, "invalid port"),
        ({"endpoint": "https://h/toscasubmitter/?v=1"}, "query"),
        ({"endpoint": "https://h/toscasubmitter/", "auth": ("us:er", "pw")}, "must not contain ':'"),
        ({"launcher": "azure"}, "launcher"),
        ({}, "endpoint="),
    ],
)
def test_bad_client_arguments(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        MicadoClient(**kwargs)


def test_master_needs_a_launcher_and_applications_need_a_master():
    with MicadoClient(endpoint="https://h/toscasubmitter/") as c:
        with pytest.raises(MicadoException, match="No launcher defined"):
            c.master
    with pytest.raises(MicadoException, match="No MiCADO master"):
        MicadoClient(launcher="openstack").applications


def test_from_env(submitter):
    environment = {
        "MICADO_API_ENDPOINT": submitter.endpoint,
        "MICADO_API_VERSION": "v2.0",
        "MICADO_API_USER": submitter.user,
        "MICADO_API_PASSWORD": submitter.password,
        "MICADO_API_CERT": str(submitter.cert_path),
    }
    with MicadoClient.from_env(environment) as c:
        assert c.applications.list() == []
    with pytest.raises(InvalidArgument, match="MICADO_API_ENDPOINT"):
        MicadoClient.from_env({})
    with pytest.raises(InvalidArgument, match="MICADO_API_VERIFY='maybe'"):
        MicadoClient.from_env({"MICADO_API_ENDPOINT": submitter.endpoint, "MICADO_API_VERIFY": "maybe"})
    with pytest.raises(InvalidArgument, match="MICADO_API_PASSWORD"):
        MicadoClient.from_env({"MICADO_API_ENDPOINT": submitter.endpoint, "MICADO_API_USER": "u"})


def test_file_object_with_text_content_is_sent(client, submitter):
    client.applications.create(app_id="textio", file=io.StringIO((ADTS / "stressng_nova.yaml").read_text()))
    assert "textio" in submitter.applications


def test_update_through_the_object_reads_the_new_statuses(client, submitter):
    app = client.applications.create(app_id="up", file=ADTS / "stressng_nova.yaml")
    assert set(app.adaptors.values()) != {"Updated"}
    assert app.update(file=ADTS / "nginx_nova.yaml") is app
    assert set(app.adaptors.values()) == {"Updated"}  # the emulator marks updated adaptors


def test_credentials_in_the_endpoint_are_refused_and_not_echoed():
    with pytest.raises(InvalidArgument, match="auth=") as caught:
        MicadoClient(endpoint="https://admin:s3cret-pw@master/toscasubmitter/")
    assert "s3cret-pw" not in str(caught.value)
    assert "https://master/toscasubmitter/" in str(caught.value)


def test_non_ascii_credentials_are_sent_as_utf8(tmp_path):
    from micado.testing.submitter import SubmitterEmulator

    with SubmitterEmulator(user="jürgen", password="pässwörd-€") as server:
        auth = (server.user, server.password)
        with MicadoClient(endpoint=server.endpoint, verify=server.cert_path, auth=auth) as c:
            assert c.applications.list() == []
        with MicadoClient(endpoint=server.endpoint, verify=server.cert_path, auth=("jürgen", "pässwörd-$")) as c:
            with pytest.raises(AuthenticationError):
                c.applications.list()


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """Plain HTTP: reads a request, sends headers and part of the body, then stalls."""
    headers_and_a_byte = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    with raw_server("http", headers_and_a_byte) as url:
        yield url


def test_an_answer_that_stalls_midway_is_a_timeout(stalling_server):
    with MicadoClient(endpoint=stalling_server, timeout=0.5) as c:
        start = time.monotonic()
        with pytest.raises(MicadoTimeout) as caught:
            c.applications.list()
    assert time.monotonic() - start < 5
    assert caught.value.timeout == 0.5
    assert "0.5 s" in str(caught.value)


def test_a_slow_deploy_times_out_with_a_hint_that_it_may_still_complete(submitter):
    submitter.delay = 1.5
    with MicadoClient(
        endpoint=submitter.endpoint,
        verify=submitter.cert_path,
        auth=(submitter.user, submitter.password),
        deploy_timeout=0.3,
    ) as c:
        start = time.monotonic()
        with pytest.raises(MicadoTimeout, match="may still complete") as caught:
            c.applications.create(app_id="slow", file=ADTS / "stressng_nova.yaml")
        assert time.monotonic() - start < 1.4
        assert caught.value.timeout == 0.3
        # The quick calls keep their own (longer) timeout and see the deploy finish.
        assert wait_until(lambda: c.applications.list() or None, what="the slow deploy", timeout=10)[0].id == "slow"


def test_a_keep_alive_connection_is_reused(client, submitter):
    client.applications.list()
    pools = client.applications.client.session.get_adapter(submitter.endpoint).poolmanager.pools
    (key,) = pools.keys()
    pool = pools[key]
    for _ in range(5):
        client.applications.list()
    assert pool.num_connections == 1
    assert pool.num_requests == 6


def test_a_relative_certificate_path_survives_a_change_of_directory(submitter, tmp_path, monkeypatch):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "master.pem").write_bytes(submitter.cert_path.read_bytes())
    monkeypatch.chdir(tmp_path)
    with MicadoClient(
        endpoint=submitter.endpoint, verify="certs/master.pem", auth=(submitter.user, submitter.password)
    ) as c:
        monkeypatch.chdir(tmp_path / "certs")
        assert c.applications.list() == []


def test_html_repr_escapes_what_the_server_returns(client, submitter):
    app = client.applications.create(app_id="<em>&x", file=ADTS / "stressng_nova.yaml")
    app.reload()
    page = app._repr_html_()
    assert "&lt;em&gt;&amp;x" in page
    assert "<em>&x" not in page
