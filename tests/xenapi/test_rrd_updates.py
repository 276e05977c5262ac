"""The /rrd_updates handler in process: a client's task, and the Accept negotiation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.in_process import open_in_process
from xenmem.xenapi.app import XenAPIServer
from xenmem.xenapi.rrd_updates import prefers_json


@pytest.fixture
def server(tmp_path: Path) -> Iterator[XenAPIServer]:
    opened = asyncio.run(open_in_process(tmp_path))
    opened.runtime.rrdd.sample()
    yield opened
    opened.conn.close()


def client_task(server: XenAPIServer) -> str:
    """A pending task as task.create makes one (no call of the server's runs it)."""
    with server.store.transaction() as tx:
        return tx.create("task", {"name_label": "Xapi#getResource /rrd_updates"})


def answer(server: XenAPIServer, query: str) -> int:
    async def ask() -> int:
        reply = await server.rrd_updates.answer(query.encode(), [])
        return reply.status

    return asyncio.run(ask())


def test_a_client_task_completes_with_the_request(server: XenAPIServer) -> None:
    session = asyncio.run(server.sessions.login("root", "pw", "1.0", "test"))
    done, refused = client_task(server), client_task(server)
    assert answer(server, f"start=0&host=true&session_id={session}&task_id={done}") == 200
    assert answer(server, f"start=0&task_id={refused}") == 401
    record = server.store.get("task", done)
    assert record is not None
    assert (record["status"], record["result"], record["progress"]) == ("success", "", 1.0)
    record = server.store.get("task", refused)
    assert record is not None
    assert (record["status"], record["error_info"]) == (
        "failure",
        ["SESSION_AUTHENTICATION_FAILED"],
    )
    # A finished task and an unknown ref are left as they are.
    assert answer(server, f"start=0&host=true&session_id={session}&task_id={refused}") == 200
    assert server.store.get("task", refused) == record
    assert answer(server, f"start=0&host=true&session_id={session}&task_id=OpaqueRef:x") == 200


@pytest.mark.parametrize(
    ("accept", "json_asked", "expected"),
    [
        (None, True, True),
        (None, False, False),
        ("*/*", False, True),  # both match; JSON comes first, as in xcp-rrdd
        ("text/*", True, False),
        ("application/json;q=0.5, text/xml;q=0.9", True, False),
        ("text/xml;q=0.2,application/json", False, True),
        ("text/html", True, True),  # names neither: the parameter decides
        ("text/html", False, False),
        ("garbage", True, True),  # unreadable: the parameter decides
        ("text/xml;q=high", False, False),
        ("text/xml;q=nan", True, True),
        ("application/json;q=inf", False, False),
    ],
)
def test_accept_negotiation(accept: str | None, json_asked: bool, expected: bool) -> None:
    assert prefers_json(accept, json_asked) is expected


def test_a_bug_answers_500_and_is_logged(
    server: XenAPIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.runtime.rrdd, "updates", broken)
    session = asyncio.run(server.sessions.login("root", "pw", "1.0", "test"))
    assert answer(server, f"start=0&host=true&session_id={session}") == 500
    assert "/rrd_updates failed" in caplog.text
