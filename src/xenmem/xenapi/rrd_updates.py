"""GET /rrd_updates: the pool's RRD rows since a time, as xapi hands the request to
xcp-rrdd (protocol: its RBAC-checked HTTP actions).

Credentials, in xapi's order: a `session_id` (cookie, then query), else HTTP Basic
(checked as login_with_password checks a password, without leaving a session); none, or
bad ones: 401. A client's `task_id` is completed as xapi completes a forwarded task:
success once the credentials pass, failure (SESSION_AUTHENTICATION_FAILED) if not.

Then xcp-rrdd's parameters: `start` (required; negative counts back from the last
update), `cf` (AVERAGE, MIN, MAX or LAST; anything else means every function), `interval`
(seconds; the timescale), `host` (only `true` adds the host RRDs), `vm_uuid` (repeatable;
without it every running VM, `all` and `none` as in released xcp-rrdd; an unknown uuid
is left out) and `json` (present: JSON). An `Accept` header preferring JSON or XML
decides instead of `json` when it names either, as xcp-rrdd's negotiation does.

Answers: 200 with the rows; 400 when `start` is missing or not an integer (xcp-rrdd
answers 500 for the latter); 500 when there is nothing to export or no archive of the
asked function, as xcp-rrdd.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from xenmem.errors import SESSION_AUTHENTICATION_FAILED, XenAPIError
from xenmem.rrd import Cf, NoArchiveAvailableError, Updates, to_json, to_xml
from xenmem.toolstack.rrdd import Rrdd
from xenmem.xenapi.sessions import Sessions
from xenmem.xenapi.tasks import Tasks

__all__ = ["REALM", "HttpAnswer", "RrdUpdates", "prefers_json"]

log = logging.getLogger(__name__)

REALM = "rrd_updates"
_INT64 = re.compile(r"[-+]?[0-9]{1,19}")
_JSON, _XML = "application/json", "text/xml"
_NO_CACHE = ((b"connection", b"close"), (b"cache-control", b"no-cache, no-store"))
_UNAUTHORISED_PAGE = (
    b"<html><body><h1>HTTP 401 unauthorised</h1>Give a session_id or HTTP Basic "
    b"credentials.</body></html>"
)
_INTERNAL_ERROR_PAGE = (
    b"<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; "
    b"please wait a while and try again.</body></html>"
)


@dataclass(frozen=True, kw_only=True)
class HttpAnswer:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""


_INTERNAL_ERROR = HttpAnswer(
    status=500,
    headers=((b"content-type", b"text/html"), *_NO_CACHE),
    body=_INTERNAL_ERROR_PAGE,
)


def _int64(text: str | None) -> int | None:
    if text is None or not _INT64.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _accepted(untrusted_accept: str) -> list[tuple[float, str]] | None:
    """(q, media range) per entry of an Accept header; None if unreadable."""
    entries = []
    for entry in untrusted_accept.split(","):
        if not entry.strip():
            continue
        media, *params = (part.strip() for part in entry.split(";"))
        kind, slash, subtype = media.partition("/")
        if not slash or not kind or not subtype:
            return None
        q = 1.0
        for param in params:
            name, equals, value = param.partition("=")
            if not equals:
                return None
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    return None
                if not math.isfinite(q):
                    return None
        entries.append((int(q * 1000) / 1000, media))
    return entries


def _matches(media: str, wanted: str) -> bool:
    kind, _, subtype = media.partition("/")
    if kind == "*":
        return True
    wanted_kind, _, wanted_subtype = wanted.partition("/")
    return kind == wanted_kind and subtype in ("*", wanted_subtype)


def prefers_json(untrusted_accept: str | None, json_asked: bool) -> bool:
    """JSON or XML: among the Accept entries of the highest q that name either, JSON
    wins a tie; an Accept that names neither (or cannot be read) leaves it to the `json`
    parameter."""
    entries = None if untrusted_accept is None else _accepted(untrusted_accept)
    if entries:
        for q in sorted({q for q, _ in entries}, reverse=True):
            best = [media for weight, media in entries if weight == q]
            offered = [t for t in (_JSON, _XML) if any(_matches(m, t) for m in best)]
            if offered:
                return offered[0] == _JSON
    return json_asked


def _cookies(untrusted_header: str | None) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in (untrusted_header or "").split(";"):
        name, equals, value = part.strip().partition("=")
        if equals:
            cookies.setdefault(name, value)
    return cookies


def _basic(untrusted_header: str) -> tuple[str, str] | None:
    scheme, _, encoded = untrusted_header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _vm_filter(values: list[str]) -> list[str] | None:
    """None for every running VM."""
    if not values or values == ["all"]:
        return None
    return [] if values == ["none"] else values


class RrdUpdates:
    def __init__(self, sessions: Sessions, tasks: Tasks, rrdd: Rrdd) -> None:
        self._sessions = sessions
        self._tasks = tasks
        self._rrdd = rrdd

    async def answer(
        self, query_string: bytes, untrusted_headers: Iterable[tuple[bytes, bytes]]
    ) -> HttpAnswer:
        try:
            return await self._answer(query_string, untrusted_headers)
        except Exception:  # a bug answers 500; the server keeps serving
            log.exception("/rrd_updates failed")
            return _INTERNAL_ERROR

    async def _answer(
        self, query_string: bytes, untrusted_headers: Iterable[tuple[bytes, bytes]]
    ) -> HttpAnswer:
        headers: dict[str, str] = {}
        for raw_name, raw_value in untrusted_headers:
            headers.setdefault(raw_name.decode("latin-1").lower(), raw_value.decode("latin-1"))
        query = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        params: dict[str, str] = {}
        for name, value in query:
            params.setdefault(name, value)
        cookies = _cookies(headers.get("cookie"))
        task = cookies.get("task_id", params.get("task_id"))
        if not await self._authorised(cookies, params, headers):
            if task is not None:
                # xapi fails the task with the code alone, not a login's [user, reason].
                failed = XenAPIError(SESSION_AUTHENTICATION_FAILED.code)
                self._tasks.finish_forwarded(task, failed)
            return HttpAnswer(
                status=401,
                headers=(
                    (b"content-type", b"text/html"),
                    *_NO_CACHE,
                    (b"www-authenticate", f'Basic realm="{REALM}"'.encode()),
                ),
                body=_UNAUTHORISED_PAGE,
            )
        if task is not None:
            self._tasks.finish_forwarded(task)
        return await self._export(params, [v for k, v in query if k == "vm_uuid"], headers)

    async def _authorised(
        self, cookies: Mapping[str, str], params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bool:
        # Every role may read RRDs (the action's role is read-only): a valid session is
        # enough.
        session = cookies.get("session_id", params.get("session_id"))
        if session is not None:
            try:
                self._sessions.role(session)
            except XenAPIError:
                return False
            return True
        authorization = headers.get("authorization")
        credentials = None if authorization is None else _basic(authorization)
        if credentials is None:
            return False
        return await self._sessions.authenticate(*credentials) is not None

    async def _export(
        self, params: Mapping[str, str], vm_uuids: list[str], headers: Mapping[str, str]
    ) -> HttpAnswer:
        start = _int64(params.get("start"))
        if start is None:
            return HttpAnswer(status=400, headers=_NO_CACHE)
        cf = next((c for c in Cf if c.value == params.get("cf")), None)
        try:
            updates = self._rrdd.updates(
                start=start,
                interval=_int64(params.get("interval")) or 0,
                cf=cf,
                hosts=params.get("host") == "true",
                vm_uuids=_vm_filter(vm_uuids),
            )
        except NoArchiveAvailableError:
            return _INTERNAL_ERROR
        as_json = prefers_json(headers.get("accept"), "json" in params)
        return await _rendered(updates, as_json)


async def _rendered(updates: Updates, as_json: bool) -> HttpAnswer:
    # Thousands of rows and columns take a while to write: not on the event loop.
    body = await asyncio.to_thread(to_json if as_json else to_xml, updates)
    return HttpAnswer(
        status=200,
        headers=((b"content-type", (_JSON if as_json else _XML).encode()),),
        body=body,
    )
