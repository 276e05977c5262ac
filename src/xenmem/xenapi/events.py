"""event.from, event.inject and the legacy register/next/unregister (protocol §6).

A token is xapi's `%020d,%020d`: the store generation, then a message generation that
xenmem has no use for (always 0). An object changed several times since the token is
reported once, with its latest state, as xapi does.

The store keeps only recent deletions (as xapi's deletion log): event.from silently
misses older ones, which clients notice through valid_ref_counts, while event.next
answers EVENTS_LOST when deletions it had yet to report were forgotten, as xapi's when its
queue overflowed. A session's registration ends with the session.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from xenmem.db import Change, Store
from xenmem.errors import (
    EVENT_FROM_TOKEN_PARSE_FAILURE,
    EVENTS_LOST,
    HANDLE_INVALID,
    SESSION_INVALID,
    SESSION_NOT_REGISTERED,
)
from xenmem.toolstack import Context
from xenmem.xenapi.xmlrpc import Int32

__all__ = ["Events", "format_token", "parse_token"]

_TOKEN = re.compile(r"([0-9]+),([0-9]+)")
# event.next has no timeout argument; it re-checks its session this often.
_NEXT_RECHECK_SECONDS = 30.0


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


class Events:
    def __init__(
        self, store: Store, classes: dict[str, str], session_valid: Callable[[str], bool]
    ) -> None:
        self._store = store
        self._classes = classes  # lower-cased → datamodel name, for every evented class
        self._session_valid = session_valid
        self._registrations: dict[str, tuple[_Subscription, int]] = {}

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
        while True:
            self._check_session(ctx)
            changes = self._changes(since, subscription)
            remaining = deadline - asyncio.get_running_loop().time()
            if changes or remaining <= 0:
                break
            await self._store.wait_for_change(remaining)
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
            changes = self._changes(since, subscription)
            if changes:
                self._registrations[ctx.session] = (subscription, self._store.generation)
                return [self._event(c, legacy=True) for c in changes]
            await self._store.wait_for_change(_NEXT_RECHECK_SECONDS)

    def get_current_id(self, ctx: Context) -> int:
        return self._store.generation
