"""The object store: every XenAPI object, in memory, written through to SQLite.

All reads are plain dictionary look-ups; all writes go through a `Transaction`, which is
synchronous: between `store.transaction()` and the end of its `with` block nothing else
runs on the event loop, so a check followed by a write (admission: free memory, then
scheduled_to_be_resident_on) is atomic. A transaction that raises changes nothing.

Each committed change of an object gets the next generation number (xapi's database
generation), which event.from tokens count in. The store keeps, per object, the generation
it was created at and last changed at, plus a tombstone for each recent deletion, so "what
changed since generation g" costs the number of changes, not the number of objects.
Tombstones are kept per class as xapi keeps its deletion log (see `_Deletions`). A caller
waiting for changes says which classes and objects it is interested in (`Interest`); a
commit wakes only the waiters interested in what it changed, so its cost does not grow
with the number of waiters watching something else.

The store knows nothing of the XenAPI: the datamodel hands it one `Schema` per class
(the complete default record, whether it persists, whether it has events) and the
`Relation`s whose set fields it maintains (host.resident_VMs from VM.resident_on).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid as uuidlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from xenmem.db.sqlite import StoredObject, get_setting, load_objects, write_objects

__all__ = [
    "ANYTHING",
    "NULL_REF",
    "Change",
    "Interest",
    "Record",
    "Relation",
    "Schema",
    "Store",
    "Sum",
    "Transaction",
    "new_ref",
]

NULL_REF = "OpaqueRef:NULL"

_K = TypeVar("_K")

Record = Mapping[str, object]


def new_ref() -> str:
    """A fresh reference: `OpaqueRef:` + a lower-case UUID, as xapi's (protocol §2.3)."""
    return f"OpaqueRef:{uuidlib.uuid4()}"


@dataclass(frozen=True, kw_only=True)
class Schema:
    """What the store must know about one class."""

    name: str
    defaults: Mapping[str, object]
    persist: bool = True
    events: bool = True


@dataclass(frozen=True, kw_only=True)
class Relation:
    """`one_class.set_field` lists every `many_class` object whose `ref_field` points to it."""

    one_class: str
    set_field: str
    many_class: str
    ref_field: str


@dataclass(frozen=True, kw_only=True)
class Sum:
    """A running total of `value(record)` over the `cls` objects, grouped by `group_by`.

    Kept up to date at every commit, so a total over thousands of objects costs one look-up
    (free memory of a host: the cost of its resident VMs, §4.2).
    """

    name: str
    cls: str
    group_by: str
    value: Callable[[Record], int]


@dataclass(frozen=True, kw_only=True)
class Change:
    """The latest change of one object after some generation (coalesced, as xapi's events)."""

    cls: str
    ref: str
    operation: str  # "add" | "mod" | "del"
    generation: int


@dataclass(frozen=True, kw_only=True)
class Interest:
    """What a waiter wants to be woken for: any change, or those of these classes (by
    schema name) and these objects."""

    everything: bool = False
    classes: frozenset[str] = frozenset()
    objects: frozenset[tuple[str, str]] = frozenset()


ANYTHING = Interest(everything=True)


@dataclass(kw_only=True)
class _Entry:
    created: int
    generation: int
    deleted: bool = False


# xapi's bounds of a table's deletion log (db_cache_types.ml, Table.remove).
_DELETIONS_LIMIT = 512
_DELETIONS_KEPT = 256


class _Deletions:
    """One class's recent deletions (ref, generation), bounded as xapi's deletion log.

    The log starts with a placeholder entry and grows to 511 entries; the deletion that
    would make it 512 cuts it to the newest 256 plus itself. Deletions cut off are
    forgotten: event.from no longer reports them (clients notice through
    valid_ref_counts), and event.next answers EVENTS_LOST to a client that had not yet
    seen them.
    """

    def __init__(self) -> None:
        self._entries: deque[tuple[str, int] | None] = deque([None])
        self.forgotten = 0  # the generation of the newest deletion cut off

    def add(self, ref: str, generation: int) -> list[tuple[str, int]]:
        """Log a deletion; return the deletions cut off to make room."""
        cut: list[tuple[str, int]] = []
        if len(self._entries) + 1 >= _DELETIONS_LIMIT:
            while len(self._entries) > _DELETIONS_KEPT:
                entry = self._entries.popleft()
                if entry is not None:
                    cut.append(entry)
                    self.forgotten = max(self.forgotten, entry[1])
        self._entries.append((ref, generation))
        return cut


