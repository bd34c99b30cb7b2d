"""Bounded in time and memory, every failure typed: hostile servers and hostile caller input.

The servers are raw loopback sockets (tests/support/loopback.py) that say exactly the bytes each
case needs: one byte at a time, endlessly, or far too much.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from micado import MicadoClient
from micado.exceptions import (
    InstallError,
    InvalidArgument,
    MicadoException,
    MicadoTimeout,
    ResponseTooLarge,
    ServerError,
)
from micado.installer.archive import download

from loopback import drip, raw_server, stream, timed
from paths import ADTS

ADT = ADTS / "stressng_nova.yaml"
TIMEOUT = 1.0  # the deadline given to the client in the timing tests
INTERVAL = 0.05  # between two dripped bytes: far shorter than any per-read timeout

LIST_BODY = b'{"applications": [], "message": "MiCADO Applications' + b" " * 300 + b'"}'


def head(status: str = "200 OK", length: int | None = None, extra: bytes = b"") -> bytes:
    framing = b"Transfer-Encoding: chunked\r\n" if length is None else b"Content-Length: %d\r\n" % length
    return b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: application/json\r\n" + framing + extra + b"\r\n"


def then(first: bytes, handler):
    """A handler that sends ``first`` at once, then runs ``handler``."""

    def handle(conn, stop) -> None:
        conn.sendall(first)
        handler(conn, stop)

    return handle


DRIPS = {
    # The status line never ends: a long reason phrase, one byte at a time.
    "status line": drip(b"HTTP/1.1 200 " + b"O" * 400 + b"\r\n", INTERVAL),
    # A valid status line, then a header that never ends.
    "headers": then(b"HTTP/1.1 200 OK\r\n", drip(b"X-Padding: " + b"p" * 400 + b"\r\n", INTERVAL)),
    # Status and headers at once, then the body one byte at a time.
    "body": then(head(length=len(LIST_BODY)), drip(LIST_BODY, INTERVAL)),
}


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("where", list(DRIPS))
def test_a_drip_fed_answer_times_out_at_the_deadline(where, tls):
    scheme = "https" if tls else "http"
    with raw_server(scheme, DRIPS[where], tls=tls) as url, MicadoClient(
        endpoint=url, verify=False, timeout=TIMEOUT
    ) as client:
        took, error = timed(client.applications.list)
    assert isinstance(error, MicadoTimeout), error
    assert error.timeout == TIMEOUT
    assert TIMEOUT * 0.9 <= took <= TIMEOUT + 1, took


def test_a_drip_fed_upload_answer_times_out_at_the_deploy_deadline():
    with raw_server("http", DRIPS["headers"]) as url, MicadoClient(endpoint=url, deploy_timeout=TIMEOUT) as client:
        took, error = timed(lambda: client.applications.create(app_id="slow", file=ADT))
    assert isinstance(error, MicadoTimeout) and "may still complete" in str(error), error
    assert took <= TIMEOUT + 1, took


def test_a_session_given_by_the_caller_keeps_to_the_deadline_too():
    import requests

    from micado.api.client import SubmitterClient

    with raw_server("http", DRIPS["body"]) as url:
        api = SubmitterClient(url, timeout=TIMEOUT, session=requests.Session())
        took, error = timed(api.list_applications)
    assert isinstance(error, MicadoTimeout) and took <= TIMEOUT + 1, (took, error)


def test_requests_leave_one_watchdog_thread_at_most(submitter):
    with MicadoClient(
        endpoint=submitter.endpoint, verify=submitter.cert_path, auth=(submitter.user, submitter.password)
    ) as client:
        for _ in range(30):
            assert client.applications.list() == []
    watchdogs = [thread for thread in threading.enumerate() if thread.name == "micado-deadlines"]
    assert len(watchdogs) <= 1


def endless_chunks() -> Iterator[bytes]:
    chunk = b" " * 65536
    while True:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk)


MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys

    # Guard for the code before the cap: fail with MemoryError instead of taking the machine.
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + (768 << 20), size + (768 << 20)))

    from micado import MicadoClient
    from micado.exceptions import MicadoException

    client = MicadoClient(endpoint=sys.argv[1], timeout=60)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        client.applications.list()
        error = None
    except MicadoException as exc:
        error = type(exc).__name__
    except MemoryError:
        error = "MemoryError"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"error": error, "growth_mib": (peak - base) / 1024}))
    """
)


def test_an_endless_answer_is_refused_with_memory_bounded():
    with raw_server("http", then(head(length=None), stream(endless_chunks()))) as url:
        probe = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, url], capture_output=True, text=True, timeout=120
        )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result["error"] == "ResponseTooLarge", result
    assert result["growth_mib"] <= 100, result


def zeros(total: int) -> Iterator[bytes]:
    block = b"0" * (1 << 20)
    for _ in range(total // len(block)):
        yield block


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "close-delimited"])
def test_a_300_mb_answer_is_refused_quickly_with_a_short_message(declared):
    size = 300 * 1000 * 1000
    first = head(length=size) if declared else b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    with raw_server("http", then(first, stream(zeros(size)))) as url, MicadoClient(endpoint=url) as client:
        took, error = timed(client.applications.list)
    assert isinstance(error, ResponseTooLarge), error
    assert error.limit == 16 * 1024 * 1024
    assert error.status_code == 200
    assert took < 5, took
    assert len(str(error)) < 500


def test_max_answer_is_a_constructor_argument():
    from micado.api.client import SubmitterClient

    with raw_server("http", head(length=len(LIST_BODY)) + LIST_BODY) as url:
        assert SubmitterClient(url).list_applications() == []
        with pytest.raises(ResponseTooLarge, match="over the limit of 100 bytes"):
            SubmitterClient(url, max_answer=100).list_applications()
    with pytest.raises(InvalidArgument, match="max_answer"):
        SubmitterClient("http://127.0.0.1/toscasubmitter/", max_answer=0)


