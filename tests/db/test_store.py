"""The object store: atomic transactions, relations, indexes, change log, persistence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xenmem.db import NULL_REF, Interest, Relation, Schema, Store, Sum
from xenmem.db.sqlite import connect

SCHEMAS = [
    Schema(name="host", defaults={"uuid": "", "name_label": "", "resident_VMs": []}),
    Schema(
        name="VM",
        defaults={
            "uuid": "",
            "name_label": "",
            "resident_on": NULL_REF,
            "scheduled": NULL_REF,
            "when": datetime(1970, 1, 1, tzinfo=UTC),
            "other_config": {},
        },
    ),
    Schema(name="session", defaults={"uuid": ""}, persist=False, events=False),
]
RELATIONS = [
    Relation(one_class="host", set_field="resident_VMs", many_class="VM", ref_field="resident_on")
]


SUMS = [
    Sum(
        name="labels",
        cls="VM",
        group_by="resident_on",
        value=lambda record: len(str(record["name_label"])),
    )
]


def make_store(state: Path | None = None) -> Store:
    conn = None if state is None else connect(state)
    return Store(SCHEMAS, relations=RELATIONS, indexes=[("VM", "scheduled")], sums=SUMS, conn=conn)


def field(store: Store, cls: str, ref: str, name: str) -> object:
    record = store.get(cls, ref)
    assert record is not None, (cls, ref)
    return record[name]


def test_create_fills_defaults_uuid_and_ref() -> None:
    store = make_store()
    with store.transaction() as tx:
        vm = tx.create("VM", {"name_label": "a"})
    record = store.get("VM", vm)
    assert record is not None
    assert vm.startswith("OpaqueRef:")
    assert record["name_label"] == "a"
    assert record["other_config"] == {}
    assert store.ref_of_uuid("VM", str(record["uuid"])) == vm


def test_unknown_fields_are_refused() -> None:
    store = make_store()
    with pytest.raises(KeyError), store.transaction() as tx:
        tx.create("VM", {"colour": "red"})
    assert store.count("VM") == 0


def test_a_transaction_that_raises_changes_nothing() -> None:
    store = make_store()
    with store.transaction() as tx:
        vm = tx.create("VM", {"name_label": "a"})
    generation = store.generation
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.update("VM", vm, {"name_label": "b"})
        tx.create("VM", {})
        assert tx.get("VM", vm) == {**dict(store.get("VM", vm) or {}), "name_label": "b"}
        raise RuntimeError
    assert field(store, "VM", vm, "name_label") == "a"
    assert store.count("VM") == 1
    assert store.generation == generation


def test_relation_maintains_the_set_field_and_index() -> None:
    store = make_store()
    with store.transaction() as tx:
        h1, h2 = tx.create("host", {}), tx.create("host", {})
        vm = tx.create("VM", {"resident_on": h1, "scheduled": h2})
    assert field(store, "host", h1, "resident_VMs") == [vm]
    assert store.refs_where("VM", "resident_on", h1) == {vm}
    assert store.refs_where("VM", "scheduled", h2) == {vm}
    with store.transaction() as tx:
        tx.update("VM", vm, {"resident_on": h2, "scheduled": NULL_REF})
    assert field(store, "host", h1, "resident_VMs") == []
    assert field(store, "host", h2, "resident_VMs") == [vm]
    assert store.refs_where("VM", "scheduled", h2) == frozenset()
    with store.transaction() as tx:
        tx.delete("VM", vm)
    assert field(store, "host", h2, "resident_VMs") == []


def test_changes_since_are_coalesced_per_object() -> None:
    store = make_store()
    with store.transaction() as tx:
        host = tx.create("host", {})
    start = store.generation
    with store.transaction() as tx:
        vm = tx.create("VM", {"name_label": "new"})
    after_create = store.generation
    with store.transaction() as tx:
        tx.update("VM", vm, {"name_label": "newer"})
        tx.update("host", host, {"name_label": "h"})
    with store.transaction() as tx:
        tx.create("session", {})
    changes = store.changes_since(start)
    assert [(c.cls, c.ref, c.operation) for c in changes] == [
        ("VM", vm, "add"),
        ("host", host, "mod"),
    ]
    assert [(c.ref, c.operation) for c in store.changes_since(after_create)] == [
        (vm, "mod"),
        (host, "mod"),
    ]
    assert [c.ref for c in store.changes_since(changes[0].generation)] == [host]
    with store.transaction() as tx:
        tx.delete("VM", vm)
    assert [(c.ref, c.operation) for c in store.changes_since(store.generation - 1)] == [
        (vm, "del")
    ]
    assert store.changes_since(store.generation) == []


def test_persistence_round_trip(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    when = datetime(2025, 3, 19, 4, 16, 24, tzinfo=UTC)
    with store.transaction() as tx:
        host = tx.create("host", {"name_label": "h"})
        vm = tx.create("VM", {"resident_on": host, "when": when, "other_config": {"k": "v"}})
        gone = tx.create("VM", {})
        tx.create("session", {})
    with store.transaction() as tx:
        tx.delete("VM", gone)
    reopened = make_store(tmp_path)
    assert reopened.generation == store.generation
    assert dict(reopened.records("VM")) == {vm: store.get("VM", vm)}
    assert field(reopened, "VM", vm, "when") == when
    assert field(reopened, "host", host, "resident_VMs") == [vm]
    assert reopened.count("session") == 0  # not persisted
    assert reopened.refs_where("VM", "resident_on", host) == {vm}
    assert reopened.generation_of("VM", vm) == store.generation_of("VM", vm)


def test_wait_for_change_wakes_on_commit_and_times_out() -> None:
    store = make_store()

    async def scenario() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        waiter = asyncio.ensure_future(store.wait_for_change(10.0))
        await asyncio.sleep(0)
        with store.transaction() as tx:
            tx.create("host", {})
        await asyncio.wait_for(waiter, 1.0)
        started = loop.time()
        await store.wait_for_change(0.05)
        return waiter.done(), loop.time() - started >= 0.04

    assert asyncio.run(scenario()) == (True, True)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_a_commit_wakes_only_the_waiters_interested_in_what_it_changed() -> None:
    store = make_store()
    with store.transaction() as tx:
        host = tx.create("host", {})
        vm = tx.create("VM", {})

    async def scenario() -> None:
        def waiting(interest: Interest) -> asyncio.Future[None]:
            return asyncio.ensure_future(store.wait_for_change(60.0, interest))

        on_hosts = waiting(Interest(classes=frozenset({"host"})))
        on_vm = waiting(Interest(objects=frozenset({("VM", vm)})))
        on_session = waiting(Interest(objects=frozenset({("session", "s")})))
        on_anything = waiting(Interest(everything=True))
        await settle()
        with store.transaction() as tx:
            tx.create("VM", {})  # another VM: only the waiter on anything cares
        await settle()
        assert on_anything.done()
        assert not (on_hosts.done() or on_vm.done() or on_session.done())
        with store.transaction() as tx:
            tx.update("VM", vm, {"resident_on": host})  # changes host.resident_VMs too
        await settle()
        assert on_hosts.done() and on_vm.done() and not on_session.done()
        with store.transaction() as tx:
            tx.create("session", {}, ref="s")  # a class without events still wakes
        await asyncio.wait_for(on_session, 5.0)

    asyncio.run(scenario())


def test_a_waiter_returns_when_told_to() -> None:
    store = make_store()

    async def scenario() -> None:
        stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = asyncio.ensure_future(store.wait_for_change(60.0, until=stop))
        await settle()
        assert not waiter.done()
        stop.set_result(None)
        await asyncio.wait_for(waiter, 5.0)

    asyncio.run(scenario())


def test_sums_follow_every_change_and_survive_a_restart(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with store.transaction() as tx:
        h1, h2 = tx.create("host", {}), tx.create("host", {})
        a = tx.create("VM", {"name_label": "aaa", "resident_on": h1})
        b = tx.create("VM", {"name_label": "bb", "resident_on": h1})
    assert store.total("labels", h1) == 5
    assert store.total("labels", h2) == 0
    with store.transaction() as tx:
        tx.update("VM", a, {"name_label": "a"})
        tx.update("VM", b, {"resident_on": h2})
    assert (store.total("labels", h1), store.total("labels", h2)) == (1, 2)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.delete("VM", a)
        raise RuntimeError
    assert store.total("labels", h1) == 1
    with store.transaction() as tx:
        tx.delete("VM", a)
    assert store.total("labels", h1) == 0
    assert make_store(tmp_path).total("labels", h2) == 2


def test_writing_the_same_values_is_no_change_but_touch_is() -> None:
    store = make_store()
    with store.transaction() as tx:
        vm = tx.create("VM", {"name_label": "a"})
    generation = store.generation
    with store.transaction() as tx:
        tx.update("VM", vm, {"name_label": "a"})
    assert store.generation == generation
    with store.transaction() as tx:
        tx.touch("VM", vm)
    assert store.generation == generation + 1
    assert [c.operation for c in store.changes_since(generation)] == ["mod"]


def test_a_ref_may_be_given_once() -> None:
    store = make_store()
    with store.transaction() as tx:
        tx.create("VM", {}, ref="OpaqueRef:mine")
    assert store.get("VM", "OpaqueRef:mine") is not None
    with pytest.raises(KeyError, match="exists already"), store.transaction() as tx:
        tx.create("VM", {}, ref="OpaqueRef:mine")


def _deleted_since(store: Store, generation: int, cls: str) -> list[str]:
    return [c.ref for c in store.changes_since(generation) if c.operation == "del" and c.cls == cls]


@pytest.mark.parametrize(
    ("deletions", "reported"),
    [
        (510, 510),  # the log (with its placeholder) grows to 511 entries
        (511, 257),  # the next deletion cuts it to the newest 256 plus itself
        (765, 511),  # and it grows again to 511
        (766, 257),
    ],
)
def test_each_class_keeps_its_recent_deletions_as_xapi(deletions: int, reported: int) -> None:
    store = make_store()
    with store.transaction() as tx:
        vms = [tx.create("VM", {}) for _ in range(deletions)]
        host = tx.create("host", {})
    start = store.generation
    with store.transaction() as tx:
        tx.delete("host", host)
    for vm in vms:
        with store.transaction() as tx:
            tx.delete("VM", vm)
    assert _deleted_since(store, start, "VM") == vms[-reported:]
    # Another class's log is its own.
    assert _deleted_since(store, start, "host") == [host]
    forgotten = deletions - reported
    assert store.forgotten("VM") == (start + 1 + forgotten if forgotten else 0)
    assert store.forgotten("host") == 0