@dataclass(kw_only=True)
class _Staged:
    """One transaction's pending writes: the new record, or None for a deletion."""

    records: dict[tuple[str, str], Record | None] = field(default_factory=dict)


class Transaction:
    """Reads that see their own writes, and writes applied together at commit."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._staged = _Staged()

    def get(self, cls: str, ref: str) -> Record | None:
        key = (cls, ref)
        if key in self._staged.records:
            return self._staged.records[key]
        return self._store.get(cls, ref)

    def create(self, cls: str, fields: Mapping[str, object], ref: str | None = None) -> str:
        """Add an object: the class defaults overlaid with `fields` (a fresh uuid if none).

        `ref` names it, for records keyed by the object they describe; else a fresh ref.
        """
        schema = self._store.schema(cls)
        unknown = set(fields) - set(schema.defaults)
        if unknown:
            raise KeyError(f"{cls} has no field {sorted(unknown)[0]}")
        record = {**schema.defaults, **fields}
        if "uuid" in record and not record["uuid"]:
            record["uuid"] = str(uuidlib.uuid4())
        ref = ref or new_ref()
        if self.get(cls, ref) is not None:
            raise KeyError(f"{cls} {ref} exists already")
        self._staged.records[(cls, ref)] = record
        return ref

    def update(self, cls: str, ref: str, changes: Mapping[str, object]) -> Record:
        """Change some fields; writing the values a record already has is no change
        (no new generation, no event)."""
        current = self.get(cls, ref)
        if current is None:
            raise KeyError(f"no {cls} {ref}")
        unknown = set(changes) - set(current)
        if unknown:
            raise KeyError(f"{cls} has no field {sorted(unknown)[0]}")
        if all(current[name] == value for name, value in changes.items()):
            return current
        record = {**current, **changes}
        self._staged.records[(cls, ref)] = record
        return record

    def touch(self, cls: str, ref: str) -> None:
        """Mark an object changed without changing it (event.inject)."""
        current = self.get(cls, ref)
        if current is None:
            raise KeyError(f"no {cls} {ref}")
        self._staged.records[(cls, ref)] = dict(current)

    def delete(self, cls: str, ref: str) -> None:
        if self.get(cls, ref) is None:
            raise KeyError(f"no {cls} {ref}")
        self._staged.records[(cls, ref)] = None

    @property
    def staged(self) -> Mapping[tuple[str, str], Record | None]:
        return self._staged.records


class Store:
    """Tables of records keyed by class then ref, with indexes and an event log."""

    def __init__(
        self,
        schemas: Iterable[Schema],
        *,
        relations: Iterable[Relation] = (),
        indexes: Iterable[tuple[str, str]] = (),
        sums: Iterable[Sum] = (),
        conn: sqlite3.Connection | None = None,
    ) -> None:
        self._schemas = {s.name: s for s in schemas}
        self._relations = tuple(relations)
        self._conn = conn
        self._tables: dict[str, dict[str, Record]] = {name: {} for name in self._schemas}
        self._uuids: dict[str, dict[str, str]] = {name: {} for name in self._schemas}
        index_keys = set(indexes) | {(r.many_class, r.ref_field) for r in self._relations}
        self._indexes: dict[tuple[str, str], dict[object, set[str]]] = {k: {} for k in index_keys}
        self._sums = {s.name: s for s in sums}
        self._totals: dict[str, dict[object, int]] = {name: {} for name in self._sums}
        self._log: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._deletions = {name: _Deletions() for name in self._schemas}
        self._generation = 0
        # Waiters by what they are interested in: every change, a class, an object.
        self._waiting_any: set[asyncio.Future[None]] = set()
        self._waiting_class: dict[str, set[asyncio.Future[None]]] = {}
        self._waiting_object: dict[tuple[str, str], set[asyncio.Future[None]]] = {}
        if conn is not None:
            self._load(conn)

    # -- loading -------------------------------------------------------------------------

    def _load(self, conn: sqlite3.Connection) -> None:
        objects = sorted(load_objects(conn), key=lambda o: o.generation)
        for obj in objects:
            if obj.cls not in self._schemas:
                continue
            # Fields added to the datamodel since the row was written start at their default.
            record = {**self._schemas[obj.cls].defaults, **obj.record}
            self._put(obj.cls, obj.ref, record)
            self._log[(obj.cls, obj.ref)] = _Entry(created=obj.created, generation=obj.generation)
        stored = get_setting(conn, "generation")
        self._generation = int(stored) if stored is not None else 0

    # -- reads ---------------------------------------------------------------------------

    def schema(self, cls: str) -> Schema:
        return self._schemas[cls]

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, cls: str, ref: str) -> Record | None:
        return self._tables[cls].get(ref)

    def records(self, cls: str) -> Mapping[str, Record]:
        return MappingProxyType(self._tables[cls])

    def count(self, cls: str) -> int:
        return len(self._tables[cls])

    def ref_of_uuid(self, cls: str, uuid: str) -> str | None:
        return self._uuids[cls].get(uuid)

    def refs_where(self, cls: str, field_name: str, value: object) -> frozenset[str]:
        """Refs of `cls` objects whose indexed field equals `value`."""
        return frozenset(self._indexes[(cls, field_name)].get(value, ()))

    def total(self, name: str, group: object) -> int:
        """The running `Sum` called `name` for one group (0 when the group is empty)."""
        return self._totals[name].get(group, 0)

    def changes_since(self, generation: int) -> list[Change]:
        """The latest change of every object changed after `generation`, oldest first."""
        changes: list[Change] = []
        for (cls, ref), entry in reversed(self._log.items()):
            if entry.generation <= generation:
                break
            if entry.deleted:
                operation = "del"
            elif entry.created > generation:
                operation = "add"
            else:
                operation = "mod"
            changes.append(
                Change(cls=cls, ref=ref, operation=operation, generation=entry.generation)
            )
        changes.reverse()
        return changes

    def forgotten(self, cls: str) -> int:
        """The generation of the newest deletion of a `cls` object no longer reported
        (0 if none): a client that has not seen changes up to it has lost events."""
        return self._deletions[cls].forgotten

    def generation_of(self, cls: str, ref: str) -> int:
        entry = self._log.get((cls, ref))
        return 0 if entry is None else entry.generation

    # -- writes --------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Stage writes; commit them all when the block ends, none if it raises."""
        tx = Transaction(self)
        yield tx
        self._commit(tx.staged)

    def _with_relations(
        self, staged: Mapping[tuple[str, str], Record | None]
    ) -> dict[tuple[str, str], Record | None]:
        """The staged writes plus the set-field updates their ref fields imply."""
        result = dict(staged)
        for rel in self._relations:
            for (cls, ref), new in staged.items():
                if cls != rel.many_class:
                    continue
                old = self.get(cls, ref)
                before = None if old is None else old[rel.ref_field]
                after = None if new is None else new[rel.ref_field]
                if before == after:
                    continue
                self._relink(result, rel, before, ref, add=False)
                self._relink(result, rel, after, ref, add=True)
        return result

    def _relink(
        self,
        result: dict[tuple[str, str], Record | None],
        rel: Relation,
        owner: object,
        member: str,
        *,
        add: bool,
    ) -> None:
        if not isinstance(owner, str):
            return
        key = (rel.one_class, owner)
        record = result[key] if key in result else self.get(*key)
        if record is None:
            return
        members = [m for m in _as_list(record[rel.set_field]) if m != member]
        if add:
            members.append(member)
        result[key] = {**record, rel.set_field: members}

    def _commit(self, staged: Mapping[tuple[str, str], Record | None]) -> None:
        if not staged:
            return
        writes = self._with_relations(staged)
        first = self._generation + 1
        entries: dict[tuple[str, str], _Entry] = {}
        for offset, (key, record) in enumerate(writes.items()):
            old = self._log.get(key)
            created = first + offset if old is None or old.deleted else old.created
            entries[key] = _Entry(
                created=created, generation=first + offset, deleted=record is None
            )
        last = first + len(writes) - 1
        if self._conn is not None:
            self._persist(writes, entries, last)
        for key, record in writes.items():
            self._apply(key, record, entries[key])
        self._generation = last
        self._wake(writes)

    def _persist(
        self,
        writes: Mapping[tuple[str, str], Record | None],
        entries: Mapping[tuple[str, str], _Entry],
        generation: int,
    ) -> None:
        assert self._conn is not None
        upserts = [
            StoredObject(
                cls=cls,
                ref=ref,
                created=entries[(cls, ref)].created,
                generation=entries[(cls, ref)].generation,
                record=dict(record),
            )
            for (cls, ref), record in writes.items()
            if record is not None and self._schemas[cls].persist
        ]
        deletes = [
            key
            for key, record in writes.items()
            if record is None and self._schemas[key[0]].persist
        ]
        write_objects(self._conn, upserts, deletes, generation)

    def _apply(self, key: tuple[str, str], record: Record | None, entry: _Entry) -> None:
        cls, ref = key
        self._remove(cls, ref)
        if record is not None:
            self._put(cls, ref, record)
        if self._schemas[cls].events:
            self._log.pop(key, None)
            self._log[key] = entry
            if entry.deleted:
                for gone, generation in self._deletions[cls].add(ref, entry.generation):
                    tombstone = self._log.get((cls, gone))
                    if tombstone is not None and tombstone.generation == generation:
                        del self._log[(cls, gone)]

    def _put(self, cls: str, ref: str, record: Record) -> None:
        self._tables[cls][ref] = record
        uuid = record.get("uuid")
        if isinstance(uuid, str):
            self._uuids[cls][uuid] = ref
        for (icls, ifield), index in self._indexes.items():
            if icls == cls:
                index.setdefault(record[ifield], set()).add(ref)
        self._add_to_sums(cls, record, 1)

    def _add_to_sums(self, cls: str, record: Record, sign: int) -> None:
        for name, total in self._sums.items():
            if total.cls == cls:
                group = record[total.group_by]
                totals = self._totals[name]
                totals[group] = totals.get(group, 0) + sign * total.value(record)

    def _remove(self, cls: str, ref: str) -> None:
        old = self._tables[cls].pop(ref, None)
        if old is None:
            return
        uuid = old.get("uuid")
        if isinstance(uuid, str):
            self._uuids[cls].pop(uuid, None)
        self._add_to_sums(cls, old, -1)
        for (icls, ifield), index in self._indexes.items():
            if icls == cls:
                refs = index.get(old[ifield])
                if refs is not None:
                    refs.discard(ref)
                    if not refs:
                        del index[old[ifield]]

    # -- waiting for changes -------------------------------------------------------------

    def _wake(self, changed: Iterable[tuple[str, str]]) -> None:
        woken = set(self._waiting_any)
        for key in changed:
            woken.update(self._waiting_class.get(key[0], ()))
            woken.update(self._waiting_object.get(key, ()))
        for waiter in woken:
            if not waiter.done():
                waiter.set_result(None)

    def _register(self, waiter: asyncio.Future[None], interest: Interest, *, add: bool) -> None:
        if interest.everything:
            (self._waiting_any.add if add else self._waiting_any.discard)(waiter)
        for cls in interest.classes:
            _file(self._waiting_class, cls, waiter, add=add)
        for key in interest.objects:
            _file(self._waiting_object, key, waiter, add=add)

    async def wait_for_change(
        self,
        timeout: float,
        interest: Interest = ANYTHING,
        *,
        until: asyncio.Future[None] | None = None,
    ) -> None:
        """Return at the next commit that changes something of `interest`, when `timeout`
        seconds have passed, or when `until` is done, whichever comes first."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._register(waiter, interest, add=True)
        try:
            await asyncio.wait(
                [waiter] if until is None else [waiter, until],
                timeout=max(0.0, timeout),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self._register(waiter, interest, add=False)
            waiter.cancel()


def _file(
    table: dict[_K, set[asyncio.Future[None]]],
    key: _K,
    waiter: asyncio.Future[None],
    *,
    add: bool,
) -> None:
    """Add `waiter` under `key`, or remove it (and the key with its last waiter)."""
    if add:
        table.setdefault(key, set()).add(waiter)
    elif (waiters := table.get(key)) is not None:
        waiters.discard(waiter)
        if not waiters:
            del table[key]


def _as_list(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
