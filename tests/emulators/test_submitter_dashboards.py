"""The submitter emulator serves the master's dashboards behind the proxy's login, like MiCADO's proxy.

Plain ``requests`` over real HTTPS: this tests the emulator, not the client library.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from micado.progress import wait_until
from micado.testing.submitter import DASHBOARD_NAMES, ENV_PASSWORD, SubmitterEmulator

from paths import ROOT

TIMEOUT = 10


class Web:
    """GETs on one emulator's host and port, with its certificate and (by default) its login."""

    def __init__(self, submitter: SubmitterEmulator) -> None:
        self.submitter = submitter
        self.origin = f"https://127.0.0.1:{submitter.port}"
        self.session = requests.Session()
        self.session.trust_env = False

    def call(self, method: str, path: str, auth: Any = "default") -> requests.Response:
        if auth == "default":
            auth = (self.submitter.user, self.submitter.password)
        return self.session.request(method, self.origin + path, auth=auth, verify=str(self.submitter.cert_path),
                                    timeout=TIMEOUT, allow_redirects=False)


@pytest.fixture
def web(submitter: SubmitterEmulator) -> Iterator[Web]:
    client = Web(submitter)
    yield client
    client.session.close()


def test_the_four_dashboards_are_there_by_default(web: Web, submitter: SubmitterEmulator) -> None:
    assert DASHBOARD_NAMES == ("dashboard", "grafana", "prometheus", "kubernetes")
    assert submitter.dashboards == set(DASHBOARD_NAMES)
    titles = {"dashboard": "MiCADO Dashboard", "grafana": "Grafana", "prometheus": "Prometheus",
              "kubernetes": "Kubernetes Dashboard"}
    for name in DASHBOARD_NAMES:
        for path in (f"/{name}", f"/{name}/", f"/{name}/some/page"):
            response = web.call("GET", path)
            assert response.status_code == 200, path
            assert response.headers["Content-Type"].startswith("text/html")
            assert f"<title>{titles[name]}</title>" in response.text
        assert web.call("HEAD", f"/{name}/").status_code == 200
        assert web.call("POST", f"/{name}/").status_code == 405


def test_a_path_that_only_starts_like_a_dashboard_is_not_one(web: Web) -> None:
    assert web.call("GET", "/grafanax").status_code == 404
    assert web.call("GET", "/").status_code == 404


def test_dashboards_are_behind_the_same_login(web: Web, submitter: SubmitterEmulator) -> None:
    for auth in (None, (submitter.user, "wrong")):
        response = web.call("GET", "/grafana/", auth=auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    submitter.login_page = True
    page = web.call("GET", "/grafana/")
    assert page.status_code == 200
    assert 'name="redirect_location"' in page.text  # the proxy's form, not Grafana's page
    submitter.login_page = False
    submitter.html_auth_pages = True
    assert "Authentication failed" in web.call("GET", "/prometheus/", auth=(submitter.user, "wrong")).text
    assert "<title>Prometheus</title>" in web.call("GET", "/prometheus/").text


def test_an_absent_dashboard_is_404_and_the_submitter_is_untouched() -> None:
    with SubmitterEmulator(password="p", dashboards=["grafana"]) as emulator:
        web = Web(emulator)
        assert web.call("GET", "/grafana/").status_code == 200
        for name in ("dashboard", "prometheus", "kubernetes"):
            assert web.call("GET", f"/{name}/").status_code == 404
        assert web.call("GET", "/kubernetes/", auth=None).status_code == 401  # the login comes first
        emulator.dashboards.discard("grafana")
        assert web.call("GET", "/grafana/").status_code == 404
        emulator.reset()
        assert emulator.dashboards == set()  # configuration: reset keeps it
        listing = web.call("GET", "/toscasubmitter/v2.0/applications/")
        assert listing.json() == {"applications": [], "message": "MiCADO Applications"}
    with pytest.raises(ValueError, match="unknown dashboard.*grafna"):
        SubmitterEmulator(password="p", dashboards=["grafna"])


def test_a_prefix_of_none_keeps_the_dashboards_apart_from_the_api() -> None:
    with SubmitterEmulator(password="p", prefix="") as emulator:
        web = Web(emulator)
        assert web.call("GET", "/v2.0/applications/").json()["applications"] == []
        assert web.call("GET", "/dashboard/").status_code == 200


def test_response_delay_slows_every_answer_without_blocking_others(web: Web, submitter: SubmitterEmulator) -> None:
    submitter.response_delay = 0.5
    for path, auth in (("/grafana/", "default"), ("/toscasubmitter/v2.0/applications/", None)):
        started = time.monotonic()
        web.call("GET", path, auth=auth)
        assert 0.5 <= time.monotonic() - started < 2
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(Web(submitter).call("GET", "/grafana/").status_code))
               for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert answers == [200] * 4
    assert time.monotonic() - started < 1.5  # concurrently, not one after another
    submitter.reset()
    assert submitter.response_delay == 0.0


def test_cli_dashboards_and_response_delay(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "micado.testing.submitter", "--port", "0", "--ready-file", str(ready_file),
         "--dashboards", "grafana, prometheus", "--response-delay", "0.3"],
        cwd=ROOT, env={**os.environ, ENV_PASSWORD: "from-env"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        ready = wait_until(lambda: json.loads(ready_file.read_text()) if ready_file.exists() else None,
                           what="the submitter emulator's ready file", timeout=20)
        origin = ready["endpoint"].split("/toscasubmitter/")[0]
        statuses = {}
        for name in DASHBOARD_NAMES:
            started = time.monotonic()
            response = requests.get(f"{origin}/{name}/", auth=(ready["user"], ready["password"]),
                                    verify=ready["cert"], timeout=TIMEOUT)
            assert time.monotonic() - started >= 0.3
            statuses[name] = response.status_code
        assert statuses == {"dashboard": 404, "grafana": 200, "prometheus": 200, "kubernetes": 404}
    finally:
        process.terminate()
        process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--dashboards", "grafana,nope"], b"--dashboards: unknown dashboard(s) nope"),
    (["--response-delay", "-1"], b"--response-delay must be 0 or more seconds"),
])
def test_cli_rejects_bad_dashboards_and_delays(args: list[str], message: bytes) -> None:
    result = subprocess.run([sys.executable, "-m", "micado.testing.submitter", *args], cwd=ROOT,
                            capture_output=True, timeout=TIMEOUT * 2)
    assert result.returncode == 2
    assert message in result.stderr
