"""Hostile input: generated and mutated XML-RPC and JSON-RPC requests against the server.

Each case is one HTTP request built by hypothesis: a method (every wire name, its Async and
underscore forms, or junk), parameters (values of the declared types, existing refs,
sessions of every role, dead sessions, or anything), encoded as XML-RPC in the styles both
clients use or as JSON-RPC v1/v2, possibly mutated byte by byte, sent to any path with any
HTTP method, in random chunks, sometimes cut short. Checked for every case:

- the server answers, within a deadline (only event.from/next and
  wait_memory_target_live may block, as their callers ask);
- the answer is a complete HTTP response; a 200 carries a well-formed XML-RPC or JSON-RPC
  response whose error descriptions are lists of strings;
- no request logs an unexpected exception (a bug answered as INTERNAL_ERROR);
- a failed call changes nothing: every record (sessions and tasks aside) and every
  simulated host's domains are the same before and after.

A case that breaks a check stops the run: hypothesis shrinks it and prints the smallest
failing case.

In process, the cases go straight to the ASGI application (thousands a second); over
HTTP (`--http`), to a real `xenmem serve`, where a failed call must leave the database's
objects unchanged and the server must stay up.

    .venv/bin/python -m bench.fuzz [--cases 100000] [--seed 1] [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import http.client
import json
import logging
import re
import sqlite3
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from xenmem.cli.pool import DEFAULT_POOL, simulated_pool
from xenmem.db.users import set_user
from xenmem.xenapi.app import ServerConfig, XenAPIServer, open_server
from xenmem.xenapi.datamodel import Message
from xenmem.xenapi.http import XenAPIApp
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.roles import ROLES
from xenmem.xenapi.types import (
    BOOL,
    DATETIME,
    FLOAT,
    INT,
    ApiType,
    Enum,
    Map,
    RecordOf,
    Ref,
    Set,
)

ROOT_PASSWORD = "fuzz-root"
TIME_SCALE = 100.0  # simulated seconds per real second, as the test servers run
DEADLINE_S = 10.0
BLOCKING_DEADLINE_S = 0.3
_BLOCKING = re.compile(rb"event[._](from|next)|wait_memory_target_live")
_DEAD = "OpaqueRef:dead0000-0000-4000-8000-000000000000"


# --- Symbols resolved against the live server when a case runs ---------------------------


@dataclass(frozen=True)
class Sym:
    """A value known only at run time: a ref of a class, a role's session or password."""

    kind: str  # "ref", "session", "password"
    arg: str = ""
    index: int = 0


@dataclass(frozen=True)
class Case:
    http_method: str
    path: str
    content_type: str
    json: bool
    method: str
    params: list[object]
    envelope: dict[str, object]  # JSON-RPC members besides method and params
    xml_style: int
    mutations: list[tuple[int, int, bytes]]
    chunks: int
    disconnect: bool


# --- Strategies ------------------------------------------------------------------------------

_INTERESTING_INTS = [0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]
_INTERESTING_TEXT = [
    "",
    "OpaqueRef:NULL",
    _DEAD,
    "OpaqueRef:",
    "NaN",
    "inf",
    "-0",
    "1e400",
    "9" * 40,
    "20250101T00:00:00Z",
    "2025-01-01T00:00:00",
    "Running",
    "Halted",
    "*",
    "vm",
    "VM",
    "\x00",
    "\ud800",
    "é€𝄞",
    "<value>",
    "]]>",
    "&amp;",
    "A" * 5000,
]


# Mostly text both protocols can carry; the odd characters come from _INTERESTING_TEXT.
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=20)


@functools.cache
def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=max_size)


def _scalars() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from(_INTERESTING_INTS),
        st.floats(),
        _TEXT,
        st.sampled_from(_INTERESTING_TEXT),
        st.datetimes(timezones=st.just(UTC)),
        st.binary(max_size=16),
        st.builds(Sym, st.just("ref"), st.just(""), st.integers(0, 50)),
    )


ANY_VALUE: st.SearchStrategy[object] = st.recursive(
    _scalars(),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(_text(max_size=8), st.sampled_from(["name_label"])), children, max_size=4
        ),
    ),
    max_leaves=6,
)


