"""The pure parts of ``micado.master.status``: the master's URLs, the results as data, argument checks."""

from __future__ import annotations

import json

import pytest

from micado.config.record import SEALED, MasterRecord
from micado.exceptions import InvalidArgument
from micado.master.status import DASHBOARDS, Check, MasterStatus, check_master, check_masters, master_urls


def record(endpoint: str, **fields: object) -> MasterRecord:
    values: dict[str, object] = {"id": "m-1", "ip": "192.0.2.7", "endpoint": endpoint, "api_version": "v2.0",
                                 "cert_path": None, "micado_user": "admin", "micado_password": "pw", **fields}
    return MasterRecord(**values)  # type: ignore[arg-type]


def test_dashboards_are_the_proxys_paths() -> None:
    assert DASHBOARDS == {"dashboard": "/dashboard", "grafana": "/grafana", "prometheus": "/prometheus",
                          "kubernetes": "/kubernetes"}


def test_urls_from_an_endpoint_without_a_port() -> None:
    assert master_urls(record("https://192.0.2.7/toscasubmitter/")) == {
        "dashboard": "https://192.0.2.7/dashboard/",
        "grafana": "https://192.0.2.7/grafana/",
        "prometheus": "https://192.0.2.7/prometheus/",
        "kubernetes": "https://192.0.2.7/kubernetes/",
        "submitter": "https://192.0.2.7/toscasubmitter/",
    }


@pytest.mark.parametrize(("endpoint", "origin", "submitter"), [
    ("https://192.0.2.7:8443/toscasubmitter/", "https://192.0.2.7:8443", "https://192.0.2.7:8443/toscasubmitter/"),
    ("https://master.example:8443/toscasubmitter", "https://master.example:8443",
     "https://master.example:8443/toscasubmitter/"),
    ("https://[2001:db8::7]:9443/toscasubmitter/", "https://[2001:db8::7]:9443",
     "https://[2001:db8::7]:9443/toscasubmitter/"),
    ("https://192.0.2.7:443/", "https://192.0.2.7:443", "https://192.0.2.7:443/"),
    ("http://127.0.0.1:5050", "http://127.0.0.1:5050", "http://127.0.0.1:5050/"),
], ids=["ip-port", "name-no-slash", "ipv6", "no-prefix", "http"])
def test_urls_keep_the_endpoints_scheme_host_and_port(endpoint: str, origin: str, submitter: str) -> None:
    urls = master_urls(record(endpoint))
    assert urls["submitter"] == submitter
    for name, path in DASHBOARDS.items():
        assert urls[name] == f"{origin}{path}/"


def test_urls_never_carry_a_user_or_password_of_the_endpoint() -> None:
    urls = master_urls(record("https://admin:hunter2@192.0.2.7:8443/toscasubmitter/"))
    assert urls["grafana"] == "https://192.0.2.7:8443/grafana/"
    assert "hunter2" not in json.dumps(urls)


@pytest.mark.parametrize("endpoint", ["", "192.0.2.7/toscasubmitter", "ftp://192.0.2.7/", "https://192.0.2.7:99999/"])
def test_urls_of_an_unusable_endpoint_name_the_master(endpoint: str) -> None:
    with pytest.raises(InvalidArgument, match="endpoint of master m-1"):
        master_urls(record(endpoint))


def test_status_as_data_and_ok() -> None:
    checks = (Check("tls", True, "TLSv1.3, the recorded certificate", 0.01234),
              Check("dashboard:grafana", False, "404 NOT FOUND: the master does not serve this dashboard", 0.5))
    status = MasterStatus("m-1", checks)
    assert not status.ok
    assert status.as_dict() == {
        "master_id": "m-1",
        "ok": False,
        "checks": [
            {"name": "tls", "ok": True, "detail": "TLSv1.3, the recorded certificate", "seconds": 0.012},
            {"name": "dashboard:grafana", "ok": False,
             "detail": "404 NOT FOUND: the master does not serve this dashboard", "seconds": 0.5},
        ],
    }
    json.dumps(status.as_dict())
    assert status.check("dashboard:grafana") is checks[1]
    with pytest.raises(KeyError, match="no check 'ssh' in the status of m-1; there are tls, dashboard:grafana"):
        status.check("ssh")
    assert MasterStatus("m-1", checks[:1]).ok
    assert not MasterStatus("m-1", ()).ok  # nothing checked is not "all fine"


def test_arguments_are_checked_before_any_connection() -> None:
    good = record("https://192.0.2.7/toscasubmitter/")
    with pytest.raises(InvalidArgument, match="needs a MasterRecord, not dict"):
        check_master({"id": "m-1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="sealed.*MasterStore.get"):
        check_master(record("https://192.0.2.7/toscasubmitter/", micado_password=SEALED))
    for timeout in (0, -1, float("nan"), True):
        with pytest.raises(InvalidArgument, match="timeout must be a positive number"):
            check_master(good, timeout=timeout)
    for workers in (0, 1.5, True):
        with pytest.raises(InvalidArgument, match="workers must be a positive whole number"):
            check_masters([good], workers=workers)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="sealed"):
        check_masters([good, record("https://192.0.2.8/", micado_password=SEALED)])
    assert check_masters([]) == []
