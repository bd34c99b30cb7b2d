"""The TOSCA Submitter emulator keeps the v2.0 contract of the real TOSCA Submitter.

Plain ``requests`` over real HTTPS against the emulator: this tests the emulator
(what the client library is tested against), not the client library.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from ruamel.yaml import YAML

from micado.progress import wait_until
from micado.testing.submitter import ENV_PASSWORD, SubmitterEmulator
from micado.testing.submitter import DEFAULT_ADAPTORS, generate_app_id
from micado.testing.tls import make_self_signed, split_pem

from loopback import FileServer
from paths import ADTS, ROOT

ALL_ADTS = sorted(ADTS.glob("*.yaml"))
TIMEOUT = 10


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


class Api:
    """Plain requests against one emulator: auth, certificate and timeout on every call."""

    def __init__(self, submitter: SubmitterEmulator) -> None:
        self.submitter = submitter
        self.base = submitter.endpoint + "v2.0/applications/"
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or CA bundles from the environment
        self.auth: Any = (submitter.user, submitter.password)

    def url(self, app_id: str | None = None) -> str:
        return self.base if app_id is None else f"{self.base}{app_id}/"

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(
            method, url, verify=str(self.submitter.cert_path), timeout=TIMEOUT, **kwargs
        )

    def get(self, app_id: str | None = None, **kwargs: Any) -> requests.Response:
        return self.call("GET", self.url(app_id), **kwargs)

    def post(self, app_id: str | None = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", self.url(app_id), **kwargs)

    def put(self, app_id: str, **kwargs: Any) -> requests.Response:
        return self.call("PUT", self.url(app_id), **kwargs)

    def delete(self, app_id: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", self.url(app_id), **kwargs)

    def upload(self, app_id: str | None, path: Path, method: str = "POST", **data: str) -> requests.Response:
        with path.open("rb") as handle:
            return self.call(method, self.url(app_id), files={"adt": (path.name, handle)}, data=data)


@pytest.fixture
def api(submitter: SubmitterEmulator) -> Iterator[Api]:
    client = Api(submitter)
    yield client
    client.session.close()


def assert_answer(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"message": message}


MINIMAL_ADT = {"tosca_definitions_version": "tosca_simple_yaml_1_2", "description": "minimal"}

# --- TLS and certificates ----------------------------------------------------------------


def test_self_signed_certificate_names_ips_and_hosts() -> None:
    from cryptography import x509

    cert_pem, key_pem = make_self_signed(["127.0.0.1", "master.example"], days=3)
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["master.example"]
    assert b"PRIVATE KEY" in key_pem
    assert b"PRIVATE KEY" not in cert_pem
    assert split_pem(cert_pem + key_pem) == (cert_pem, key_pem)
    with pytest.raises(ValueError, match="at least one host"):
        make_self_signed([])
    with pytest.raises(ValueError, match="no PRIVATE KEY"):
        split_pem(cert_pem)


def test_https_with_the_written_certificate_only(submitter: SubmitterEmulator, api: Api) -> None:
    assert submitter.endpoint == f"https://127.0.0.1:{submitter.port}/toscasubmitter/"
    cert_text = submitter.cert_path.read_text()
    assert "BEGIN CERTIFICATE" in cert_text
    assert "PRIVATE KEY" not in cert_text
    assert api.get().status_code == 200
    # The system CA bundle does not know the self-signed certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(api.base, auth=api.auth, verify=True, timeout=TIMEOUT)


def test_password_never_in_repr(submitter: SubmitterEmulator) -> None:
    assert submitter.password not in repr(submitter)


# --- the proxy in front: authentication and the login page -------------------------------


@pytest.mark.parametrize("auth", [None, ("admin", "wrong"), ("root", "right")], ids=["none", "password", "user"])
def test_missing_or_wrong_credentials_are_401_json(submitter: SubmitterEmulator, api: Api, auth: Any) -> None:
    if auth == ("root", "right"):
        auth = ("root", submitter.password)
    response = api.get(auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json()["message"].startswith("401 Unauthorized: ")
    # Every path is protected, also those that do not exist.
    assert api.call("GET", submitter.endpoint + "nowhere", auth=auth).status_code == 401


def test_login_page_answers_everything_until_switched_off(submitter: SubmitterEmulator, api: Api) -> None:
    submitter.login_page = True
    for response in (api.get(), api.post(json={"adt": MINIMAL_ADT}), api.get(auth=None), api.delete("x")):
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<form" in response.text
    assert submitter.applications == {}
    submitter.login_page = False
    assert api.get().json() == {"applications": [], "message": "MiCADO Applications"}


def test_html_auth_pages_like_the_proxy_web_login(submitter: SubmitterEmulator, api: Api) -> None:
    submitter.html_auth_pages = True
    anonymous, wrong = api.get(auth=None), api.get(auth=(submitter.user, "wrong"))
    for response in (anonymous, wrong):
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
    assert "<form" in anonymous.text
    assert "Authentication failed" not in anonymous.text
    assert "Authentication failed" in wrong.text
    assert api.get().json() == {"applications": [], "message": "MiCADO Applications"}
    submitter.reset()
    assert api.get(auth=None).status_code == 401


# --- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_path_without_trailing_slash_is_redirected_308(api: Api, submitter: SubmitterEmulator, method: str) -> None:
    url = api.base.rstrip("/") if method in ("GET", "POST") else api.url("app").rstrip("/")
    response = api.call(method, url, json={"adt": MINIMAL_ADT})
    assert response.status_code == 308
    assert response.headers["Location"] == url + "/"
    assert submitter.applications == {}


def test_unknown_paths_and_methods_get_the_framework_html(api: Api, submitter: SubmitterEmulator) -> None:
    missing = api.call("GET", submitter.endpoint + "v1.0/applications/")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("text/html")
    assert api.call("PUT", api.base).status_code == 405
    assert api.call("DELETE", api.base).status_code == 405


def test_head_and_options_create_nothing(api: Api, submitter: SubmitterEmulator) -> None:
    head = api.call("HEAD", api.base)
    assert head.status_code == 200
    assert head.content == b""
    options = api.call("OPTIONS", api.url("app"))
    assert options.status_code == 200
    assert set(options.headers["Allow"].split(", ")) == {"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}
    assert submitter.applications == {}


def test_prefix_is_configurable() -> None:
    with SubmitterEmulator(prefix="", password="p") as bare:
        assert bare.endpoint == f"https://127.0.0.1:{bare.port}/"
        response = requests.get(
            bare.endpoint + "v2.0/applications/", auth=("admin", "p"), verify=str(bare.cert_path), timeout=TIMEOUT
        )
        assert response.json()["applications"] == []


# --- list and get --------------------------------------------------------------------------


def test_list_and_get(api: Api, submitter: SubmitterEmulator) -> None:
    assert api.get().json() == {"applications": [], "message": "MiCADO Applications"}
    assert_answer(api.get("nope"), 404, "404 Not Found: Application nope does not exist")
    assert_answer(api.upload("web", ADTS / "nginx_nova.yaml"), 200, "Application web successfully deployed")
    assert api.get().json() == {"applications": ["web"], "message": "MiCADO Applications"}
    assert api.get("web").json() == {"adaptors": DEFAULT_ADAPTORS, "message": "MiCADO Application Info"}


def test_adaptors_are_configurable() -> None:
    adaptors = {"KubernetesAdaptor": "Executed", "TerraformAdaptor": "executed"}
    with SubmitterEmulator(password="p", adaptors=adaptors) as custom:
        custom_api = Api(custom)
        custom_api.post("x", json={"adt": MINIMAL_ADT})
        assert custom_api.get("x").json()["adaptors"] == adaptors


# --- create --------------------------------------------------------------------------------


@pytest.mark.parametrize("adt_path", ALL_ADTS, ids=lambda path: path.name)
def test_real_adts_deploy_update_and_delete(api: Api, submitter: SubmitterEmulator, adt_path: Path) -> None:
    assert_answer(api.upload("demo", adt_path), 200, "Application demo successfully deployed")
    stored = submitter.applications["demo"]
    assert stored["adt"] == load_yaml(adt_path)
    assert stored["filename"] == adt_path.name
    assert stored["params"] == {}
    other = ADTS / ("stressng_nova.yaml" if adt_path.name != "stressng_nova.yaml" else "nginx_nova.yaml")
    assert_answer(api.upload("demo", other, method="PUT"), 200, "Application demo successfully updated")
    assert submitter.applications["demo"]["adt"] == load_yaml(other)
    assert_answer(api.delete("demo", data={"force": "false"}), 200, "Application demo successfully deleted")
    assert submitter.applications == {}


def test_generated_id_appears_only_in_the_message(api: Api, submitter: SubmitterEmulator) -> None:
    response = api.post(json={"adt": MINIMAL_ADT, "params": {"replicas": 2}})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["message"]
    match = re.fullmatch(r"Application ([A-Z0-9]{8}) successfully deployed", body["message"])
    assert match, body
    assert list(submitter.applications) == [match.group(1)]
    assert submitter.applications[match.group(1)]["params"] == {"replicas": 2}
    assert all(re.fullmatch(r"[A-Z0-9]{8}", generate_app_id()) for _ in range(50))


def test_multipart_params_are_json_text(api: Api, submitter: SubmitterEmulator) -> None:
    response = api.upload("p", ADTS / "stressng_nova.yaml", params=json.dumps({"cpu": "2"}), dryrun="false")
    assert_answer(response, 200, "Application p successfully deployed")
    assert submitter.applications["p"]["params"] == {"cpu": "2"}


def test_one_application_per_master_and_ids_are_unique(api: Api) -> None:
    api.post("first", json={"adt": MINIMAL_ADT})
    assert_answer(api.post("first", json={"adt": MINIMAL_ADT}), 400, "400 Bad Request: The application ID already exists")
    assert_answer(
        api.post("second", json={"adt": MINIMAL_ADT}), 400, "400 Bad Request: Multiple applications are not supported"
    )
    assert_answer(api.post(json={"adt": MINIMAL_ADT}), 400, "400 Bad Request: Multiple applications are not supported")
    assert api.get().json()["applications"] == ["first"]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"json": {}}, {"json": {"adt": {}}}, {"json": {"params": {"a": 1}}}, {"data": {"params": "{}"}}],
    ids=["nobody", "empty-json", "empty-adt", "params-only", "form-params-only"],
)
def test_no_adt_is_400(api: Api, submitter: SubmitterEmulator, kwargs: dict[str, Any]) -> None:
    assert_answer(api.post("a", **kwargs), 400, "400 Bad Request: No ADT data was included in the request")
    assert submitter.applications == {}


def test_upload_with_empty_filename_counts_as_no_adt(api: Api) -> None:
    response = api.post("a", files={"adt": ("", b"tosca_definitions_version: tosca_simple_yaml_1_2\n")})
    assert_answer(response, 400, "400 Bad Request: No ADT data was included in the request")


def test_params_that_are_not_a_json_mapping_are_400(api: Api, submitter: SubmitterEmulator) -> None:
    bad_json = api.upload("a", ADTS / "nginx_nova.yaml", params="replicas=2")
    assert bad_json.status_code == 400
    message = bad_json.json()["message"]
    assert message.startswith("400 Bad Request: Expecting value: line 1 column 1 (char 0)")
    assert message.endswith("Error loading JSON params, of type <class 'str'>")
    assert_answer(
        api.upload("a", ADTS / "nginx_nova.yaml", params="[1, 2]"),
        400,
        "400 Bad Request: Parsed params are not a valid map (dict)",
    )
    assert submitter.applications == {}


def test_invalid_yaml_is_500_with_the_parser_message(api: Api, submitter: SubmitterEmulator) -> None:
    response = api.post("bad", files={"adt": ("bad.yaml", b"tosca_definitions_version: [unclosed\nfoo: bar\n")})
    assert response.status_code == 500
    message = response.json()["message"]
    assert message.startswith("500 Internal Server Error: Error while validating: ")
    assert "while parsing a flow sequence" in message
    assert "line 1, column 28" in message
    assert submitter.applications == {}


@pytest.mark.parametrize(
    ("adt", "expected"),
    [
        ({"description": "no version"}, 'missing required field "tosca_definitions_version"'),
        ({"tosca_definitions_version": "tosca_1"}, 'The template version "tosca_1" is invalid'),
        ({"tosca_definitions_version": "tosca_simple_yaml_1_2", "nodes": {}}, 'unknown field "nodes"'),
    ],
    ids=["no-version", "bad-version", "unknown-section"],
)
def test_non_tosca_documents_fail_validation(api: Api, submitter: SubmitterEmulator, adt: Any, expected: str) -> None:
    for response in (api.post("x", json={"adt": adt}), api.post("x", files={"adt": ("x.yaml", json.dumps(adt))})):
        assert response.status_code == 500
        message = response.json()["message"]
        assert message.startswith("500 Internal Server Error: Error while validating: ")
        assert expected in message
    assert_answer(
        api.post("x", files={"adt": ("x.yaml", b"- just\n- a list\n")}),
        500,
        '500 Internal Server Error: Error while validating: The input "x.yaml" failed validation with the '
        "following error(s): the template must be a YAML mapping, not a list",
    )
    assert submitter.applications == {}


def test_order_of_checks_on_create(api: Api) -> None:
    # Body parsing comes first: even an existing id gets the 400/422 of a bad body.
    api.post("taken", json={"adt": MINIMAL_ADT})
    malformed = api.post("taken", data=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["message"].startswith("400 Bad Request: ")
    assert api.post("taken", json={"adt": MINIMAL_ADT, "x": 1}).status_code == 422
    # Then the id, then any application, before looking for an ADT at all.
    assert "ID already exists" in api.post("taken", json={}).json()["message"]
    assert "Multiple applications" in api.post("other", json={}).json()["message"]
    api.delete("taken")
    # No ADT comes before bad params; bad params before validation.
    assert "No ADT" in api.post("a", data={"params": "not json"}).json()["message"]
    bad_both = api.post("a", files={"adt": ("a.yaml", b": : :")}, data={"params": "[]"})
    assert_answer(bad_both, 400, "400 Bad Request: Parsed params are not a valid map (dict)")


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"adt": "text"}, {"adt": ["Not a valid mapping type."]}),
        ({"adt": MINIMAL_ADT, "params": [1]}, {"params": ["Not a valid mapping type."]}),
        ({"url": 5}, {"url": ["Not a valid string."]}),
        ({"adt": MINIMAL_ADT, "dryrun": "maybe"}, {"dryrun": ["Not a valid boolean."]}),
        ({"adt": None}, {"adt": ["Field may not be null."]}),
        ({"adt": MINIMAL_ADT, "force": True}, {"force": ["Unknown field."]}),
        ([MINIMAL_ADT], {"_schema": ["Invalid input type."]}),
    ],
    ids=["adt-text", "params-list", "url-int", "dryrun-word", "adt-null", "unknown", "list-body"],
)
def test_json_fields_are_checked_like_webargs(api: Api, submitter: SubmitterEmulator, body: Any, errors: Any) -> None:
    response = api.post("a", json=body)
    assert_answer(response, 422, f"422 Unprocessable Entity: {({'json': errors})!r}")
    assert submitter.applications == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"files": {"adt": (None, b"tosca_definitions_version: tosca_simple_yaml_1_2\n")}},
        {"data": {"adt": "tosca_definitions_version: tosca_simple_yaml_1_2\n"}},
    ],
    ids=["part-without-filename", "plain-form-field"],
)
def test_adt_must_be_a_file_part_with_a_filename(api: Api, submitter: SubmitterEmulator, kwargs: Any) -> None:
    assert_answer(api.post("a", **kwargs), 422, "422 Unprocessable Entity: {'form': {'adt': ['Unknown field.']}}")
    assert submitter.applications == {}


def test_unknown_form_field_is_422(api: Api) -> None:
    response = api.upload("a", ADTS / "nginx_nova.yaml", replicas="2")
    assert_answer(response, 422, "422 Unprocessable Entity: {'form': {'replicas': ['Unknown field.']}}")


@pytest.mark.parametrize(
    ("value", "registered"),
    [("", False), ("false", False), ("False", False), ("falsehood", False), ("true", True), ("no", True), ("0", True)],
)
def test_form_dryrun_is_false_only_when_empty_or_false(
    api: Api, submitter: SubmitterEmulator, value: str, registered: bool
) -> None:
    assert_answer(api.upload("d", ADTS / "nginx_nova.yaml", dryrun=value), 200, "Application d successfully deployed")
    assert submitter.applications["d"]["dryrun"] is registered


def test_json_dryrun_is_registered_like_the_real_engine(api: Api, submitter: SubmitterEmulator) -> None:
    invalid = api.post("f", json={"adt": {"description": "x"}, "dryrun": True})
    assert invalid.status_code == 500
    assert submitter.applications == {}
    assert_answer(api.post("d", json={"adt": MINIMAL_ADT, "dryrun": True}), 200, "Application d successfully deployed")
    assert submitter.applications["d"]["dryrun"] is True
    second = api.post("e", json={"adt": MINIMAL_ADT, "dryrun": True})
    assert second.status_code == 400
    assert "Multiple applications are not supported" in second.json()["message"]
    assert invalid.status_code == 500
    assert "Error while validating" in invalid.json()["message"]


def test_deploy_failure_registers_nothing(api: Api, submitter: SubmitterEmulator) -> None:
    submitter.deploy_error = "Occopus refused the node"
    assert_answer(
        api.post("a", json={"adt": MINIMAL_ADT}),
        500,
        "500 Internal Server Error: Error while deploying: Occopus refused the node",
    )
    assert submitter.applications == {}


# --- ADT from a URL, and CSAR archives ------------------------------------------------------


@pytest.fixture
def file_server() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """A plain HTTP server on loopback: (base URL, path -> content, paths fetched)."""
    with FileServer() as server:
        yield server.url, server.files, server.hits


def make_csar(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_the_server_fetches_the_url_itself(api: Api, submitter: SubmitterEmulator, file_server: Any) -> None:
    base, files, fetched = file_server
    files["/adts/stressng.yaml"] = (ADTS / "stressng_nova.yaml").read_bytes()
    response = api.post("u", json={"url": base + "/adts/stressng.yaml", "params": {"a": 1}})
    assert_answer(response, 200, "Application u successfully deployed")
    assert fetched == ["/adts/stressng.yaml"]
    assert submitter.applications["u"]["adt"] == load_yaml(ADTS / "stressng_nova.yaml")
    assert submitter.applications["u"]["url"] == base + "/adts/stressng.yaml"
    # Multipart form field, on update.
    files["/v2.yaml"] = (ADTS / "nginx_nova.yaml").read_bytes()
    assert_answer(api.put("u", data={"url": base + "/v2.yaml"}), 200, "Application u successfully updated")
    assert submitter.applications["u"]["adt"] == load_yaml(ADTS / "nginx_nova.yaml")


def test_unreachable_or_missing_url_is_a_validation_error(
    api: Api, submitter: SubmitterEmulator, file_server: Any
) -> None:
    base, _files, _fetched = file_server
    missing = api.post("u", json={"url": base + "/nothing.yaml"})
    assert_answer(
        missing, 500, "500 Internal Server Error: Error while validating: Cannot find input file HTTP Error 404: Not Found"
    )
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/adt.yaml"
    refused = api.post("u", json={"url": refused_url})
    assert refused.status_code == 500
    assert refused.json()["message"].startswith(
        "500 Internal Server Error: Error while validating: Cannot find input file <urlopen error"
    )
    local = api.post("u", json={"url": "file:///etc/passwd"})
    assert local.status_code == 500
    assert "unknown url type: file" in local.json()["message"]
    assert submitter.applications == {}


def test_url_fetch_has_a_timeout(api: Api, submitter: SubmitterEmulator) -> None:
    submitter.url_timeout = 0.3
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        started = time.monotonic()
        response = api.post("u", json={"url": f"http://127.0.0.1:{silent.getsockname()[1]}/adt.yaml"})
    assert time.monotonic() - started < 5
    assert response.status_code == 500
    assert "Error while validating: Cannot find input file" in response.json()["message"]


def test_csar_with_tosca_meta(api: Api, submitter: SubmitterEmulator, tmp_path: Path) -> None:
    csar = make_csar(
        tmp_path / "app.csar",
        {
            "TOSCA-Metadata/TOSCA.meta": b"TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\n"
            b"Created-By: test\nEntry-Definitions: Definitions/nginx.yaml\n",
            "Definitions/nginx.yaml": (ADTS / "nginx_nova.yaml").read_bytes(),
            "Definitions/other.yaml": b"not: tosca\n",
        },
    )
    assert_answer(api.upload("c", csar), 200, "Application c successfully deployed")
    assert submitter.applications["c"]["adt"] == load_yaml(ADTS / "nginx_nova.yaml")
    assert submitter.applications["c"]["filename"] == "app.csar"


def test_csar_with_one_top_level_yaml(api: Api, submitter: SubmitterEmulator, tmp_path: Path) -> None:
    csar = make_csar(
        tmp_path / "app.zip",
        {"stress.yaml": (ADTS / "stressng_nova.yaml").read_bytes(), "files/readme.txt": b"hello"},
    )
    assert_answer(api.upload("c", csar), 200, "Application c successfully deployed")
    assert submitter.applications["c"]["adt"] == load_yaml(ADTS / "stressng_nova.yaml")


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"a.yaml": b"x: 1\n", "b.yaml": b"y: 2\n"}, "exactly one top-level YAML file instead (found: a.yaml, b.yaml)"),
        ({"TOSCA-Metadata/TOSCA.meta": b"Entry-Definitions: gone.yaml\n"}, 'file "gone.yaml" defined in the CSAR'),
        ({"TOSCA-Metadata/TOSCA.meta": b"CSAR-Version: 1.1\n", "a.yaml": b"x: 1\n"}, '"Entry-Definitions"'),
        ({"a.yaml": b"description: no version\n"}, "tosca_definitions_version"),
        (None, '"bad.csar" is not a valid zip file.'),
    ],
    ids=["two-yamls", "entry-missing", "meta-without-entry", "not-tosca", "not-a-zip"],
)
def test_broken_csars_fail_validation(
    api: Api, submitter: SubmitterEmulator, tmp_path: Path, members: Any, expected: str
) -> None:
    if members is None:
        csar = tmp_path / "bad.csar"
        csar.write_bytes(b"tosca_definitions_version: tosca_simple_yaml_1_2\n")
    else:
        csar = make_csar(tmp_path / "bad.csar", members)
    response = api.upload("c", csar)
    assert response.status_code == 500
    assert response.json()["message"].startswith("500 Internal Server Error: Error while validating: ")
    assert expected in response.json()["message"]
    assert submitter.applications == {}


# --- update ----------------------------------------------------------------------------------


def test_update_of_a_missing_application_is_404(api: Api) -> None:
    assert_answer(
        api.put("ghost", json={"adt": MINIMAL_ADT}), 404, "404 Not Found: Application with ID ghost does not exist"
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"json": {"adt": MINIMAL_ADT, "dryrun": False}}, {"data": {"dryrun": "true"}}, {"data": {"dryrun": ""}}],
    ids=["json-false", "form-true", "form-empty"],
)
def test_any_dryrun_on_update_is_500(api: Api, submitter: SubmitterEmulator, kwargs: Any) -> None:
    api.upload("keep", ADTS / "nginx_nova.yaml")
    before = submitter.applications
    assert_answer(
        api.put("keep", **kwargs),
        500,
        "Unhandled exception: Application.put() got an unexpected keyword argument 'dryrun'",
    )
    # Even for an application that does not exist: the handler fails before looking.
    assert api.put("ghost", **kwargs).status_code == 500
    assert submitter.applications == before


def test_failed_updates_leave_the_application_unchanged(api: Api, submitter: SubmitterEmulator) -> None:
    api.upload("keep", ADTS / "nginx_nova.yaml", params='{"a": 1}')
    before = submitter.applications
    assert "Error while validating" in api.put("keep", files={"adt": ("x.yaml", b"[")}).json()["message"]
    assert_answer(api.put("keep", json={}), 400, "400 Bad Request: No ADT data was included in the request")
    assert api.put("keep", json={"adt": MINIMAL_ADT, "params": "x"}).status_code == 422
    submitter.update_error = "kubectl failed"
    assert_answer(
        api.put("keep", json={"adt": MINIMAL_ADT}), 500, "500 Internal Server Error: Error while updating: kubectl failed"
    )
    assert submitter.applications == before


def test_update_replaces_adt_and_params(api: Api, submitter: SubmitterEmulator) -> None:
    api.post("app", json={"adt": MINIMAL_ADT, "params": {"a": 1}})
    new_adt = dict(MINIMAL_ADT, description="second")
    assert_answer(api.put("app", json={"adt": new_adt, "params": {"b": 2}}), 200, "Application app successfully updated")
    assert submitter.applications["app"]["adt"] == new_adt
    assert submitter.applications["app"]["params"] == {"b": 2}
    assert set(api.get("app").json()["adaptors"]) == set(DEFAULT_ADAPTORS)


# --- delete ----------------------------------------------------------------------------------


def test_delete_reads_force_only_from_the_form(api: Api, submitter: SubmitterEmulator) -> None:
    api.post("app", json={"adt": MINIMAL_ADT})
    submitter.delete_error = "undeploy failed"
    expected = "500 Internal Server Error: Error while deleting: undeploy failed"
    # force in a JSON body or in the query string is silently ignored.
    assert_answer(api.delete("app", json={"force": True}), 500, expected)
    assert_answer(api.call("DELETE", api.url("app") + "?force=true"), 500, expected)
    assert "app" in submitter.applications
    assert_answer(api.delete("app", data={"force": "true"}), 200, "Application app successfully deleted")
    assert submitter.deletions == [("app", False), ("app", False), ("app", True)]
    assert_answer(api.delete("app"), 404, "404 Not Found: Application with ID app does not exist")


@pytest.mark.parametrize(
    ("form", "errors"),
    [({"force": "true", "purge": "yes"}, {"purge": ["Unknown field."]}), ({"force": "maybe"}, {"force": ["Not a valid boolean."]})],
    ids=["unknown-field", "bad-boolean"],
)
def test_bad_delete_form_is_422_and_deletes_nothing(
    api: Api, submitter: SubmitterEmulator, form: dict[str, str], errors: Any
) -> None:
    api.post("app", json={"adt": MINIMAL_ADT})
    assert_answer(api.delete("app", data=form), 422, f"422 Unprocessable Entity: {({'form': errors})!r}")
    assert list(submitter.applications) == ["app"]
    assert submitter.deletions == []


# --- inspection, concurrency and lifecycle ---------------------------------------------------


def test_requests_are_recorded_as_sent_and_reset_clears_everything(api: Api, submitter: SubmitterEmulator) -> None:
    api.get()
    api.get("a%3Fb%23c%25")
    api.get(auth=None)
    path = api.base.split(str(submitter.port), 1)[1]
    assert submitter.requests == [("GET", path), ("GET", path + "a%3Fb%23c%25/"), ("GET", path)]
    submitter.requests.clear()
    assert submitter.requests == []
    submitter.add_application("one")
    submitter.add_application("two")
    assert api.get().json()["applications"] == ["one", "two"]
    submitter.login_page = True
    submitter.delay = 1.0
    submitter.reset()
    assert (submitter.applications, submitter.requests, submitter.login_page, submitter.delay) == ({}, [], False, 0.0)


def test_slow_deploy_does_not_block_reads(api: Api, submitter: SubmitterEmulator) -> None:
    submitter.delay = 0.6
    results: list[requests.Response] = []
    slow = threading.Thread(target=lambda: results.append(Api(submitter).post("slow", json={"adt": MINIMAL_ADT})))
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert api.get().json()["applications"] == []
    assert time.monotonic() - started < 0.4
    slow.join(TIMEOUT)
    assert results[0].status_code == 200
    assert "slow" in submitter.applications


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_connections_are_kept_alive_also_after_bodies_the_server_did_not_read(submitter: SubmitterEmulator) -> None:
    context = ssl.create_default_context(cafile=str(submitter.cert_path))
    conn = http.client.HTTPSConnection("127.0.0.1", submitter.port, context=context, timeout=TIMEOUT)
    good = {"Authorization": _basic(submitter.user, submitter.password)}
    path = "/toscasubmitter/v2.0/applications/"
    body = json.dumps({"adt": MINIMAL_ADT, "pad": "x" * 50_000}).encode()
    try:
        conn.request("GET", path, headers=good)
        assert conn.getresponse().read()
        first_socket = conn.sock
        # Answered without reading the body: wrong password, unknown path, chunked too.
        for headers, url, chunked in (
            ({"Authorization": _basic(submitter.user, "wrong")}, path, False),
            (good, "/toscasubmitter/nowhere/", False),
            (good, "/toscasubmitter/nowhere/", True),
        ):
            payload: Any = iter([body[:1000], body[1000:]]) if chunked else body
            conn.request("POST", url, body=payload, headers={**headers, "Content-Type": "application/json"},
                         encode_chunked=chunked)
            response = conn.getresponse()
            response.read()
            assert response.status in (401, 404)
            assert response.getheader("Connection") is None
        conn.request("GET", path, headers=good)
        response = conn.getresponse()
        assert json.loads(response.read()) == {"applications": [], "message": "MiCADO Applications"}
        assert conn.sock is first_socket  # one TLS connection for all five requests
    finally:
        conn.close()
    assert submitter.applications == {}


def test_connection_close_is_honoured(submitter: SubmitterEmulator) -> None:
    context = ssl.create_default_context(cafile=str(submitter.cert_path))
    conn = http.client.HTTPSConnection("127.0.0.1", submitter.port, context=context, timeout=TIMEOUT)
    try:
        conn.request("GET", "/toscasubmitter/v2.0/applications/",
                     headers={"Authorization": _basic(submitter.user, submitter.password), "Connection": "close"})
        response = conn.getresponse()
        assert response.getheader("Connection") == "close"
        assert response.status == 200
        response.read()
        assert response.will_close
    finally:
        conn.close()


def test_an_idle_connection_does_not_stall_the_server(api: Api, submitter: SubmitterEmulator) -> None:
    with socket.create_connection(("127.0.0.1", submitter.port), timeout=TIMEOUT):
        assert api.get().status_code == 200


def test_stop_closes_keep_alive_connections_and_frees_the_port(tmp_path: Path) -> None:
    emulator = SubmitterEmulator(password="p", cert_out=tmp_path / "cert.pem").start()
    client = Api(emulator)
    assert client.get().status_code == 200
    port, cert = emulator.port, str(emulator.cert_path)
    emulator.stop()
    emulator.stop()  # twice is fine
    with pytest.raises(requests.exceptions.ConnectionError):
        client.session.get(client.base, auth=client.auth, verify=cert, timeout=TIMEOUT)
    with pytest.raises(RuntimeError, match="not started"):
        emulator.endpoint
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_existing_pem_and_cert_out(tmp_path: Path) -> None:
    cert_pem, key_pem = make_self_signed(["127.0.0.1"])
    pem = tmp_path / "ssl.pem"
    pem.write_bytes(key_pem + cert_pem)  # either order works
    with SubmitterEmulator(password="p", tls_pem=pem, cert_out=tmp_path / "new" / "cert.pem") as emulator:
        assert emulator.cert_path == tmp_path / "new" / "cert.pem"
        assert emulator.cert_path.read_bytes() == cert_pem
        response = requests.get(
            emulator.endpoint + "v2.0/applications/", auth=("admin", "p"), verify=str(emulator.cert_path), timeout=TIMEOUT
        )
        assert response.status_code == 200
    assert (tmp_path / "new" / "cert.pem").exists()  # the caller's file is kept


# --- command line ----------------------------------------------------------------------------


def _start_cli(tmp_path: Path, *args: str, password: str | None = "from-env") -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    ready = tmp_path / "ready.json"
    env = dict(os.environ)
    env.pop(ENV_PASSWORD, None)
    if password is not None:
        env[ENV_PASSWORD] = password
    process = subprocess.Popen(
        [sys.executable, "-m", "micado.testing.submitter", "--port", "0", "--ready-file", str(ready), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def check() -> dict[str, Any] | None:
        if process.poll() is not None:
            raise AssertionError(f"the emulator exited early: {process.communicate()}")
        return json.loads(ready.read_text()) if ready.exists() else None

    try:
        return process, wait_until(check, what="the submitter emulator's ready file", timeout=20)
    except BaseException:
        process.kill()
        process.communicate()
        raise


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    process, ready = _start_cli(tmp_path, "--user", "micado", "--cert-out", str(tmp_path / "cert.pem"))
    try:
        assert ready["user"] == "micado"
        assert ready["password"] == "from-env"
        assert ready["pid"] == process.pid
        assert ready["cert"] == str(tmp_path / "cert.pem")
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+/toscasubmitter/", ready["endpoint"])
        assert (tmp_path / "ready.json").stat().st_mode & 0o077 == 0
        response = requests.get(
            ready["endpoint"] + "v2.0/applications/",
            auth=(ready["user"], ready["password"]),
            verify=ready["cert"],
            timeout=TIMEOUT,
        )
        assert response.json() == {"applications": [], "message": "MiCADO Applications"}
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_cli_password_option_tls_pem_and_sigint(tmp_path: Path) -> None:
    cert_pem, key_pem = make_self_signed(["127.0.0.1"])
    (tmp_path / "ssl.pem").write_bytes(cert_pem + key_pem)
    process, ready = _start_cli(  # a password may start with a dash: it is still the option's value
        tmp_path, "--password", "-from-option", "--tls-pem", str(tmp_path / "ssl.pem"), password=None
    )
    try:
        assert ready["password"] == "-from-option"
        assert Path(ready["cert"]).read_bytes() == cert_pem
        response = requests.get(
            ready["endpoint"] + "v2.0/applications/", auth=("admin", "-from-option"), verify=ready["cert"],
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_cli_rejects_bad_adaptors_json(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "micado.testing.submitter", "--adaptors", "[1]"],
        cwd=ROOT,
        capture_output=True,
        timeout=TIMEOUT * 2,
    )
    assert result.returncode == 2
    assert b"--adaptors must be a JSON mapping" in result.stderr


def test_a_state_file_keeps_the_applications_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "applications.json"
    first = SubmitterEmulator(user="u", password="p")
    first.keep_in(state)
    first.add_application("kept", params={"n": 1})
    assert json.loads(state.read_text())["kept"]["params"] == {"n": 1}
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    second = SubmitterEmulator(user="u", password="p")
    second.keep_in(state)  # a restarted server
    assert list(second.applications) == ["kept"]
    second.reset()
    assert json.loads(state.read_text()) == {}
    state.write_text("[1, 2]")
    with pytest.raises(ValueError, match="does not hold the applications"):
        SubmitterEmulator(user="u", password="p").keep_in(state)