@functools.cache
def typed(t: ApiType) -> st.SearchStrategy[object]:
    """Mostly plausible values of type `t`, and sometimes anything."""
    plausible: st.SearchStrategy[object]
    match t:
        case Ref(cls=cls):
            plausible = st.one_of(
                st.builds(Sym, st.just("ref"), st.just(cls), st.integers(0, 50)),
                st.sampled_from(["OpaqueRef:NULL", _DEAD]),
            )
        case Enum(values=values):
            plausible = st.one_of(
                st.sampled_from(values), st.sampled_from([v.lower() for v in values])
            )
        case Set(item=item):
            plausible = st.lists(typed(item), max_size=3)
        case Map(key=key, value=value):
            plausible = st.dictionaries(
                typed(key).filter(lambda k: isinstance(k, str)).map(str), typed(value), max_size=3
            )
        case RecordOf(cls=cls):
            fields = MODEL.cls(cls).fields
            plausible = st.fixed_dictionaries(
                {},
                optional={f.name: typed(f.type) for f in fields[:12]},
            )
        case _ if t == INT:
            sizes = st.one_of(
                st.sampled_from(_INTERESTING_INTS),
                st.integers(0, 2**40),
                st.sampled_from([2**20 * m for m in (1, 64, 256, 512, 1024, 4096, 65536)]),
            )
            plausible = st.one_of(sizes, sizes.map(str))
        case _ if t == FLOAT:
            plausible = st.one_of(st.floats(), st.integers(-10, 100), st.sampled_from(["1.5", "x"]))
        case _ if t == BOOL:
            plausible = st.booleans()
        case _ if t == DATETIME:
            plausible = st.datetimes(timezones=st.just(UTC))
        case _:
            plausible = st.one_of(_text(max_size=12), st.sampled_from(_INTERESTING_TEXT))
    return st.one_of(plausible, plausible, plausible, ANY_VALUE)


def _uniform(n: int) -> st.SearchStrategy[int]:
    """0 to n-1, evenly: hypothesis favours small integers and the ends of a range."""
    return st.integers(0, 2**20).map(lambda k: (k * 7919) % n)


def _one_in(n: int) -> st.SearchStrategy[bool]:
    return _uniform(n).map(lambda k: k == n // 2)


_MESSAGES: list[Message] = list(MODEL.messages.values())
_SESSIONS = st.one_of(
    st.builds(Sym, st.just("session"), st.sampled_from(ROLES)),
    st.builds(Sym, st.just("session"), st.sampled_from(ROLES)),
    st.builds(Sym, st.just("session"), st.sampled_from(ROLES)),
    st.sampled_from([_DEAD, "OpaqueRef:NULL", ""]),
    ANY_VALUE,
)


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, list[object]]:
    choice = draw(_uniform(20))
    if choice == 0:  # junk method names
        return draw(st.one_of(_text(max_size=30), st.sampled_from(_INTERESTING_TEXT))), draw(
            st.lists(ANY_VALUE, max_size=4)
        )
    if choice == 1:
        return "system.listMethods", draw(st.lists(ANY_VALUE, max_size=2))
    message = draw(st.sampled_from(_MESSAGES))
    name = message.wire_name
    form = draw(_uniform(10))
    if form == 0:
        name = f"{message.cls}_{message.name}"
    elif form == 1:
        name = f"Async.{name}"
    params: list[object] = []
    if message.session:
        params.append(draw(_SESSIONS))
    elif message.name == "login_with_password":
        user = draw(st.one_of(st.sampled_from(["root", *ROLES]), _text(max_size=8)))
        params += [user, draw(st.one_of(st.just(Sym("password", user)), _text(max_size=8)))]
        params += draw(st.lists(_text(max_size=5), max_size=3))
        return name, params
    params += [draw(typed(p.type)) for p in message.params]
    count = draw(_uniform(12))
    if count == 0 and params:
        params.pop(draw(st.integers(0, len(params) - 1)))
    elif count == 1:
        params.append(draw(ANY_VALUE))
    return name, params


