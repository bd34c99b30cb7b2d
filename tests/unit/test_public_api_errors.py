"""Property: every failure that leaves ``client.applications`` is a :class:`MicadoException`.

Hypothesis draws hostile caller input (ids, params, ADT sources) and hostile answers
(garbage status lines, wrong framing, broken chunking and encodings, deep or odd JSON,
HTML), served by a raw loopback server (tests/support/loopback.py).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from micado import MicadoClient
from micado.exceptions import MicadoException

from loopback import raw_server

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)

documents = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "applications": json_values,
            "adaptors": json_values,
            "message": st.one_of(json_values, st.just("Application X1 successfully deployed")),
        },
    ).map(lambda document: json.dumps(document).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
    st.text(max_size=50).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"<html>Please login</html>", b"[" * 100_000, b'{"message": "' + b"x" * 20_000 + b'"}']),
)

status_lines = st.one_of(
    st.sampled_from([200, 204, 301, 400, 401, 404, 409, 422, 500, 503, 999]).map(
        lambda code: b"HTTP/1.1 %d Reason\r\n" % code
    ),
    st.binary(max_size=30),  # anything where the status line should be
)

header_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"Content-Type: application/json",
                b"Content-Type: text/html",
                b"Content-Encoding: gzip",
                b"Location: http://127.0.0.1/elsewhere",
                b"Content-Length: -5",
                b"Content-Length: abc",
                b"Connection: close",
            ]
        ),
        st.binary(max_size=20),  # a malformed header line
    ),
    max_size=3,
)


def frame(body: bytes, framing: str) -> bytes:
    if framing == "length":
        return b"Content-Length: %d\r\n\r\n" % len(body) + body
    if framing == "short length":
        return b"Content-Length: %d\r\n\r\n" % (len(body) // 2) + body
    if framing == "long length":
        return b"Content-Length: %d\r\n\r\n" % (len(body) + 10) + body
    if framing == "chunked":
        return b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    if framing == "bad chunked":
        return b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body
    return b"\r\n" + body  # ends when the server closes the connection


answers = st.builds(
    lambda status, headers, body, framing: status + b"".join(h + b"\r\n" for h in headers) + frame(body, framing),
    status_lines,
    header_lines,
    documents,
    st.sampled_from(["length", "short length", "long length", "chunked", "bad chunked", "close"]),
)

app_ids = st.one_of(
    st.text(max_size=12), st.sampled_from(["app", "a\ud800", ".", "..", "a/b", "X1"]), st.none(), st.integers()
)
params = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    st.sampled_from([{"nan": float("nan")}, {"day": datetime.date(2026, 1, 1)}, {1: {2}}, 5, "text"]),
)
sources = st.one_of(
    st.binary(max_size=300).map(lambda content: {"file": io.BytesIO(content)}),
    st.text(max_size=40).map(lambda text: {"adt": text}),
    st.dictionaries(st.text(max_size=5), json_values, max_size=3).map(lambda adt: {"adt": adt}),
    st.text(max_size=30).map(lambda url: {"url": url}),
    st.sampled_from([{}, {"adt": 5}, {"file": 3.5}, {"adt": "a: 1", "url": "http://127.0.0.1/"}]),
)


def call(apps: Any, operation: str, app_id: Any, source: dict[str, Any], values: Any, flag: Any) -> None:
    if operation == "list":
        for app in apps.list()[:1]:
            app.adaptors
    elif operation == "get":
        apps.get(app_id).adaptors
    elif operation == "create":
        apps.create(app_id=app_id, params=values, dryrun=flag, **source)
    elif operation == "update":
        apps.update(app_id, params=values, **source)
    else:
        apps.delete(app_id, force=flag)


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[MicadoClient, dict[str, bytes]]]:
    """A client and the answer its server gives next (the server closes each connection after it)."""
    current = {"answer": b""}

    def answer(conn, stop) -> None:
        conn.sendall(current["answer"])

    with raw_server("http", answer) as url, MicadoClient(endpoint=url, timeout=2, deploy_timeout=2) as client:
        yield client, current


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operation=st.sampled_from(["list", "get", "create", "update", "delete"]),
    app_id=app_ids,
    source=sources,
    values=params,
    flag=st.one_of(st.booleans(), st.just("yes")),
    answer=answers,
)
def test_every_failure_of_the_public_api_is_a_micado_exception(hostile, operation, app_id, source, values, flag, answer):
    client, current = hostile
    current["answer"] = answer
    with contextlib.suppress(MicadoException):
        call(client.applications, operation, app_id, source, values, flag)
