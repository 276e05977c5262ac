"""Sessions: login against the users table, validity checks and logout (protocol §4).

A session ends at logout, when the server restarts, after `timeout` seconds without a
call (xapi's inactive-session timeout, 24 hours by default), when the collector evicts it
(`xenapi.collector`), or when its user's role or password changes - also by `xenmem user
add` in another process (xapi keeps such sessions: a demoted pool-admin would keep
pool-admin's rights). An ended session's calls get SESSION_INVALID [the ref as sent].
Failed logins are slowed down by a `LoginThrottle`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from xenmem.db import Store
from xenmem.db.users import User, find_user, users_generation, verify_login
from xenmem.errors import SESSION_AUTHENTICATION_FAILED, SESSION_INVALID
from xenmem.toolstack import Context
from xenmem.xenapi.collector import SessionUse
from xenmem.xenapi.throttle import LoginThrottle

__all__ = [
    "AUTHENTICATION_FAILURE",
    "CLIENT_ADDRESS",
    "DEFAULT_SESSION_TIMEOUT",
    "Sessions",
]

AUTHENTICATION_FAILURE = "Authentication failure"
DEFAULT_SESSION_TIMEOUT = 24 * 3600.0
# Threads that hash passwords. Each keeps scrypt's 16 MiB working buffer in its own malloc
# arena after use: a small pool of its own bounds that memory, where the event loop's
# default executor would spread it over many threads.
_HASHING_THREADS = 2

# The address of the client whose request is being served (set by the HTTP front).
CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("client_address", default=None)


@dataclass
class _Live:
    role: str
    user: str
    originator: str
    password_hash: bytes  # the user's at login: a new password has another (salted) hash
    users_seen: int  # the users table's generation at which the user was as at login
    last_used: float  # the clock's seconds


class Sessions:
    """Live sessions: a record in the store plus the role it was granted at login."""

    def __init__(
        self,
        store: Store,
        users: sqlite3.Connection,
        this_host: str,
        *,
        timeout: float = DEFAULT_SESSION_TIMEOUT,
        throttle: LoginThrottle | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._users = users
        self._this_host = this_host
        self._timeout = timeout
        self._throttle = LoginThrottle() if throttle is None else throttle
        self._clock = clock
        self._live: dict[str, _Live] = {}
        self._on_end: list[Callable[[str], None]] = []
        self._hashing = ThreadPoolExecutor(_HASHING_THREADS, thread_name_prefix="password")

    def when_ended(self, callback: Callable[[str], None]) -> None:
        """Call `callback(session)` whenever a session ends (to drop what it held)."""
        self._on_end.append(callback)

    def role(self, session: object) -> str:
        """The session's role, or SESSION_INVALID [the ref as sent]; a call keeps it alive."""
        live = self._live.get(session) if isinstance(session, str) else None
        now = self._clock()
        if (
            live is None
            or now - live.last_used > self._timeout
            or self._outdated(live, users_generation(self._users))
        ):
            if live is not None and isinstance(session, str):
                self._end(session)
            raise SESSION_INVALID(str(session))
        live.last_used = now
        return live.role

    @property
    def timeout(self) -> float:
        return self._timeout

    def uses(self, *, excluding: frozenset[str]) -> list[SessionUse]:
        """How long each live session, but those `excluding`, has not been used."""
        now = self._clock()
        return [
            SessionUse(ref=ref, user=s.user, originator=s.originator, idle_s=now - s.last_used)
            for ref, s in self._live.items()
            if ref not in excluding
        ]

    def end_all(self, sessions: Iterable[str]) -> None:
        for session in sessions:
            self._end(session)

    def end_outdated(self) -> None:
        """End the sessions whose user's role or password changed since their login."""
        generation = users_generation(self._users)
        self.end_all([ref for ref, s in self._live.items() if self._outdated(s, generation)])

    def _outdated(self, live: _Live, generation: int) -> bool:
        if generation == live.users_seen:
            return False
        user = find_user(self._users, live.user)
        if user is None or (user.role, user.password_hash) != (live.role, live.password_hash):
            return True
        live.users_seen = generation
        return False

    def is_valid(self, session: str) -> bool:
        live = self._live.get(session)
        return live is not None and self._clock() - live.last_used <= self._timeout

    async def _verified(self, uname: str, pwd: str) -> tuple[User, int] | None:
        """The user if the password is right, checked as a login checks it (throttled),
        with the users generation read before the user."""
        found: list[tuple[User, int]] = []

        async def check() -> bool:
            # The user is read at every login, so `xenmem user add` works on a running server;
            # the generation read first, a change made meanwhile is noticed at the first call.
            generation = users_generation(self._users)
            user = find_user(self._users, uname)
            # scrypt takes tens of milliseconds: keep it off the event loop.
            loop = asyncio.get_running_loop()
            right = await loop.run_in_executor(self._hashing, verify_login, user, pwd)
            if not right or user is None:
                return False
            found.append((user, generation))
            return True

        if not await self._throttle.attempt(uname, CLIENT_ADDRESS.get(), check):
            return None
        return found[0]

    async def authenticate(self, uname: str, pwd: str) -> str | None:
        """The user's role if the password is right, without opening a session (HTTP
        Basic authentication of a handler, for which xapi logs in and out at once)."""
        verified = await self._verified(uname, pwd)
        return None if verified is None else verified[0].role

    async def login(self, uname: str, pwd: str, version: str, originator: str) -> str:
        verified = await self._verified(uname, pwd)
        if verified is None:
            raise SESSION_AUTHENTICATION_FAILED(uname, AUTHENTICATION_FAILURE)
        user, generation = verified
        now = datetime.now(UTC)
        with self._store.transaction() as tx:
            ref = tx.create(
                "session",
                {
                    "this_host": self._this_host,
                    "last_active": now,
                    "validation_time": now,
                    "auth_user_name": uname,
                    "is_local_superuser": uname == "root",
                    "originator": originator,
                },
            )
        self._live[ref] = _Live(
            role=user.role,
            user=uname,
            originator=originator,
            password_hash=user.password_hash,
            users_seen=generation,
            last_used=self._clock(),
        )
        return ref

    def logout(self, ctx: Context) -> None:
        self._end(ctx.session)

    def _end(self, session: str) -> None:
        self._live.pop(session, None)
        if self._store.get("session", session) is not None:
            # Deleting the record wakes this session's calls blocked in event.from/next:
            # they must now fail (§6.1).
            with self._store.transaction() as tx:
                tx.delete("session", session)
        for callback in self._on_end:
            callback(session)