_PATHS = ["/", "/RPC2", "/xmlrpc", "/jsonrpc", "/jsonrpc/", "/JSONRPC", "/a/b", "//", "/%00"]
_TOKENS = [
    b"<",
    b">",
    b"</value>",
    b"<value>",
    b"<array><data>",
    b"<struct>",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b",",
    b"\x00",
    b"\xff",
    b"&",
    b"<!DOCTYPE x>",
    b"<![CDATA[",
    b"9" * 30,
]


_ONE_IN_4 = _one_in(4)
_ONE_IN_10 = _one_in(10)
_ONE_IN_50 = _one_in(50)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    method, params = draw(calls())
    as_json = draw(_uniform(2)) == 1
    path = "/jsonrpc" if as_json else draw(st.sampled_from(["/", "/RPC2", "/xmlrpc"]))
    if draw(_ONE_IN_10):
        path = draw(st.sampled_from(_PATHS))
    envelope: dict[str, object] = {"id": draw(st.one_of(st.integers(0, 2**40), _text(max_size=6)))}
    if draw(st.booleans()):
        envelope["jsonrpc"] = "2.0"
    if draw(_ONE_IN_10):
        envelope = draw(
            st.dictionaries(st.sampled_from(["id", "jsonrpc", "x"]), ANY_VALUE, max_size=3)
        )
    mutations: list[tuple[int, int, bytes]] = []
    if draw(_ONE_IN_4):
        mutations = draw(
            st.lists(
                st.tuples(
                    st.integers(0, 2**16),
                    st.integers(0, 8),
                    st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=4)),
                ),
                min_size=1,
                max_size=4,
            )
        )
    return Case(
        http_method=draw(st.sampled_from(["POST"] * 30 + ["GET", "PUT", "OPTIONS", "HEAD"])),
        path=path,
        content_type=draw(st.sampled_from(["text/xml", "application/json", "", "x/y; charset=z"])),
        json=as_json,
        method=method,
        params=params,
        envelope=envelope,
        xml_style=draw(st.integers(0, 3)),
        mutations=mutations,
        chunks=draw(st.integers(1, 4)),
        disconnect=draw(_ONE_IN_50),
    )


# --- Encoding --------------------------------------------------------------------------------


def _xml_value(value: object, style: int, out: list[str]) -> None:
    if isinstance(value, bool):
        out.append(f"<value><boolean>{int(value)}</boolean></value>")
    elif isinstance(value, int):
        tag = ("i4", "int", "i8", "")[style] if -(2**31) <= value < 2**31 else ("i8", "")[style % 2]
        out.append(f"<value><{tag}>{value}</{tag}></value>" if tag else f"<value>{value}</value>")
    elif isinstance(value, float):
        out.append(f"<value><double>{value!r}</double></value>")
    elif isinstance(value, str):
        text = escape(value)
        out.append(
            f"<value><string>{text}</string></value>" if style % 2 else f"<value>{text}</value>"
        )
    elif isinstance(value, bytes):
        out.append(f"<value><base64>{base64.b64encode(value).decode()}</base64></value>")
    elif isinstance(value, datetime):
        out.append(f"<value><dateTime.iso8601>{value:%Y%m%dT%H:%M:%S}</dateTime.iso8601></value>")
    elif value is None:
        out.append("<value><nil/></value>")
    elif isinstance(value, list):
        out.append("<value><array><data>")
        for item in value:
            _xml_value(item, style, out)
        out.append("</data></array></value>")
    elif isinstance(value, dict):
        out.append("<value><struct>")
        for key, item in value.items():
            out.append(f"<member><name>{escape(str(key))}</name>")
            _xml_value(item, style, out)
            out.append("</member>")
        out.append("</struct></value>")
    else:
        raise TypeError(type(value))


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return f"{value:%Y%m%dT%H:%M:%SZ}"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def encode(case: Case, params: list[object]) -> bytes:
    if case.json:
        envelope = {key: _jsonable(value) for key, value in case.envelope.items()}
        request = {**envelope, "method": case.method, "params": _jsonable(params)}
        body = json.dumps(request).encode("utf-8", "surrogatepass")
    else:
        out = ['<?xml version="1.0"?>\n' if case.xml_style < 2 else ""]
        out.append(f"<methodCall><methodName>{escape(case.method)}</methodName><params>")
        for param in params:
            out.append("<param>")
            _xml_value(param, case.xml_style, out)
            out.append("</param>")
        out.append("</params></methodCall>")
        body = "".join(out).encode("utf-8", "surrogatepass")
    for position, length, insert in case.mutations:
        at = position % (len(body) + 1)
        body = body[:at] + insert + body[at + length :]
    return body


