"""Failed logins slow down the next guesses at that user name, and nothing else.

Logins to one user name are checked one at a time. After a failure the name's next check
waits a delay that doubles with each recent failure of the name (`base`, 2 × `base`, ...
up to `cap`), and the failed login is answered when that delay ends; a success resets the
count, and a count is forgotten `forget_after` seconds after its last failure. So guesses
at a name sent in parallel, from any number of addresses, are checked one delay apart.

The source address plays no part in the count: failures of other names, or from the
address a login comes from (xe and the dashboard share 127.0.0.1, a proxy shares its own),
never delay it. A name's waiting logins take turns by address, so a burst of guesses from
one address holds a login from another back by one turn (after the check in progress),
not by the whole burst. Waiting
is `asyncio.sleep` or a future: other clients are served meanwhile.

The table of names is bounded (the least recently tried names are forgotten first) and so
is a name's length: a longer one is refused at once, checked against nothing and not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["DEFAULT_LOGIN_DELAY", "MAX_USER_NAME_LENGTH", "LoginThrottle"]

DEFAULT_LOGIN_DELAY = 0.5  # seconds after the first failure; doubles with each further one
MAX_USER_NAME_LENGTH = 255  # characters, as Linux's LOGIN_NAME_MAX
_CAP = 8.0
_FORGET_AFTER = 900.0
_MAX_NAMES = 10_000


@dataclass
class _Name:
    failures: int = 0
    last_failure: float = 0.0
    busy: bool = False  # a check of this name runs, or its failure's delay
    # The logins waiting for their turn, by source address, in turn order.
    waiting: OrderedDict[str | None, deque[asyncio.Future[None]]] = field(
        default_factory=OrderedDict
    )

    @property
    def idle(self) -> bool:
        return not self.busy and not self.waiting


class LoginThrottle:
    def __init__(
        self,
        *,
        base: float = DEFAULT_LOGIN_DELAY,
        cap: float = _CAP,
        forget_after: float = _FORGET_AFTER,
        max_names: int = _MAX_NAMES,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._base = base
        self._cap = cap
        self._forget_after = forget_after
        self._max_names = max_names
        self._clock = clock
        self._sleep = sleep
        self._names: OrderedDict[str, _Name] = OrderedDict()  # least recently tried first

    @property
    def tracked_names(self) -> int:
        return len(self._names)

    def delay(self, failures: int) -> float:
        """Seconds a failed login waits after `failures` recent failures (0 for none)."""
        if failures <= 0 or self._base <= 0:
            return 0.0
        return min(self._cap, self._base * 2.0 ** min(failures - 1, 32))

    def failures(self, user: str) -> int:
        """The name's recent failures."""
        name = self._names.get(user)
        return 0 if name is None else self._recent(name)

    async def attempt(
        self, user: str, source: str | None, check: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Run the password `check` when the name's turn comes; a failure answers late."""
        if len(user) > MAX_USER_NAME_LENGTH:
            return False
        name = self._entry(user)
        await self._turn(name, source)
        try:
            if await check():
                name.failures = 0
                return True
            name.failures = self._recent(name) + 1
            name.last_failure = self._clock()
            wait = self.delay(name.failures)
            if wait > 0:
                await self._sleep(wait)
            return False
        finally:
            self._pass_turn(user, name, source)

    def _recent(self, name: _Name) -> int:
        if self._clock() - name.last_failure > self._forget_after:
            return 0
        return name.failures

    def _entry(self, user: str) -> _Name:
        name = self._names.get(user)
        if name is None:
            name = self._names[user] = _Name()
            self._evict()
        else:
            self._names.move_to_end(user)
        return name

    def _evict(self) -> None:
        """Forget the least recently tried idle names beyond the bound (a busy name is in
        use: it stays, and is looked at again last)."""
        for _ in range(len(self._names)):
            if len(self._names) <= self._max_names:
                return
            oldest, name = next(iter(self._names.items()))
            if name.idle:
                del self._names[oldest]
            else:
                self._names.move_to_end(oldest)

    async def _turn(self, name: _Name, source: str | None) -> None:
        if name.idle:
            name.busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        name.waiting.setdefault(source, deque()).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._hand_on(name, source)  # the turn came with the cancellation: pass it on
            else:
                queue = name.waiting.get(source)
                if queue is not None and turn in queue:
                    queue.remove(turn)
                    if not queue:
                        del name.waiting[source]
            raise

    def _hand_on(self, name: _Name, finished: str | None) -> None:
        """Give the turn to the first waiting login of the next address after the one whose
        login `finished`, or free the name."""
        if finished in name.waiting:
            name.waiting.move_to_end(finished)
        while name.waiting:
            source, queue = next(iter(name.waiting.items()))
            turn = queue.popleft()
            del name.waiting[source]
            if queue:
                name.waiting[source] = queue  # that address's next login: after every other's
            if not turn.cancelled():  # a cancelled login has not left the queue yet
                turn.set_result(None)
                return
        name.busy = False

    def _pass_turn(self, user: str, name: _Name, source: str | None) -> None:
        self._hand_on(name, source)
        if name.idle and self._recent(name) == 0 and self._names.get(user) is name:
            del self._names[user]  # nothing to remember
