"""Blocked event calls cost only what concerns them: a call whose client has gone is
dropped, a commit wakes only the calls watching what it changed and a woken call looks
only at what changed since it last looked, and a session's blocked calls are capped
(the oldest gives way)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.security.support import Loop, in_process
from tests.serving import PATIENCE_S, RunningServer
from xenmem.xenapi.app import XenAPIServer
from xenmem.xenapi.dispatch import Success
from xenmem.xenapi.events import MAX_WAITERS_PER_SESSION
from xenmem.xenapi.http import XenAPIApp


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[XenAPIServer, Loop]]:
    with in_process(tmp_path) as pair:
        yield pair


def _token(loop: Loop, session: str) -> str:
    batch = loop.call("event.from", session, ["pool"], "", 0.0)
    assert isinstance(batch, dict)
    return str(batch["token"])


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        await asyncio.sleep(0.01)


def _event_from_body(session: str, classes: list[str], token: str, timeout: float) -> bytes:
    return xmlrpc.client.dumps((session, classes, token, timeout), "event.from").encode()


def test_a_call_whose_client_disconnects_is_dropped(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    session = loop.login()
    body = _event_from_body(session, ["pool"], _token(loop, session), 3600.0)
    app = XenAPIApp(server.dispatcher)
    sent: list[MutableMapping[str, Any]] = []

    async def scenario() -> None:
        hung_up = asyncio.Event()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await hung_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [],
            "client": None,
        }
        call = asyncio.ensure_future(app(scope, receive, send))
        await _until(lambda: server.events.blocked_calls(session) == 1, "blocked")
        hung_up.set()
        await asyncio.wait_for(call, PATIENCE_S)
        assert server.events.blocked_calls(session) == 0

    loop.loop.run_until_complete(scenario())


def test_a_blocked_call_is_woken_only_by_what_it_watches_and_looks_from_its_last_look(
    served: tuple[XenAPIServer, Loop], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, loop = served
    session = loop.login()
    token = _token(loop, session)
    pools, vms = loop.call("pool.get_all", session), loop.call("VM.get_all", session)
    assert isinstance(pools, list) and isinstance(vms, list)
    pool, vm = pools[0], vms[0]
    for i in range(3):  # changes the call will not be interested in, before it starts
        loop.call("pool.set_name_description", session, pool, f"before {i}")
    blocked_at = server.store.generation
    looked_from: list[int] = []
    changes_since = server.store.changes_since

    def spy(generation: int) -> object:
        looked_from.append(generation)
        return changes_since(generation)

    monkeypatch.setattr(server.store, "changes_since", spy)

    async def scenario() -> dict[str, Any]:
        call = asyncio.ensure_future(
            server.dispatcher.call("event.from", [session, ["vm"], token, 60.0])
        )
        await _until(lambda: server.events.blocked_calls(session) == 1, "blocked")
        for i in range(20):
            await server.dispatcher.call(
                "pool.set_name_description", [session, pool, f"during {i}"]
            )
        await asyncio.sleep(0.05)
        assert len(looked_from) == 1  # not woken by 20 commits to the pool
        await server.dispatcher.call("VM.set_name_description", [session, vm, "watched"])
        reply = await asyncio.wait_for(call, PATIENCE_S)
        assert isinstance(reply, Success) and isinstance(reply.value, dict)
        return reply.value

    batch = loop.loop.run_until_complete(scenario())
    assert [(e["class"], e["ref"]) for e in batch["events"]] == [("vm", vm)]
    assert looked_from == [int(token.split(",")[0]), blocked_at]


def test_beyond_the_cap_the_oldest_blocked_call_of_a_session_gives_way(
    served: tuple[XenAPIServer, Loop],
) -> None:
    server, loop = served
    session, other = loop.login(), loop.login()
    token = _token(loop, session)

    async def scenario() -> None:
        def blocked(ref: str) -> asyncio.Future[Any]:
            return asyncio.ensure_future(
                server.dispatcher.call("event.from", [ref, ["pool"], token, 600.0])
            )

        oldest = blocked(session)
        await _until(lambda: server.events.blocked_calls(session) == 1, "blocked")
        others = [blocked(other) for _ in range(MAX_WAITERS_PER_SESSION)]
        newer = [blocked(session) for _ in range(MAX_WAITERS_PER_SESSION)]
        reply = await asyncio.wait_for(oldest, PATIENCE_S)
        assert reply.value["events"] == []  # returns what it has, as at its timeout
        assert int(reply.value["token"].split(",")[0]) == server.store.generation
        assert server.events.blocked_calls(session) == MAX_WAITERS_PER_SESSION
        assert server.events.blocked_calls(other) == MAX_WAITERS_PER_SESSION
        assert not any(c.done() for c in newer + others)
        pool = loop.server.store.records("pool")
        await server.dispatcher.call(
            "pool.set_name_description", [session, next(iter(pool)), "changed"]
        )
        for call in await asyncio.gather(*newer, *others):
            assert [e["class"] for e in call.value["events"]] == ["pool"]

    loop.loop.run_until_complete(scenario())


# -- over the wire ---------------------------------------------------------------------


def _waiting(
    server: RunningServer, session: str, token: str
) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """event.from(["pool"]) for 600 s on its own connection, in a thread."""
    result: list[dict[str, Any]] = []

    def run() -> None:
        proxy = xmlrpc.client.ServerProxy(server.url)
        result.append(getattr(proxy.event, "from")(session, ["pool"], token, 600.0))
        proxy("close")()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _change_the_pool(server: RunningServer, session: Any) -> None:
    pool = session.xenapi.pool.get_all()[0]
    session.xenapi.pool.set_name_description(pool, f"changed at {time.time()}")


def test_over_the_wire_the_oldest_call_gives_way(server: RunningServer) -> None:
    session = server.session()
    token = session.xenapi.event_from(["pool"], "", 0.0)["token"]
    oldest, oldest_result = _waiting(server, session.handle, token)
    time.sleep(0.5)
    newer = [_waiting(server, session.handle, token) for _ in range(MAX_WAITERS_PER_SESSION)]
    oldest.join(60)
    assert not oldest.is_alive()
    assert oldest_result[0]["Value"]["events"] == []
    _change_the_pool(server, session)
    for thread, result in newer:
        thread.join(60)
        assert [e["class"] for e in result[0]["Value"]["events"]] == ["pool"]


def test_over_the_wire_closed_calls_do_not_count(server: RunningServer) -> None:
    session = server.session()
    token = session.xenapi.event_from(["pool"], "", 0.0)["token"]
    oldest, oldest_result = _waiting(server, session.handle, token)
    url = urlsplit(server.url)
    body = _event_from_body(session.handle, ["pool"], token, 600.0)
    request = (
        f"POST / HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    # Four waves of half the cap each, a second apart for the server to read the hang-ups
    # (each takes it microseconds): kept, they would make the oldest give way.
    for _ in range(4):
        for _ in range(MAX_WAITERS_PER_SESSION // 2):
            with socket.create_connection((url.hostname, url.port)) as hung_up:
                hung_up.sendall(request)
        time.sleep(1.0)
    newer = [_waiting(server, session.handle, token) for _ in range(MAX_WAITERS_PER_SESSION - 1)]
    time.sleep(0.5)
    assert oldest.is_alive()  # nothing made it give way
    _change_the_pool(server, session)
    for thread, result in [(oldest, oldest_result), *newer]:
        thread.join(60)
        assert [e["class"] for e in result[0]["Value"]["events"]] == ["pool"]