def error_answer(message_size: int) -> Iterator[bytes]:
    prefix, suffix = b'{"message": "500 Internal Server Error: ', b'"}'
    yield head("500 INTERNAL SERVER ERROR", length=len(prefix) + message_size + len(suffix))
    yield prefix
    yield from zeros(message_size)
    yield suffix


def test_a_long_error_message_is_cut_in_the_exception():
    with raw_server("http", stream(error_answer(2 << 20))) as url, MicadoClient(endpoint=url) as client:
        with pytest.raises(ServerError) as caught:
            client.applications.list()
    text = str(caught.value)
    assert text.startswith("500: 500 Internal Server Error: 000")
    assert "more characters cut" in text
    assert len(text) < 4500
    assert len(caught.value.explanation) < 4100


def test_a_50_mb_error_message_is_refused_with_a_short_exception():
    with raw_server("http", stream(error_answer(50 << 20))) as url, MicadoClient(endpoint=url) as client:
        took, error = timed(client.applications.list)
    assert isinstance(error, ResponseTooLarge) and error.status_code == 500, error
    assert len(str(error)) < 500
    assert took < 5


def test_a_non_json_answer_shows_a_short_snippet():
    body = b"<html>" + b"x" * 100_000
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with raw_server("http", answer) as url, MicadoClient(endpoint=url, timeout=5) as client:
        with pytest.raises(MicadoException, match="expected a JSON object") as caught:
            client.applications.list()
    assert len(str(caught.value)) < 500


# -- the playbook download ------------------------------------------------------------------


def test_a_drip_fed_download_times_out_at_the_deadline(tmp_path):
    body = b"\x1f\x8b" + b"\0" * 400
    handler = then(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), drip(body, INTERVAL))
    with raw_server("http", handler, path="/micado.tar.gz") as url:
        took, error = timed(lambda: download(url, tmp_path / "micado.tar.gz", timeout=TIMEOUT))
    assert isinstance(error, MicadoTimeout), error
    assert TIMEOUT * 0.9 <= took <= TIMEOUT + 1, took
    assert list(tmp_path.iterdir()) == []  # no half-written file


def test_a_download_with_a_dripped_status_line_times_out(tmp_path):
    with raw_server("http", DRIPS["status line"], path="/micado.tar.gz") as url:
        took, error = timed(lambda: download(url, tmp_path / "micado.tar.gz", timeout=TIMEOUT))
    assert isinstance(error, MicadoTimeout), error
    assert took <= TIMEOUT + 1, took


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_download_is_refused(tmp_path, declared):
    size = 300 * 1000 * 1000
    if declared:
        handler = then(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size, stream(zeros(size)))
    else:
        handler = then(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", stream(endless_chunks()))
    with raw_server("http", handler, path="/micado.tar.gz") as url:
        took, error = timed(lambda: download(url, tmp_path / "micado.tar.gz", max_size=1 << 20))
    assert isinstance(error, InstallError) and "over the limit" in str(error), error
    assert took < 5
    assert list(tmp_path.iterdir()) == []


# -- caller input ---------------------------------------------------------------------------


@pytest.fixture
def offline_client() -> Iterator[MicadoClient]:
    """A client whose endpoint no request reaches: every case here must fail before sending."""
    with raw_server("http", None) as url, MicadoClient(endpoint=url, timeout=TIMEOUT) as client:
        yield client


@pytest.mark.parametrize(
    "call",
    [
        lambda apps: apps.get("a\ud800"),
        lambda apps: apps.delete("\udcff"),
        lambda apps: apps.create(app_id="ok", adt="tosca: \ud800"),
        lambda apps: apps.create(app_id="ok", adt={"key": "\ud800"}),
        lambda apps: apps.create(app_id="ok", file=ADT, params={"\ud800": 1}),
        lambda apps: apps.create(app_id="ok", adt={"a": 1}, params={"x": ["\udfff"]}),
        lambda apps: apps.update("ok", url="http://127.0.0.1/\ud800.yaml"),
    ],
    ids=["get id", "delete id", "yaml text", "adt mapping", "params key", "params value", "url"],
)
def test_text_that_is_not_valid_unicode_is_an_invalid_argument(offline_client, call):
    with pytest.raises(InvalidArgument, match="unpaired surrogate"):
        call(offline_client.applications)


def test_an_endpoint_that_is_not_valid_unicode_is_an_invalid_argument():
    with pytest.raises(InvalidArgument, match="endpoint cannot be sent"):
        MicadoClient(endpoint="http://127.0.0.1/\udcff/toscasubmitter/")


def test_a_directory_as_file_says_it_is_a_directory(offline_client, tmp_path):
    with pytest.raises(InvalidArgument, match="is a directory"):
        offline_client.applications.create(app_id="ok", file=tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_file_is_refused_by_size(offline_client):
    took, error = timed(lambda: offline_client.applications.create(app_id="ok", file="/dev/zero"))
    assert isinstance(error, InvalidArgument) and "64 MiB" in str(error), error
    assert took < 5
    with open("/dev/zero", "rb") as endless, pytest.raises(InvalidArgument, match="64 MiB"):
        offline_client.applications.update("ok", file=endless)


def test_a_large_file_is_refused_before_it_is_read(offline_client, tmp_path):
    sparse = tmp_path / "huge.yaml"
    with sparse.open("wb") as out:
        out.truncate(1 << 40)  # a terabyte, sparse: reading it whole would never end
    took, error = timed(lambda: offline_client.applications.create(app_id="ok", file=sparse))
    assert isinstance(error, InvalidArgument) and "over the limit" in str(error), error
    assert took < 1
