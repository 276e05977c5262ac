"""The HTTP front: a bare ASGI application, as xapi's HTTP server routes (protocol §1).

`POST /jsonrpc` is JSON-RPC; every other POST path is XML-RPC. Content types are exact
(`text/xml`, `application/json`, no charset: XO compares the strings). API failures are
HTTP 200; only a body that is not a call at all gets HTTP 500, one over the size limit
HTTP 413, and one whose values nest too deeply HTTP 400. Starlette's routing and Response
classes are not used: there is one route, and its Response adds `; charset=utf-8` to text
types, which breaks XO.

`GET /` answers with the memory dashboard and `GET /static/<file>` with its files: the
package data under `xenmem/web/`, read once when the application is made. The dashboard
is a XenAPI client like any other. `GET /rrd_updates` serves the RRDs (`rrd_updates`);
nothing else is served on GET.

A browser names the page that sent a request in `Origin`; a call or an RRD request carrying
any origin but the server's own (the dashboard's) is refused with HTTP 403 before it is
read, and no answer carries CORS headers, so a web page a local user visits can neither
make calls nor read answers. xapi answers every call with `Access-Control-Allow-Origin: *`;
clients that are not browsers send no Origin and are served as before, whatever content
type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import PurePosixPath
from typing import Any

from xenmem.xenapi import jsonrpc, xmlrpc
from xenmem.xenapi.dispatch import Dispatcher, Failure, Raw, Success
from xenmem.xenapi.events import CLIENT_GONE
from xenmem.xenapi.rrd_updates import RrdUpdates
from xenmem.xenapi.sessions import CLIENT_ADDRESS

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_ANONYMOUS_BODY_BYTES",
    "Asset",
    "XenAPIApp",
    "load_page",
]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_ANONYMOUS_BODY_BYTES = 64 * 1024  # unless these first bytes name a live session
_SESSION_REF = re.compile(
    rb"OpaqueRef:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
# The dashboard's files: no cache (a new version shows on reload), no sniffing, and
# nothing but its own scripts and styles (it has no inline code and loads nothing else).
_PAGE_HEADERS = (
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
)
_CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".svg": b"image/svg+xml",
}
_BAD_REQUEST_PAGE = (
    b"<html><body><h1>HTTP 500 internal server error</h1>"
    b"An unexpected error occurred; please wait a while and try again.</body></html>"
)


_FOREIGN_ORIGIN_PAGE = (
    b"<html><body><h1>HTTP 403 forbidden</h1>"
    b"Calls from another origin's web pages are refused.</body></html>"
)


def _too_deep_page(error: Exception) -> bytes:
    return f"<html><body><h1>HTTP 400 bad request</h1>{error}.</body></html>".encode()


class _BodyTooLargeError(Exception):
    pass


class _DisconnectedError(Exception):
    """The client went away before sending its whole call: there is no one to answer."""


@dataclass(frozen=True, kw_only=True)
class Asset:
    """One file of the dashboard, as served."""

    content_type: bytes
    body: bytes


def _files(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _files(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield f"{prefix}{entry.name}", entry


def load_page() -> dict[str, Asset]:
    """URL path → asset: `index.html` on `/`, every file of a known type on `/static/...`."""
    page: dict[str, Asset] = {}
    for name, entry in _files(files("xenmem") / "web", ""):
        content_type = _CONTENT_TYPES.get(PurePosixPath(name).suffix)
        if content_type is not None:
            asset = Asset(content_type=content_type, body=entry.read_bytes())
            page["/" if name == "index.html" else f"/static/{name}"] = asset
    return page


async def _respond(
    send: Send,
    status: int,
    content_type: bytes | None,
    body: bytes,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Send the response; without a `content_type`, none is named (an empty 400)."""
    headers = [
        *(() if content_type is None else ((b"content-type", content_type),)),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _foreign_origin(scope: Scope) -> bool:
    """Whether a browser sent this request from a page of another origin than ours."""
    origin = _header(scope, b"origin")
    if origin is None:
        return False
    host = _header(scope, b"host")
    own = f"{scope.get('scheme', 'http')}://".encode() + (host or b"")
    return host is None or origin.lower() != own.lower()


async def _until_disconnected(receive: Receive) -> None:
    """Return when the client has gone (after the body, only a disconnect can come)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(
    receive: Receive, limit: int, anonymous_limit: int, names_session: Callable[[bytes], bool]
) -> bytes:
    """The whole body: up to `anonymous_limit` bytes, or `limit` when its first
    `anonymous_limit` bytes name a live session."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _DisconnectedError
        chunk = message.get("body", b"")
        if size <= anonymous_limit < size + len(chunk):
            head = b"".join([*chunks, chunk])[:anonymous_limit]
            if not names_session(head):
                raise _BodyTooLargeError
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class XenAPIApp:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        rrd_updates: RrdUpdates | None = None,
    ):
        self._dispatcher = dispatcher
        self._max_body = max_body_bytes
        self._page = load_page()
        self._rrd_updates = rrd_updates

    def _names_session(self, head: bytes) -> bool:
        return any(self._dispatcher.is_session(m.decode()) for m in _SESSION_REF.findall(head))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method == "GET" and (asset := self._page.get(scope["path"])) is not None:
            await _respond(send, 200, asset.content_type, asset.body, _PAGE_HEADERS)
            return
        rrd = self._rrd_updates if (method, scope["path"]) == ("GET", "/rrd_updates") else None
        if rrd is None and method != "POST":
            await _respond(send, 404, b"text/html", b"<html><body>Not found</body></html>")
            return
        if _foreign_origin(scope):
            await _respond(send, 403, b"text/html", _FOREIGN_ORIGIN_PAGE)
            return
        if rrd is not None:
            await self._rrd(rrd, scope, send)
            return
        try:
            body = await _read_body(
                receive, self._max_body, MAX_ANONYMOUS_BODY_BYTES, self._names_session
            )
        except _BodyTooLargeError:
            await _respond(send, 413, b"text/html", b"<html><body>Request too large</body></html>")
            return
        except _DisconnectedError:
            return
        client = scope.get("client")
        address = CLIENT_ADDRESS.set(str(client[0]) if client else None)
        gone = CLIENT_GONE.set(lambda: _until_disconnected(receive))
        try:
            if scope["path"] == "/jsonrpc":
                await self._json(body, send)
            else:
                await self._xml(body, send)
        finally:
            CLIENT_GONE.reset(gone)
            CLIENT_ADDRESS.reset(address)

    async def _rrd(self, handler: RrdUpdates, scope: Scope, send: Send) -> None:
        client = scope.get("client")
        token = CLIENT_ADDRESS.set(str(client[0]) if client else None)
        try:
            answer = await handler.answer(scope.get("query_string", b""), scope["headers"])
        finally:
            CLIENT_ADDRESS.reset(token)
        content_type = dict(answer.headers).get(b"content-type")
        extra = tuple(h for h in answer.headers if h[0] != b"content-type")
        await _respond(send, answer.status, content_type, answer.body, extra)

    async def _xml(self, body: bytes, send: Send) -> None:
        try:
            method, params = xmlrpc.parse_call(body)
        except xmlrpc.NestingTooDeepError as error:
            await _respond(send, 400, b"text/html", _too_deep_page(error))
            return
        except xmlrpc.XmlRpcParseError as error:
            log.info("unreadable XML-RPC call: %s", error)
            await _respond(send, 500, b"text/html", _BAD_REQUEST_PAGE)
            return
        reply = await self._dispatcher.call(method, params)
        match reply:
            case Success(value=value):
                payload = xmlrpc.render_success(value)
            case Failure(description=description):
                payload = xmlrpc.render_failure(description)
            case Raw(value=value):
                payload = xmlrpc.render_raw(value)
        await _respond(send, 200, b"text/xml", payload)

    async def _json(self, body: bytes, send: Send) -> None:
        try:
            call = jsonrpc.parse_call(body)
        except jsonrpc.NestingTooDeepError as error:
            await _respond(send, 400, b"text/html", _too_deep_page(error))
            return
        except jsonrpc.JsonRpcParseError as error:
            log.info("unreadable JSON-RPC call: %s", error)
            await _respond(send, 500, b"text/html", _BAD_REQUEST_PAGE)
            return
        reply = await self._dispatcher.call(call.method, call.params)
        match reply:
            case Success(value=value) | Raw(value=value):
                payload = jsonrpc.render_success(call, value)
            case Failure(description=description):
                payload = jsonrpc.render_failure(call, description)
        await _respond(send, 200, b"application/json", payload)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
