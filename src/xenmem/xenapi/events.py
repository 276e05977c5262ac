"""event.from, event.inject and the legacy register/next/unregister (protocol §6).

A token is xapi's `%020d,%020d`: the store generation, then a message generation that
xenmem has no use for (always 0). An object changed several times since the token is
reported once, with its latest state, as xapi does.

The store keeps only recent deletions (as xapi's deletion log): event.from silently
misses older ones, which clients notice through valid_ref_counts, while event.next
answers EVENTS_LOST when deletions it had yet to report were forgotten, as xapi's when its
queue overflowed. A session's registration ends with the session.

A blocked call is woken only by commits to the classes and objects it watches, or to its
session's record (deleted when the session ends), and then looks only at what changed
since it last looked. It returns at once, with what it has, when its client disconnects
(the HTTP front sets `CLIENT_GONE`) or when its session has `MAX_WAITERS_PER_SESSION`
newer blocked calls: then the oldest gives way. xapi caps neither.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from xenmem.db import Change, Interest, Store
from xenmem.errors import (
    EVENT_FROM_TOKEN_PARSE_FAILURE,
    EVENTS_LOST,
    HANDLE_INVALID,
    SESSION_INVALID,
    SESSION_NOT_REGISTERED,
)
from xenmem.toolstack import Context
from xenmem.xenapi.xmlrpc import Int32

__all__ = ["CLIENT_GONE", "MAX_WAITERS_PER_SESSION", "Events", "format_token", "parse_token"]

_TOKEN = re.compile(r"([0-9]+),([0-9]+)")
# event.next has no timeout argument; it re-checks its session this often.
_NEXT_RECHECK_SECONDS = 30.0
MAX_WAITERS_PER_SESSION = 32
_SESSION_CLASS = "session"

# Set by the HTTP front for the call it serves: waits until that call's client has gone.
CLIENT_GONE: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "client_gone", default=None
)


def format_token(generation: int) -> str:
    return f"{generation:020d},{0:020d}"


def parse_token(token: str) -> int | None:
    """The generation in a token; None for "" (report every object as `add`)."""
    if token == "":
        return None
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise EVENT_FROM_TOKEN_PARSE_FAILURE(token)
    return int(match.group(1))


@dataclass(frozen=True, kw_only=True)
class _Subscription:
    """What a client asked for: whole classes (lower-cased), single objects, or `*`."""

    everything: bool
    classes: frozenset[str]
    objects: frozenset[tuple[str, str]]

    @classmethod
    def parse(cls, names: Iterable[str]) -> _Subscription:
        lowered = [n.lower() if "/" not in n else n for n in names]
        objects = set()
        for name in lowered:
            if "/" in name:
                klass, _, ref = name.partition("/")
                objects.add((klass.lower(), ref))
        return cls(
            everything="*" in lowered,
            classes=frozenset(n for n in lowered if "/" not in n),
            objects=frozenset(objects),
        )

    def wants(self, klass: str, ref: str) -> bool:
        return self.everything or klass in self.classes or (klass, ref) in self.objects

    def wants_any(self, klass: str) -> bool:
        """Whether some object of `klass` (lower-cased) is wanted."""
        return self.everything or klass in self.classes or any(k == klass for k, _ in self.objects)


class _Waiter:
    """One call's waiting: registered with its session's blocked calls at its first wait,
    and `stopped` once it must return now (its client has gone, or it gave way)."""

    def __init__(self, events: Events, session: str, interest: Interest) -> None:
        self._events = events
        self._session = session
        self._interest = interest
        self._stop: asyncio.Future[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.done()

    async def wait(self, timeout: float) -> None:
        if self._stop is None:
            self._stop = asyncio.get_running_loop().create_future()
            self._events.block(self._session, self._stop)
            gone = CLIENT_GONE.get()
            if gone is not None:
                self._watch = asyncio.ensure_future(gone())
                self._watch.add_done_callback(lambda _: _stop(self._stop))
        await self._events.store.wait_for_change(timeout, self._interest, until=self._stop)

    def close(self) -> None:
        if self._stop is not None:
            self._events.unblock(self._session, self._stop)
        if self._watch is not None:
            self._watch.cancel()


def _stop(stop: asyncio.Future[None] | None) -> None:
    if stop is not None and not stop.done():
        stop.set_result(None)


class Events:
    def __init__(
        self, store: Store, classes: dict[str, str], session_valid: Callable[[str], bool]
    ) -> None:
        self._store = store
        self._classes = classes  # lower-cased → datamodel name, for every evented class
        self._session_valid = session_valid
        self._registrations: dict[str, tuple[_Subscription, int]] = {}
        # Each session's blocked calls, oldest first: a dict used as an ordered set.
        self._blocked: dict[str, dict[asyncio.Future[None], None]] = {}

    @property
    def store(self) -> Store:
        return self._store

    def block(self, session: str, stop: asyncio.Future[None]) -> None:
        """Count a blocked call of `session`; beyond the cap, the oldest gives way."""
        blocked = self._blocked.setdefault(session, {})
        blocked[stop] = None
        if len(blocked) > MAX_WAITERS_PER_SESSION:
            oldest = next(iter(blocked))
            del blocked[oldest]
            _stop(oldest)

    def unblock(self, session: str, stop: asyncio.Future[None]) -> None:
        blocked = self._blocked.get(session)
        if blocked is not None:
            blocked.pop(stop, None)
            if not blocked:
                del self._blocked[session]

    def blocked_calls(self, session: str) -> int:
        return len(self._blocked.get(session, ()))

    @contextmanager
    def _waiter(self, session: str, subscription: _Subscription) -> Iterator[_Waiter]:
        evented = self._classes
        objects = {(evented[k], ref) for k, ref in subscription.objects if k in evented}
        objects.add((_SESSION_CLASS, session))
        interest = Interest(
            everything=subscription.everything,
            classes=frozenset(evented[k] for k in subscription.classes if k in evented),
            objects=frozenset(objects),
        )
        waiter = _Waiter(self, session, interest)
        try:
            yield waiter
        finally:
            waiter.close()

    def _event(self, change: Change, *, legacy: bool) -> dict[str, object]:
        klass = change.cls.lower()
        event: dict[str, object] = {
            "id": change.generation if legacy else str(change.generation),
            # event.from sends "0.0"; event.next a stringified Unix time (§6.1, §6.3).
            "timestamp": f"{time.time():.6f}" if legacy else "0.0",
            "class": klass,
            "operation": change.operation,
            "ref": change.ref,
        }
        record = self._store.get(change.cls, change.ref)
        if legacy:
            event["obj_uuid"] = "" if record is None else record.get("uuid", "")
        if record is not None and change.operation != "del":
            event["snapshot"] = record
        return event

    def _changes(self, since: int | None, subscription: _Subscription) -> list[Change]:
        if since is None:
            changes = [
                Change(
                    cls=name,
                    ref=ref,
                    operation="add",
                    generation=self._store.generation_of(name, ref),
                )
                for name in self._classes.values()
                for ref in self._store.records(name)
            ]
        else:
            changes = [
                c for c in self._store.changes_since(since) if c.cls in self._classes.values()
            ]
        return [c for c in changes if subscription.wants(c.cls.lower(), c.ref)]

    def _check_session(self, ctx: Context) -> None:
        if not self._session_valid(ctx.session):
            raise SESSION_INVALID(ctx.session)

    async def event_from(
        self, ctx: Context, classes: list[str], token: str, timeout: float
    ) -> dict[str, object]:
        since = parse_token(token)
        subscription = _Subscription.parse(classes)
        deadline = asyncio.get_running_loop().time() + timeout
        with self._waiter(ctx.session, subscription) as waiter:
            while True:
                self._check_session(ctx)
                looked_at = self._store.generation
                changes = self._changes(since, subscription)
                remaining = deadline - asyncio.get_running_loop().time()
                if changes or remaining <= 0 or waiter.stopped:
                    break
                since = looked_at  # nothing of interest up to here: look only after it
                await waiter.wait(remaining)
        return {
            "events": [self._event(c, legacy=False) for c in changes],
            "valid_ref_counts": {
                low: Int32(self._store.count(name)) for low, name in self._classes.items()
            },
            "token": format_token(self._store.generation),
        }

    def inject(self, ctx: Context, klass: str, ref: str) -> str:
        name = self._classes.get(klass.lower())
        if name is None or self._store.get(name, ref) is None:
            raise HANDLE_INVALID(klass, ref)
        before = format_token(self._store.generation)
        with self._store.transaction() as tx:
            tx.touch(name, ref)
        return before

    def register(self, ctx: Context, classes: list[str]) -> None:
        known, _ = self._registrations.get(ctx.session, (None, self._store.generation))
        names = set(classes) | (set() if known is None else set(known.classes))
        self._registrations[ctx.session] = (_Subscription.parse(names), self._store.generation)

    def unregister(self, ctx: Context, classes: list[str]) -> None:
        if ctx.session not in self._registrations:
            return
        known, since = self._registrations[ctx.session]
        remaining = set(known.classes) - {c.lower() for c in classes}
        self._registrations[ctx.session] = (_Subscription.parse(remaining), since)

    def forget(self, session: str) -> None:
        """Drop an ended session's registration."""
        self._registrations.pop(session, None)

    def _lost(self, subscription: _Subscription, since: int) -> bool:
        return any(
            self._store.forgotten(name) > since
            for low, name in self._classes.items()
            if subscription.wants_any(low)
        )

    async def next(self, ctx: Context) -> list[dict[str, object]]:
        while True:
            self._check_session(ctx)
            if ctx.session not in self._registrations:
                raise SESSION_NOT_REGISTERED(ctx.session)
            subscription, since = self._registrations[ctx.session]
            if self._lost(subscription, since):
                # As xapi's: the client refetches; its next call starts from now.
                self._registrations[ctx.session] = (subscription, self._store.generation)
                raise EVENTS_LOST()
            looked_at = self._store.generation
            changes = self._changes(since, subscription)
            self._registrations[ctx.session] = (subscription, looked_at)
            if changes:
                return [self._event(c, legacy=True) for c in changes]
            # The registration may change while this waits: watch it afresh each time.
            with self._waiter(ctx.session, subscription) as waiter:
                await waiter.wait(_NEXT_RECHECK_SECONDS)
                if waiter.stopped:
                    return []

    def get_current_id(self, ctx: Context) -> int:
        return self._store.generation
