"""Sessions: login against the users table, validity checks and logout (protocol §4)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

from xenmem.db import Store
from xenmem.db.users import find_user, verify_password
from xenmem.errors import SESSION_AUTHENTICATION_FAILED, SESSION_INVALID
from xenmem.toolstack import Context

__all__ = ["AUTHENTICATION_FAILURE", "Sessions"]

AUTHENTICATION_FAILURE = "Authentication failure"


class Sessions:
    """Live sessions: a record in the store plus the role it was granted at login."""

    def __init__(self, store: Store, users: sqlite3.Connection, this_host: str) -> None:
        self._store = store
        self._users = users
        self._this_host = this_host
        self._roles: dict[str, str] = {}

    def role(self, session: object) -> str:
        """The session's role, or SESSION_INVALID [the ref as sent]."""
        role = self._roles.get(session) if isinstance(session, str) else None
        if role is None:
            raise SESSION_INVALID(str(session))
        return role

    def is_valid(self, session: str) -> bool:
        return session in self._roles

    async def login(self, uname: str, pwd: str, version: str, originator: str) -> str:
        # The user is read at every login, so `xenmem user add` works on a running server.
        user = find_user(self._users, uname)
        # scrypt takes tens of milliseconds: keep it off the event loop.
        if user is None or not await asyncio.to_thread(verify_password, user, pwd):
            raise SESSION_AUTHENTICATION_FAILED(uname, AUTHENTICATION_FAILURE)
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
        self._roles[ref] = user.role
        return ref

    def logout(self, ctx: Context) -> None:
        self._roles.pop(ctx.session, None)
        if self._store.get("session", ctx.session) is not None:
            with self._store.transaction() as tx:
                tx.delete("session", ctx.session)
        # Calls blocked in event.from/next for this session must now fail (§6.1).
        self._store.wake_waiters()
