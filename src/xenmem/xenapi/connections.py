"""Connections: how long a client may take between and within requests, and how many
connections may be open at once (`xenmem serve --idle-timeout ... --max-connections`).

uvicorn's own options do not cover this: its `timeout_keep_alive` starts only after a
response (a connection that never sends a request stays open for ever, and so does one
that sends its headers a byte at a time), and its `limit_concurrency` answers 503 only to
a request whose headers have arrived. So the server runs uvicorn's h11 protocol with a
watch on the phase each connection is in:

- waiting for a request, after connecting or after a response: `idle_timeout`;
- reading a request's headers, from their first byte: `header_timeout` for all of them;
- reading its body, from the end of the headers: `body_timeout` for all of it;
- a call in progress (the whole request read, no answer yet): no limit, for a sync call
  may wait for hours (VM.start on a busy host, event.from with a long timeout).

A phase's deadline is set when the phase begins; bytes trickling in do not move it. When
it passes, the connection is closed. Beyond `max_connections` open connections a new one
is answered HTTP 503 at once and closed. (TLS handshakes are bounded by asyncio: 60 s.)
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "guarded_protocol"]

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n"
)


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    """Seconds for each phase of reading a request, and the open connections allowed."""

    idle_timeout: float = 5.0  # uvicorn's keep-alive default
    header_timeout: float = 10.0
    body_timeout: float = 60.0  # 8 MiB at 140 KB/s
    max_connections: int = 512


class _Phase(enum.Enum):
    IDLE = enum.auto()
    HEADERS = enum.auto()
    BODY = enum.auto()
    CALL = enum.auto()


class _GuardedH11Protocol(H11Protocol):
    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._phase: _Phase | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def _current_phase(self) -> _Phase | None:
        if self.transport.is_closing():
            return None
        state = self.conn.their_state
        if state is h11.IDLE:
            return _Phase.HEADERS if self.conn.trailing_data[0] else _Phase.IDLE
        if state is h11.SEND_BODY:
            return _Phase.BODY
        return _Phase.CALL

    def _watch(self) -> None:
        """Start the deadline of the phase the connection has entered, if it has."""
        phase = self._current_phase()
        if phase is self._phase:
            return
        self._phase = phase
        self._cancel_deadline()
        timeout = self._timeout(phase)
        if timeout is not None:
            self._deadline = self.loop.call_later(timeout, self._expire)

    def _timeout(self, phase: _Phase | None) -> float | None:
        match phase:
            case _Phase.IDLE:
                return self.limits.idle_timeout
            case _Phase.HEADERS:
                return self.limits.header_timeout
            case _Phase.BODY:
                return self.limits.body_timeout
            case _:
                return None  # a call in progress, or a connection closing

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        # A blocked call waiting for the body sees ASGI http.disconnect and gives up.
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with `limits` (for `uvicorn.Config(http=...)`)."""
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), {"limits": limits})
