"""Shared by the security tests: an in-process server, and arguments of any declared type."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.in_process import open_in_process
from xenmem.db.users import set_user
from xenmem.xenapi.app import XenAPIServer
from xenmem.xenapi.datamodel import REQUIRED, Message
from xenmem.xenapi.dispatch import Failure, Raw, Success
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.roles import ROLES
from xenmem.xenapi.types import (
    BOOL,
    DATETIME,
    FLOAT,
    INT,
    AnyValue,
    ApiType,
    Enum,
    Map,
    RecordOf,
    Ref,
    Set,
)

ROOT_PASSWORD = "pw"
DEAD = "OpaqueRef:dead0000-0000-4000-8000-000000000000"


@contextmanager
def in_process(state_dir: Path, *, login_delay: float = 0.0) -> Iterator[tuple[XenAPIServer, Loop]]:
    """An assembled server (no background work), one user per role, and a loop to call it on."""
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        open_in_process(state_dir, root_password=ROOT_PASSWORD, login_delay=login_delay)
    )
    for role in ROLES:
        set_user(server.conn, role, role, f"{role}-pw")
    try:
        yield server, Loop(loop, server)
    finally:
        loop.run_until_complete(server.runtime.stop())
        server.conn.close()
        loop.close()


class Loop:
    def __init__(self, loop: asyncio.AbstractEventLoop, server: XenAPIServer) -> None:
        self.loop = loop
        self.server = server

    def call(self, method: str, *params: object) -> object:
        """The result, or the error description list of a failure."""
        reply = self.loop.run_until_complete(self.server.dispatcher.call(method, list(params)))
        if isinstance(reply, Failure):
            return reply.description
        assert isinstance(reply, Success | Raw)
        return reply.value

    def login(self, user: str = "root", password: str = ROOT_PASSWORD) -> str:
        session = self.call("session.login_with_password", user, password)
        assert isinstance(session, str) and session.startswith("OpaqueRef:"), session
        return session


def sample(t: ApiType) -> object:
    """A wire value that decodes as `t` (so that a call gets past argument decoding)."""
    match t:
        case Ref():
            return "OpaqueRef:NULL"
        case Enum(values=values):
            return values[0]
        case Set():
            return []
        case Map():
            return {}
        case RecordOf(cls=cls):
            return {f.name: sample(f.type) for f in MODEL.cls(cls).fields if f.default is REQUIRED}
        case AnyValue():
            return ""
    return {INT: "1", FLOAT: 1.0, BOOL: False, DATETIME: "20250101T00:00:00Z"}.get(t, "x")


def decodable_args(message: Message) -> list[object]:
    """Every parameter (after the session) with a value of its declared type."""
    return [sample(p.type) for p in message.params]


def state_of(server: XenAPIServer) -> dict[str, object]:
    """Every record of the store (sessions and tasks aside) and each simulated host's domains."""
    records = {
        cd.name: dict(server.store.records(cd.name))
        for cd in MODEL.classes
        if cd.database and cd.name not in ("session", "task")
    }
    looks = {ref: agent.snapshot() for ref, agent in server.runtime.agents.items()}
    hosts = {ref: (look.physinfo, look.xen_domains) for ref, look in looks.items()}
    return {"records": records, "hosts": hosts}
