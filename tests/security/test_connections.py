"""Connections over the wire, against `xenmem serve` with its limits shortened: an idle
connection, one sending its headers or its body a byte at a time, are closed when their
phase's time is up; a call in progress is never cut, however long it waits; beyond the
connection limit a new connection is answered 503 and closed; a body without a live
session is bounded more tightly."""

from __future__ import annotations

import http.client
import select
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.serving import RunningServer, start_server
from xenmem.xenapi.http import MAX_ANONYMOUS_BODY_BYTES

# Every phase of reading a request gets a second; a client trickles a byte every 0.2 s.
SHORT = ("--idle-timeout", "1", "--header-timeout", "1", "--body-timeout", "1")
TRICKLE_S = 0.2
PATIENCE_S = 20.0  # far beyond the 1 s limits: a connection still open then is kept


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("strict") / "state", *SHORT)
    yield running
    running.stop()


def _connect(server: RunningServer) -> socket.socket:
    url = urlsplit(server.url)
    return socket.create_connection((url.hostname, url.port), timeout=PATIENCE_S)


def _closed_by_server(connection: socket.socket, trickle: bytes = b"") -> bool:
    """Send `trickle` a byte at a time (or nothing) until the server closes the connection;
    False if it is still open after PATIENCE_S."""
    stop = time.monotonic() + PATIENCE_S
    while time.monotonic() < stop:
        readable, _, _ = select.select([connection], [], [], TRICKLE_S)
        if readable:
            try:
                if connection.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
        if trickle:
            try:
                connection.sendall(trickle[:1])
            except (BrokenPipeError, ConnectionResetError):
                return True
            trickle = trickle[1:] or trickle
    return False


def _request_head(server: RunningServer, length: int) -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: {urlsplit(server.url).netloc}\r\n"
        f"Content-Type: text/xml\r\nContent-Length: {length}\r\n"
    ).encode()


def test_an_idle_connection_is_closed(strict: RunningServer) -> None:
    with _connect(strict) as idle:
        assert _closed_by_server(idle)


def test_a_connection_idle_after_an_answer_is_closed(strict: RunningServer) -> None:
    body = b"<methodCall><methodName>system.listMethods</methodName></methodCall>"
    with _connect(strict) as connection:
        connection.sendall(_request_head(strict, len(body)) + b"\r\n" + body)
        assert connection.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed_by_server(connection)


def test_headers_sent_a_byte_at_a_time_are_cut_off(strict: RunningServer) -> None:
    with _connect(strict) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\n")
        assert _closed_by_server(slow, trickle=b"X-Padding: a-header-that-never-ends")


def test_a_body_sent_a_byte_at_a_time_is_cut_off(strict: RunningServer) -> None:
    with _connect(strict) as slow:
        slow.sendall(_request_head(strict, 10_000) + b"\r\n")
        assert _closed_by_server(slow, trickle=b"<methodCall>")


def test_a_call_in_progress_is_not_cut(strict: RunningServer) -> None:
    """A sync call may wait far longer than any of the limits: event.from for 3 s, then
    another call on the same connection."""
    session = strict.session()
    token = session.xenapi.event_from(["pool"], "", 0.0)["token"]
    proxy = strict.proxy()
    reply = getattr(proxy.event, "from")(session.handle, ["pool"], token, 3.0)
    assert reply["Status"] == "Success", reply
    assert reply["Value"]["events"] == []  # it waited out its timeout
    assert proxy.pool.get_all(session.handle)["Status"] == "Success"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("small") / "state",
        "--max-connections",
        "4",
        "--idle-timeout",
        "600",
    )
    yield running
    running.stop()


def _served(server: RunningServer) -> bool:
    proxy = xmlrpc.client.ServerProxy(server.url)
    try:
        return isinstance(proxy.system.listMethods(), list)
    except (xmlrpc.client.ProtocolError, ConnectionError):
        return False
    finally:
        proxy("close")()


def test_beyond_the_limit_a_connection_is_refused(small: RunningServer) -> None:
    held = [_connect(small) for _ in range(4)]
    try:
        with _connect(small) as excess:
            answer = excess.recv(65536)
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
            assert answer.endswith(b"too many connections\n")
            assert excess.recv(65536) == b""  # and closed
        assert not _served(small)
        held.pop().close()
        for _ in range(100):  # until the server has seen that one close
            if _served(small):
                break
            time.sleep(0.1)
        else:
            pytest.fail("a freed connection slot was not given to a new client")
    finally:
        for connection in held:
            connection.close()


def test_a_large_body_needs_a_live_session(server: RunningServer) -> None:
    session = server.session().handle

    def envelope(answer: bytes) -> dict[str, Any]:
        ((reply,), _) = xmlrpc.client.loads(answer)
        assert isinstance(reply, dict), reply
        return reply

    def post(ref: str, size: int) -> tuple[int, bytes]:
        call = xmlrpc.client.dumps((ref,), "pool.get_all").encode()
        body = call.replace(b"</methodCall>", b" " * (size - len(call)) + b"</methodCall>")
        connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=60)
        try:
            connection.request("POST", "/", body=body, headers={"Content-Type": "text/xml"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    bogus = "OpaqueRef:0badc0de-0000-4000-8000-000000000000"
    status, answer = post(bogus, MAX_ANONYMOUS_BODY_BYTES)
    assert (status, envelope(answer)["ErrorDescription"]) == (
        200,
        ["SESSION_INVALID", bogus],
    )
    assert post(bogus, 7 * 2**20)[0] == 413
    status, answer = post(session, 7 * 2**20)
    assert (status, envelope(answer)["Status"]) == (200, "Success")


def test_limits_are_refused_unless_positive(tmp_path: Path) -> None:
    for flag, value in (("--max-connections", "0"), ("--header-timeout", "-1")):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "xenmem.cli.main",
                "serve",
                "--state",
                str(tmp_path),
                flag,
                value,
            ],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 2
        assert f"argument {flag}: invalid" in result.stderr


def test_more_connections_than_open_files_allow_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xenmem.cli.main", "serve", "--state", str(tmp_path)]
        + ["--max-connections", str(2**40)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert f"--max-connections {2**40} needs {2**40 + 64} open files" in result.stderr