# --- Running cases ---------------------------------------------------------------------------


@dataclass
class Stats:
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    successes: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    blocked: int = 0

    def count_status(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def count_failure(self, code: str) -> None:
        self.failures[code] = self.failures.get(code, 0) + 1

    def summary(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        top = sorted(self.failures.items(), key=lambda kv: -kv[1])[:8]
        errors = ", ".join(f"{k} {v}" for k, v in top)
        return (
            f"{self.cases} cases; HTTP {statuses}; {self.successes} calls succeeded, "
            f"{sum(self.failures.values())} failed ({errors}); {self.blocked} blocking calls "
            "cut off or skipped; every check held"
        )


class _Errors(logging.Handler):
    """Collects what the server logs at ERROR: an exception a request should never cause."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_reply(case: Case, status: int, body: bytes, stats: Stats) -> bool | None:
    """Whether the call succeeded (None: no call was made); raises AssertionError on a bad reply."""
    stats.count_status(status)
    if case.http_method != "POST":
        assert status in (200, 404, 405), status
        return None
    assert status in (200, 400, 413, 500), status
    if status != 200:
        return False
    if case.path == "/jsonrpc":
        reply = json.loads(body)
        assert isinstance(reply, dict), reply
        error = reply.get("error")
        if reply.get("jsonrpc") == "2.0" and "error" in reply:
            assert isinstance(error, dict) and error.get("code") == 1, reply
            description = [error["message"], *error["data"]]
        elif reply.get("jsonrpc") == "2.0" or error is None:
            return True
        else:
            description = error
    else:
        (value,), _ = xmlrpc.client.loads(body)
        if isinstance(value, list):  # system.listMethods
            return True
        assert isinstance(value, dict) and value["Status"] in ("Success", "Failure"), value
        if value["Status"] == "Success":
            assert "Value" in value
            return True
        description = value["ErrorDescription"]
    assert isinstance(description, list) and description, description
    assert all(isinstance(d, str) for d in description), description
    stats.count_failure(description[0])
    return False


class InProcess:
    """An assembled server (no background work) and its ASGI application, on one loop."""

    def __init__(self, state_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        config = ServerConfig(state_dir=state_dir, root_password=ROOT_PASSWORD, login_delay=0.0)
        start_pool = simulated_pool(DEFAULT_POOL, state_dir, TIME_SCALE)
        self.server: XenAPIServer = self.loop.run_until_complete(open_server(config, start_pool))
        for role in ROLES:
            set_user(self.server.conn, role, role, f"{role}-pw")
        self.app = XenAPIApp(self.server.dispatcher, rrd_updates=self.server.rrd_updates)
        self.sessions: dict[str, str] = {}
        self.errors = _Errors()
        logging.getLogger("xenmem").addHandler(self.errors)
        self.stats = Stats()

    def close(self) -> None:
        logging.getLogger("xenmem").removeHandler(self.errors)
        self.loop.run_until_complete(self.server.runtime.stop())
        self.server.conn.close()
        self.loop.close()

    def _session(self, role: str) -> str:
        ref = self.sessions.get(role)
        if ref is None or not self.server.sessions.is_valid(ref):
            password = ROOT_PASSWORD if role == "root" else f"{role}-pw"
            ref = self.loop.run_until_complete(
                self.server.sessions.login(role, password, "1.0", "fuzz")
            )
            self.sessions[role] = ref
        return ref

    def resolve(self, value: object) -> object:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if not isinstance(value, Sym):
            return value
        if value.kind == "session":
            return self._session(value.arg)
        if value.kind == "password":
            return ROOT_PASSWORD if value.arg == "root" else f"{value.arg}-pw"
        classes = [value.arg] if value.arg else [c.name for c in MODEL.classes if c.database]
        refs = sorted(r for c in classes for r in self._records(c))
        return refs[value.index % len(refs)] if refs else "OpaqueRef:NULL"

    def _records(self, cls: str) -> list[str]:
        try:
            return list(self.server.store.records(cls))
        except KeyError:
            return []

    def state(self) -> dict[str, object]:
        records = {
            cd.name: dict(self.server.store.records(cd.name))
            for cd in MODEL.classes
            if cd.database and cd.name not in ("session", "task")
        }
        looks = {ref: agent.snapshot() for ref, agent in self.server.runtime.agents.items()}
        hosts = {ref: (look.physinfo, look.xen_domains) for ref, look in looks.items()}
        return {"records": records, "hosts": hosts}

    async def _request(self, case: Case, body: bytes) -> tuple[int, bytes]:
        pieces = max(1, min(case.chunks, len(body)))
        size = -(-len(body) // pieces) if body else 0
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": body[i : i + size], "more_body": True}
            for i in range(0, len(body), size or 1)
        ] or [{"type": "http.request", "body": b"", "more_body": True}]
        messages[-1]["more_body"] = False
        if case.disconnect:
            messages = [*messages[: len(messages) // 2], {"type": "http.disconnect"}]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await asyncio.sleep(3600)  # a client that sends nothing more
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": case.http_method,
            "scheme": "http",
            "path": case.path,
            "raw_path": case.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", case.content_type.encode()), (b"host", b"fuzz")],
            "client": ("192.0.2.7", 40000),
            "server": ("127.0.0.1", 8080),
        }
        await self.app(scope, receive, send)
        if case.disconnect and not sent:
            return 0, b""
        assert sent and sent[0]["type"] == "http.response.start", sent
        assert [m["type"] for m in sent[1:]] == ["http.response.body"], sent
        return int(sent[0]["status"]), bytes(sent[1].get("body", b""))

    def run(self, case: Case) -> None:
        self.stats.cases += 1
        params = self.resolve(case.params)
        envelope = self.resolve(case.envelope)
        assert isinstance(params, list) and isinstance(envelope, dict)
        body = encode(replace(case, envelope=envelope), params)
        before = self.state()
        logged = len(self.errors.records)
        blocking = _BLOCKING.search(body) is not None
        deadline = BLOCKING_DEADLINE_S if blocking else DEADLINE_S
        try:
            status, reply = self.loop.run_until_complete(
                asyncio.wait_for(self._request(case, body), deadline)
            )
        except TimeoutError:
            if blocking or case.disconnect:
                self.stats.blocked += 1
                return
            raise AssertionError(f"no answer within {deadline} s to {body[:300]!r}") from None
        self._drain()
        assert len(self.errors.records) == logged, [
            r.getMessage() for r in self.errors.records[logged:]
        ]
        if case.disconnect and status == 0:
            return
        succeeded = check_reply(case, status, reply, self.stats)
        if succeeded:
            self.stats.successes += 1
        elif succeeded is False or succeeded is None:
            after = self.state()
            assert after == before, f"a failed call changed the state: {body[:300]!r}"

    def _drain(self) -> None:
        """Let Async calls' tasks finish before the next case looks at the state."""
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=DEADLINE_S))


