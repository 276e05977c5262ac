"""The deletion log is bounded as xapi's: event.from misses forgotten deletions silently
(valid_ref_counts tells), event.next answers EVENTS_LOST once, and a session's
registration ends with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.support import Loop, in_process
from xenmem.xenapi.app import XenAPIServer

ENOUGH_TO_FORGET = 520  # more than a class's deletion log keeps (511)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[XenAPIServer, Loop]]:
    with in_process(tmp_path / "state") as pair:
        yield pair


def churn(server: XenAPIServer, count: int) -> list[str]:
    """Create and delete `count` VMs, one commit each; their refs, oldest first."""
    refs = []
    for _ in range(count):
        with server.store.transaction() as tx:
            refs.append(tx.create("VM", {"name_label": "churn"}))
        with server.store.transaction() as tx:
            tx.delete("VM", refs[-1])
    return refs


def test_event_next_reports_lost_events_once(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    session = loop.login()
    assert loop.call("event.register", session, ["vm"]) == ""
    churn(server, ENOUGH_TO_FORGET)
    assert loop.call("event.next", session) == ["EVENTS_LOST"]
    vm = churn(server, 1)[0]
    events = loop.call("event.next", session)
    assert isinstance(events, list)
    assert [(e["ref"], e["operation"]) for e in events] == [(vm, "del")]


def test_event_next_of_other_classes_loses_nothing(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    session = loop.login()
    loop.call("event.register", session, ["host"])
    churn(server, ENOUGH_TO_FORGET)
    host = server.master
    loop.call("host.set_name_description", session, host, "after the churn")
    events = loop.call("event.next", session)
    assert isinstance(events, list)
    assert [(e["ref"], e["operation"]) for e in events] == [(host, "mod")]


def test_event_from_misses_forgotten_deletions_silently(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    session = loop.login()
    first = loop.call("event.from", session, ["vm"], "", 0.0)
    assert isinstance(first, dict)
    with server.store.transaction() as tx:
        old = [tx.create("VM", {"name_label": "old"}) for _ in range(ENOUGH_TO_FORGET)]
    token = loop.call("event.from", session, ["vm"], first["token"], 0.0)
    assert isinstance(token, dict)
    for vm in old:
        with server.store.transaction() as tx:
            tx.delete("VM", vm)
    batch = loop.call("event.from", session, ["vm"], token["token"], 0.0)
    assert isinstance(batch, dict)
    reported = [e["ref"] for e in batch["events"]]
    # The 511th deletion cut the log to 257; the 9 after it were added: the first 254
    # deletions are forgotten, and no error says so.
    assert reported == old[-266:]
    assert batch["valid_ref_counts"]["vm"] == server.store.count("VM")


def test_a_registration_ends_with_its_session(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    session = loop.login()
    loop.call("event.register", session, ["vm"])
    assert session in server.events._registrations
    loop.call("session.logout", session)
    assert session not in server.events._registrations
