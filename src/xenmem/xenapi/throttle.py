"""Failed logins slow down the next ones, per user name and per source address.

A failed login is answered only after a delay that doubles with each recent failure of that
user name or from that address (`base`, 2 × `base`, ... up to `cap`); a success resets the
user's and the address's count, and a count is forgotten `forget_after` seconds after its
last failure. Logins from an address with failures are also spaced out by that delay, so
that guesses sent in parallel are not checked in parallel. Waiting is `asyncio.sleep`: other
clients are served meanwhile. A name with no failures and an address with none are never
delayed, so many clients logging in at once from one address are not slowed down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_LOGIN_DELAY", "LoginThrottle"]

DEFAULT_LOGIN_DELAY = 0.5  # seconds after the first failure; doubles with each further one
_CAP = 8.0
_FORGET_AFTER = 900.0
_PRUNE_ABOVE = 4096  # entries kept before forgotten ones are swept


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    next_slot: float = 0.0  # an address's next check may not start before this


class LoginThrottle:
    def __init__(
        self,
        *,
        base: float = DEFAULT_LOGIN_DELAY,
        cap: float = _CAP,
        forget_after: float = _FORGET_AFTER,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._base = base
        self._cap = cap
        self._forget_after = forget_after
        self._clock = clock
        self._sleep = sleep
        self._users: dict[str, _Failures] = {}
        self._sources: dict[str, _Failures] = {}

    def delay(self, failures: int) -> float:
        """Seconds a failed login waits after `failures` recent failures (0 for none)."""
        if failures <= 0 or self._base <= 0:
            return 0.0
        return min(self._cap, self._base * 2.0 ** min(failures - 1, 32))

    def failures(self, user: str, source: str | None) -> int:
        now = self._clock()
        counts = [self._current(self._users, user, now).count]
        if source is not None:
            counts.append(self._current(self._sources, source, now).count)
        return max(counts)

    async def attempt(
        self, user: str, source: str | None, check: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Run the password `check` when its turn comes; a failure answers late."""
        now = self._clock()
        self._prune(now)
        if source is not None:
            address = self._current(self._sources, source, now)
            if address.count:
                start = max(now, address.next_slot)
                address.next_slot = start + self.delay(address.count)
                if start > now:
                    await self._sleep(start - now)
        if await check():
            self._users.pop(user, None)
            if source is not None:
                self._sources.pop(source, None)
            return True
        now = self._clock()
        counts = [self._fail(self._users, user, now)]
        if source is not None:
            counts.append(self._fail(self._sources, source, now))
        wait = self.delay(max(counts))
        if source is not None:
            address = self._sources[source]
            address.next_slot = max(address.next_slot, now + wait)
        if wait > 0:
            await self._sleep(wait)
        return False

    def _current(self, table: dict[str, _Failures], key: str, now: float) -> _Failures:
        entry = table.get(key)
        if entry is None or now - entry.last > self._forget_after:
            entry = table[key] = _Failures()
        return entry

    def _fail(self, table: dict[str, _Failures], key: str, now: float) -> int:
        entry = self._current(table, key, now)
        entry.count += 1
        entry.last = now
        return entry.count

    def _prune(self, now: float) -> None:
        for table in (self._users, self._sources):
            if len(table) > _PRUNE_ABOVE:
                for key in [k for k, e in table.items() if now - e.last > self._forget_after]:
                    del table[key]
