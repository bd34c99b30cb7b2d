"""``micado.master.status`` against real loopback servers: the submitter emulator (HTTPS, its
dashboards, its login), servers that say nothing, SSH-like servers, and closed ports."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from micado.config.record import MasterRecord
from micado.master.status import GRACE, MasterStatus, check_master, check_masters
from micado.testing.submitter import SubmitterEmulator

from loopback import drip, raw_server

PASSWORD = "pass-Wörd:with=odd&chars"
TIMEOUT = 1.0
DASHBOARD_CHECKS = ["dashboard:dashboard", "dashboard:grafana", "dashboard:prometheus", "dashboard:kubernetes"]
ALL_CHECKS = ["tls", "submitter", *DASHBOARD_CHECKS, "ssh"]


@contextmanager
def ssh_like(banner: bytes | None, interval: float = 0.0) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that writes ``banner`` to each connection (None: nothing), one byte
    every ``interval`` seconds if given, then holds it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    held: list[socket.socket] = []

    def say(conn: socket.socket, data: bytes) -> None:
        with suppress(OSError):
            if not interval:
                conn.sendall(data)
            for index in range(len(data) if interval else 0):
                if stop.wait(interval):
                    return
                conn.sendall(data[index:index + 1])

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            if banner is not None:
                threading.Thread(target=say, args=(conn, banner), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def record_for(emulator: SubmitterEmulator, *, ssh_port: int, password: str | None = None,
               cert_path: str | Path | None = "own") -> MasterRecord:
    """The record a create would have made for a master served by ``emulator``."""
    return MasterRecord(
        id="master-1", ip="127.0.0.1", endpoint=emulator.endpoint, api_version="v2.0",
        cert_path=str(emulator.cert_path if cert_path == "own" else cert_path) if cert_path else None,
        micado_user=emulator.user, micado_password=password or emulator.password,
        extra={"ssh_user": "ubuntu", "ssh_port": ssh_port, "api_port": emulator.port},
    )


def details(status: MasterStatus) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.ok, check.detail) for check in status.checks}


def assert_no_password(status: MasterStatus, password: str = PASSWORD) -> None:
    for text in (repr(status), json.dumps(status.as_dict(), ensure_ascii=False), str(status.as_dict())):
        assert password not in text


@pytest.fixture
def master() -> Iterator[SubmitterEmulator]:
    with SubmitterEmulator(password=PASSWORD) as emulator:
        emulator.add_application("app-1")
        emulator.add_application("app-2")
        yield emulator


@pytest.fixture
def sshd() -> Iterator[int]:
    with ssh_like(b"SSH-2.0-x\r\n") as port:
        yield port


def test_a_healthy_master_passes_every_check(master: SubmitterEmulator, sshd: int) -> None:
    status = check_master(record_for(master, ssh_port=sshd), timeout=TIMEOUT)
    assert [check.name for check in status.checks] == ALL_CHECKS
    assert status.ok, status.as_dict()
    found = details(status)
    assert found["tls"] == (True, "TLSv1.3, the recorded certificate")
    assert found["submitter"] == (True, "2 applications")
    assert {found[name] for name in DASHBOARD_CHECKS} == {(True, "200 OK")}
    assert found["ssh"] == (True, "SSH-2.0-x")
    assert all(0 <= check.seconds < TIMEOUT for check in status.checks)
    assert ("GET", "/grafana/") in master.requests
    assert_no_password(status)


def test_a_wrong_password_fails_the_api_and_the_dashboards(master: SubmitterEmulator, sshd: int) -> None:
    wrong = "Wrong-" + PASSWORD
    status = check_master(record_for(master, ssh_port=sshd, password=wrong), timeout=TIMEOUT)
    found = details(status)
    assert found["submitter"] == (False, "login refused (401) for user 'admin'")
    for name in DASHBOARD_CHECKS:
        assert found[name] == (False, "401 UNAUTHORIZED: login refused")
    assert found["tls"][0] and found["ssh"][0]
    assert not status.ok
    assert_no_password(status, wrong)


def test_the_proxys_login_page_is_not_a_dashboard(master: SubmitterEmulator, sshd: int) -> None:
    master.login_page = True
    found = details(check_master(record_for(master, ssh_port=sshd), timeout=TIMEOUT))
    assert found["submitter"][0] is False and "login page" in found["submitter"][1]
    for name in DASHBOARD_CHECKS:
        assert found[name] == (False, "200 OK, but it is the MiCADO proxy's login page: the login was not accepted")


def test_an_absent_dashboard_fails_with_404(master: SubmitterEmulator, sshd: int) -> None:
    master.dashboards.discard("grafana")
    found = details(check_master(record_for(master, ssh_port=sshd), timeout=TIMEOUT))
    assert found["dashboard:grafana"] == (False, "404 NOT FOUND: the master does not serve this dashboard")
    assert all(found[name][0] for name in ALL_CHECKS if name != "dashboard:grafana")


def test_another_certificate_fails_tls(master: SubmitterEmulator, sshd: int) -> None:
    with SubmitterEmulator(password="other") as other:
        status = check_master(record_for(master, ssh_port=sshd, cert_path=other.cert_path), timeout=TIMEOUT)
        found = details(status)
        assert found["tls"] == (False, f"certificate differs from the recorded one ({other.cert_path})")
        # The other checks verify against the recorded certificate too, and refuse the master's.
        assert found["submitter"][0] is False and "certificate not trusted" in found["submitter"][1]
        assert all(not found[name][0] and "certificate not trusted" in found[name][1] for name in DASHBOARD_CHECKS)
        assert found["ssh"][0]


def test_a_missing_certificate_file_is_said_once_per_check(master: SubmitterEmulator, sshd: int,
                                                           tmp_path: Path) -> None:
    gone = tmp_path / "gone.pem"
    found = details(check_master(record_for(master, ssh_port=sshd, cert_path=gone), timeout=TIMEOUT))
    for name in ALL_CHECKS[:-1]:
        assert found[name] == (False, f"the recorded certificate {gone} is missing")
    assert found["ssh"][0]


def test_without_a_recorded_certificate_the_system_store_decides(master: SubmitterEmulator, sshd: int) -> None:
    found = details(check_master(record_for(master, ssh_port=sshd, cert_path=None), timeout=TIMEOUT))
    assert found["tls"][0] is False
    assert found["tls"][1].startswith("certificate not trusted: ")  # self-signed: unknown to the system
    assert "certificate not trusted" in found["submitter"][1]


def test_nothing_listening_fails_every_check_at_once() -> None:
    port, ssh_port = closed_port(), closed_port()
    record = MasterRecord("down", "127.0.0.1", f"https://127.0.0.1:{port}/toscasubmitter/", "v2.0", None, "admin",
                          PASSWORD, extra={"ssh_port": ssh_port})
    started = time.monotonic()
    status = check_master(record, timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT
    assert details(status) == {name: (False, "connection refused") for name in ALL_CHECKS}
    assert_no_password(status)


def test_a_master_that_says_nothing_costs_one_deadline_not_the_sum() -> None:
    with raw_server("https", None) as url, ssh_like(None) as ssh_port:
        record = MasterRecord("silent", "127.0.0.1", url, "v2.0", None, "admin", PASSWORD,
                              extra={"ssh_port": ssh_port})
        started = time.monotonic()
        status = check_master(record, timeout=TIMEOUT)
        elapsed = time.monotonic() - started
    assert TIMEOUT <= elapsed < TIMEOUT + GRACE + 0.5
    assert details(status) == {name: (False, f"timed out after {TIMEOUT:g} s") for name in ALL_CHECKS}


def test_ssh_banners() -> None:
    with ssh_like(b"Welcome\r\nto the master\r\nSSH-2.0-OpenSSH_9.6 Ubuntu\r\n") as chatty, \
            ssh_like(b"HTTP/1.1 400 Bad Request\r\n") as wrong, ssh_like(None) as mute:
        results = {}
        for label, port in (("chatty", chatty), ("wrong", wrong), ("mute", mute)):
            record = MasterRecord("m", "127.0.0.1", "nowhere", "v2.0", None, "admin", PASSWORD,
                                  extra={"ssh_port": port})
            started = time.monotonic()
            results[label] = details(check_master(record, timeout=TIMEOUT))["ssh"], time.monotonic() - started
    assert results["chatty"][0] == (True, "SSH-2.0-OpenSSH_9.6 Ubuntu")
    assert results["wrong"][0][0] is False  # a line, but not a banner: waits for one until the deadline
    assert results["wrong"][0][1] == f"timed out after {TIMEOUT:g} s"
    assert results["mute"][0] == (False, f"timed out after {TIMEOUT:g} s")
    assert TIMEOUT <= results["mute"][1] < TIMEOUT + GRACE


def test_servers_that_drip_bytes_are_cut_off_at_the_deadline() -> None:
    # A byte every 50 ms: no read ever waits long enough to time out; only a total deadline ends it.
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + b"X-Pad: " + b"x" * 200 + b"\r\n\r\n"
    with raw_server("http", drip(answer, 0.05)) as url, ssh_like(b"SSH-2.0-" + b"x" * 200 + b"\r\n", 0.05) as port:
        record = MasterRecord("drip", "127.0.0.1", url, "v2.0", None, "admin", PASSWORD, extra={"ssh_port": port})
        started = time.monotonic()
        found = details(check_master(record, timeout=TIMEOUT))
        elapsed = time.monotonic() - started
    for name in (*DASHBOARD_CHECKS, "submitter", "ssh"):
        assert found[name] == (False, f"timed out after {TIMEOUT:g} s"), name
    assert TIMEOUT <= elapsed < TIMEOUT + GRACE


def test_a_hostile_server_cannot_show_the_password() -> None:
    import base64

    header = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    answer = (f"HTTP/1.1 302 {header}\r\nLocation: https://x/{PASSWORD}\r\nContent-Length: 0\r\n\r\n").encode()
    with raw_server("http", answer, path="/toscasubmitter/") as url:
        record = MasterRecord("hostile", "127.0.0.1", url, "v2.0", None, "admin", PASSWORD,
                              extra={"ssh_port": closed_port()})
        status = check_master(record, timeout=TIMEOUT)
    found = details(status)
    assert found["tls"] == (False, f"the endpoint {url} is plain http: no TLS")
    assert found["dashboard:grafana"] == (True, "302 *** to https://x/***")
    assert_no_password(status)
    assert header not in repr(status)


def test_many_masters_at_once_in_the_order_given(master: SubmitterEmulator, sshd: int) -> None:
    healthy = record_for(master, ssh_port=sshd)
    down = MasterRecord("down", "127.0.0.1", f"https://127.0.0.1:{closed_port()}/toscasubmitter/", "v2.0", None,
                        "admin", PASSWORD, extra={"ssh_port": closed_port()})
    with SubmitterEmulator(password="slow-one") as slow_emulator:
        slow_emulator.response_delay = 0.6
        slow = record_for(slow_emulator, ssh_port=sshd)
        slow.id = "slow"
        started = time.monotonic()
        statuses = check_masters([down, healthy, slow, down], timeout=TIMEOUT + 1, workers=2)
        elapsed = time.monotonic() - started
    assert [status.master_id for status in statuses] == ["down", "master-1", "slow", "down"]
    assert [status.ok for status in statuses] == [False, True, True, False]
    assert 0.6 <= elapsed < 1.6  # the slow one, not the sum