@dataclass
class OverHttp:
    """The same cases against a real `xenmem serve` over keep-alive HTTP connections."""

    url: str
    db: Path
    sessions: dict[str, str] = field(default_factory=dict)
    refs: dict[str, list[str]] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)

    def _call(self, method: str, *params: object) -> object:
        url = urlsplit(self.url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        try:
            payload = json.dumps({"id": 1, "method": method, "params": list(params)})
            conn.request("POST", "/jsonrpc", payload, {"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())["result"]
        finally:
            conn.close()

    def resolve(self, value: object) -> object:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if not isinstance(value, Sym):
            return value
        if value.kind == "session":
            # Read-only sessions only: over HTTP no call may legitimately change memory.
            if "ro" not in self.sessions:
                self.sessions["ro"] = str(
                    self._call("session.login_with_password", "read-only", "read-only-pw")
                )
            return self.sessions["ro"]
        if value.kind == "password":
            return "wrong" if value.arg == "root" else f"{value.arg}-pw"
        if not self.refs:
            root = str(self._call("session.login_with_password", "root", ROOT_PASSWORD))
            for cls in ("VM", "host", "pool", "host_metrics", "VM_metrics"):
                found = self._call(f"{cls}.get_all", root)
                self.refs[cls] = sorted(found) if isinstance(found, list) else []
            self._call("session.logout", root)
        refs = self.refs.get(value.arg) or sorted(r for rs in self.refs.values() for r in rs)
        return refs[value.index % len(refs)] if refs else "OpaqueRef:NULL"

    def objects(self) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute(
                "SELECT class, ref, record FROM objects ORDER BY class, ref"
            ).fetchall()
        finally:
            conn.close()

    def run(self, case: Case, conn: Any) -> None:
        self.stats.cases += 1
        params = self.resolve(case.params)
        envelope = self.resolve(case.envelope)
        assert isinstance(params, list) and isinstance(envelope, dict)
        body = encode(replace(case, envelope=envelope), params)
        if case.path.startswith("/%") or case.http_method == "HEAD":
            return  # not a request line http.client sends as is
        if _BLOCKING.search(body):
            self.stats.blocked += 1
            return  # a blocking call over HTTP cannot be cut short; see InProcess
        before = self.objects()
        try:
            conn.request(case.http_method, case.path, body, {"Content-Type": case.content_type})
            response = conn.getresponse()
            reply = response.read()
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise AssertionError(f"no answer ({error!r}) to {body[:300]!r}") from None
        if response.will_close:
            conn.close()
        succeeded = check_reply(case, response.status, reply, self.stats)
        if succeeded:
            self.stats.successes += 1
        else:
            assert self.objects() == before, f"a failed call changed the database: {body[:300]!r}"


# --- Entry points ----------------------------------------------------------------------------


def fuzz_in_process(state_dir: Path, cases_count: int, seed_value: int) -> Stats:
    harness = InProcess(state_dir)
    try:

        @seed(seed_value)
        @settings(
            max_examples=cases_count,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(cases())
        def one(case: Case) -> None:
            harness.run(case)

        one()
    finally:
        harness.close()
    return harness.stats


def _blocking_free(case: Case) -> bool:
    return not case.disconnect


def fuzz_over_http(url: str, state_dir: Path, cases_count: int, seed_value: int) -> Stats:
    harness = OverHttp(url=url, db=state_dir / "xenmem.db")
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=DEADLINE_S)
    try:

        @seed(seed_value)
        @settings(
            max_examples=cases_count,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(cases().filter(_blocking_free))
        def one(case: Case) -> None:
            harness.run(case, conn)

        one()
    finally:
        conn.close()
    return harness.stats


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--http", action="store_true", help="also against a real server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        stats = fuzz_in_process(Path(tmp) / "in-process", args.cases, args.seed)
        print(f"in process: {stats.summary()} in {time.monotonic() - start:.1f} s", flush=True)
        if args.http:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.serving import start_server  # noqa: PLC0415

            running = start_server(Path(tmp) / "http", password=ROOT_PASSWORD)
            try:
                subprocess_add_user(running.state_dir)
                start = time.monotonic()
                stats = fuzz_over_http(running.url, running.state_dir, args.cases // 10, args.seed)
                alive = running.process.poll() is None
            finally:
                running.stop()
            print(
                f"over HTTP: {stats.summary()} in {time.monotonic() - start:.1f} s; "
                f"server {'still up' if alive else 'DIED'}",
                flush=True,
            )


def subprocess_add_user(state_dir: Path) -> None:
    """The read-only user the HTTP cases log in as (added while the server runs)."""
    import subprocess  # noqa: PLC0415

    subprocess.run(
        [
            sys.executable,
            "-m",
            "xenmem.cli.main",
            "user",
            "add",
            "read-only",
            "--role",
            "read-only",
            "--state",
            str(state_dir),
        ],
        input="read-only-pw\n",
        text=True,
        check=True,
        capture_output=True,
    )


if __name__ == "__main__":
    main()
