"""Body size and nesting depth are bounded: HTTP 413 and 400 with a clear message; just
inside the bounds, calls are read as usual. A body is bounded more tightly until it names
a live session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest

from tests.security.support import Loop, in_process
from tests.serving import PATIENCE_S
from xenmem.xenapi.http import DEFAULT_MAX_BODY_BYTES, MAX_ANONYMOUS_BODY_BYTES, XenAPIApp
from xenmem.xenapi.xmlrpc import MAX_NESTING


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[XenAPIApp, Loop]]:
    with in_process(tmp_path_factory.mktemp("state")) as (server, loop):
        yield XenAPIApp(server.dispatcher, rrd_updates=server.rrd_updates), loop


def post(app: tuple[XenAPIApp, Loop], path: str, body: bytes) -> tuple[int, bytes]:
    asgi, loop = app
    sent: list[MutableMapping[str, Any]] = []
    chunks = [body[i : i + 2**20] for i in range(0, len(body), 2**20)] or [b""]
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [], "client": ("::1", 1)}
    loop.loop.run_until_complete(asyncio.wait_for(asgi(scope, receive, send), PATIENCE_S))
    return int(sent[0]["status"]), bytes(sent[1]["body"])


def xml_nested(depth: int, container: str = "array", session: str = "s") -> bytes:
    if container == "array":
        opening, closing = "<value><array><data>", "</data></array></value>"
    else:
        opening, closing = "<value><struct><member><name>k</name>", "</member></struct></value>"
    value = opening * depth + "<value>x</value>" + closing * depth
    return (
        "<methodCall><methodName>pool.get_all</methodName><params>"
        f"<param><value>{session}</value></param><param>{value}</param></params></methodCall>"
    ).encode()


def json_nested(depth: int, opening: str = "[") -> bytes:
    closing = {"[": "]", '{"k":': "}"}[opening]
    return (
        '{"id": 1, "method": "pool.get_all", "params": ["s", '
        + opening * depth
        + "1"
        + closing * depth
        + "]}"
    ).encode()


@pytest.mark.parametrize("container", ["array", "struct"])
def test_xml_nesting_is_bounded(app: tuple[XenAPIApp, Loop], container: str) -> None:
    status, body = post(app, "/", xml_nested(MAX_NESTING, container))
    assert status == 200
    assert b"MESSAGE_PARAMETER_COUNT_MISMATCH" in body  # read, then answered as usual
    for depth in (MAX_NESTING + 1, 1000):
        status, body = post(app, "/", xml_nested(depth, container))
        assert status == 400
        assert f"nested more than {MAX_NESTING} levels deep".encode() in body


def test_deep_junk_elements_are_refused_early(app: tuple[XenAPIApp, Loop]) -> None:
    status, body = post(app, "/RPC2", b"<methodCall>" + b"<a>" * 20_000)
    assert status == 400
    assert b"nested more than" in body


@pytest.mark.parametrize("opening", ["[", '{"k":'])
def test_json_nesting_is_bounded(app: tuple[XenAPIApp, Loop], opening: str) -> None:
    status, body = post(app, "/jsonrpc", json_nested(MAX_NESTING, opening))
    assert status == 200
    assert json.loads(body)["error"][0] == "MESSAGE_PARAMETER_COUNT_MISMATCH"
    for depth in (MAX_NESTING + 1, 5000):
        status, body = post(app, "/jsonrpc", json_nested(depth, opening))
        assert status == 400
        assert f"nested more than {MAX_NESTING} levels deep".encode() in body
    status, _ = post(app, "/jsonrpc", b"[" * 60_000)  # unterminated, too
    assert status == 400


def test_body_size_is_bounded(app: tuple[XenAPIApp, Loop]) -> None:
    call = xml_nested(1, session=app[1].login())
    padding = b" " * (DEFAULT_MAX_BODY_BYTES - len(call))
    status, _ = post(app, "/", call + padding)
    assert status == 200
    status, body = post(app, "/", call + padding + b" ")
    assert status == 413
    assert b"Request too large" in body


def test_without_a_live_session_a_body_is_bounded_more_tightly(
    app: tuple[XenAPIApp, Loop],
) -> None:
    loop = app[1]
    ended = loop.login()
    loop.call("session.logout", ended)
    for session in ("s", "OpaqueRef:dead0000-0000-4000-8000-000000000000", ended):
        call = xml_nested(1, session=session)
        status, body = post(app, "/", call + b" " * (MAX_ANONYMOUS_BODY_BYTES - len(call)))
        assert status == 200
        assert b"MESSAGE_PARAMETER_COUNT_MISMATCH" in body  # read, then answered as usual
        status, body = post(app, "/", call + b" " * (MAX_ANONYMOUS_BODY_BYTES + 1 - len(call)))
        assert status == 413
        assert b"Request too large" in body
    live = xml_nested(1, session=loop.login())
    status, _ = post(app, "/", live + b" " * (4 * MAX_ANONYMOUS_BODY_BYTES))
    assert status == 200


def test_nesting_over_http(server: object) -> None:
    from tests.server.test_hostile import Raw  # noqa: PLC0415
    from tests.serving import RunningServer  # noqa: PLC0415

    assert isinstance(server, RunningServer)
    raw = Raw(server)
    try:
        status, content_type, body = raw.post("/", xml_nested(MAX_NESTING + 1))
        assert (status, content_type) == (400, "text/html")
        status, _, body = raw.post("/jsonrpc", json_nested(10_000), "application/json")
        assert status == 400
        assert b"nested more than 64 levels deep" in body
        status, _, _ = raw.post(
            "/", b"<methodCall><methodName>system.listMethods</methodName></methodCall>"
        )
        assert status == 200
    finally:
        raw.close()
