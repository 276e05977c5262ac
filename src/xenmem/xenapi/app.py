"""Assembling the server: state directory → store, sessions, events, tasks, dispatcher."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xenmem import toolstack
from xenmem.db import Store
from xenmem.db.sqlite import connect
from xenmem.db.users import find_user, set_user, verify_password
from xenmem.toolstack.runtime import PoolRuntime
from xenmem.xenapi.collector import Collector, CollectorConfig
from xenmem.xenapi.datamodel import Kind
from xenmem.xenapi.dispatch import Body, Dispatcher
from xenmem.xenapi.events import Events
from xenmem.xenapi.generic import generic_body
from xenmem.xenapi.model import INDEXES, MODEL, RELATIONS, SUMS, event_classes, schemas
from xenmem.xenapi.roles import POOL_ADMIN
from xenmem.xenapi.rrd_updates import RrdUpdates
from xenmem.xenapi.sessions import DEFAULT_SESSION_TIMEOUT, Sessions
from xenmem.xenapi.tasks import Tasks
from xenmem.xenapi.throttle import DEFAULT_LOGIN_DELAY, LoginThrottle

__all__ = [
    "ROOT",
    "PoolStarter",
    "ServerConfig",
    "XenAPIServer",
    "ensure_root",
    "message_bodies",
    "open_server",
]

ROOT = "root"

PoolStarter = Callable[[Store], Awaitable[PoolRuntime]]
"""Brings the pool's hosts up over the opened store (the composition root's choice of
hypervisor, `xenmem.cli.pool`)."""


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    state_dir: Path
    root_password: str | None = None  # from XENMEM_ROOT_PASSWORD
    session_timeout: float = DEFAULT_SESSION_TIMEOUT  # seconds a session may stay idle
    login_delay: float = DEFAULT_LOGIN_DELAY  # after a first failed login; 0 turns it off
    # When tasks and sessions are collected (xapi's constants unless a test says otherwise).
    collection: CollectorConfig = field(default_factory=CollectorConfig)


@dataclass(frozen=True, kw_only=True)
class XenAPIServer:
    store: Store
    conn: sqlite3.Connection
    dispatcher: Dispatcher
    sessions: Sessions
    tasks: Tasks
    events: Events
    collector: Collector
    bodies: Mapping[str, Body]
    runtime: PoolRuntime
    rrd_updates: RrdUpdates
    generated_root_password: str | None

    @property
    def master(self) -> str:
        return self.runtime.coordinator


def message_bodies(sessions: Sessions, events: Events, tasks: Tasks) -> dict[str, Body]:
    """Wire name → body for every message of the model: generic, protocol or toolstack."""
    bodies: dict[str, Body] = {}
    for m in MODEL.messages.values():
        if m.kind is Kind.GET_FIELD:
            bodies[m.wire_name] = generic_body(m, removed=MODEL.cls(m.cls).field(m.field).removed)
        elif m.cls == "task" and m.kind.writes:
            bodies[m.wire_name] = tasks.owned(generic_body(m))
        elif m.kind is not Kind.CUSTOM:
            bodies[m.wire_name] = generic_body(m)
    protocol: Mapping[str, Body] = {
        "session.login_with_password": lambda ctx, uname, pwd, version, originator: sessions.login(
            uname, pwd, version, originator
        ),
        "session.logout": sessions.logout,
        "session.local_logout": sessions.logout,
        "event.from": events.event_from,
        "event.inject": events.inject,
        "event.register": events.register,
        "event.unregister": events.unregister,
        "event.next": events.next,
        "event.get_current_id": events.get_current_id,
        "task.cancel": tasks.cancel,
        "task.destroy": tasks.destroy,
    }
    bodies.update(protocol)
    bodies.update(toolstack.MESSAGES)
    missing = sorted(set(MODEL.messages) - set(bodies))
    extra = sorted(set(bodies) - set(MODEL.messages))
    if missing or extra:
        raise ValueError(f"messages without a body: {missing}; bodies without a message: {extra}")
    return bodies


def ensure_root(conn: sqlite3.Connection, password: str | None) -> str | None:
    """Make sure root can log in; return a generated password that must be shown once.

    With XENMEM_ROOT_PASSWORD set, that is root's password (the hash is replaced when it
    differs); without it, an existing root is kept, and a first start generates one.
    """
    root = find_user(conn, ROOT)
    if password is not None:
        if root is None or not verify_password(root, password):
            set_user(conn, ROOT, POOL_ADMIN, password)
        return None
    if root is not None:
        return None
    generated = secrets.token_urlsafe(12)
    set_user(conn, ROOT, POOL_ADMIN, generated)
    return generated


async def open_server(config: ServerConfig, start_pool: PoolStarter) -> XenAPIServer:
    """Open (or create) the state, bring the pool's hosts up and assemble the server.

    Background work starts with `server.runtime.start_background()` (squeezed's
    rebalancing, the monitor) and `server.collector.start()` (tasks and sessions).
    """
    conn = connect(config.state_dir)
    store = Store(schemas(), relations=RELATIONS, indexes=INDEXES, sums=SUMS, conn=conn)
    runtime = await start_pool(store)
    master = runtime.coordinator
    generated = ensure_root(conn, config.root_password)
    sessions = Sessions(
        store,
        conn,
        master,
        timeout=config.session_timeout,
        throttle=LoginThrottle(base=config.login_delay),
    )
    tasks = Tasks(store, master, role_of=sessions.role)
    events = Events(store, event_classes(), sessions.is_valid)
    sessions.when_ended(events.forget)
    bodies = message_bodies(sessions, events, tasks)
    dispatcher = Dispatcher(
        model=MODEL, store=store, sessions=sessions, tasks=tasks, bodies=bodies, runtime=runtime
    )
    return XenAPIServer(
        store=store,
        conn=conn,
        dispatcher=dispatcher,
        sessions=sessions,
        tasks=tasks,
        events=events,
        collector=Collector(tasks, sessions, config.collection),
        bodies=bodies,
        runtime=runtime,
        rrd_updates=RrdUpdates(sessions, tasks, runtime.rrdd),
        generated_root_password=generated,
    )
