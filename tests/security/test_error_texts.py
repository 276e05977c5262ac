"""Error texts never reveal the state directory: an unexpected exception (OSError, sqlite3,
a bug) answers INTERNAL_ERROR with a reference, and the log has the details under it."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import XenAPI

from tests.security.support import Loop, in_process
from tests.serving import PATIENCE_S, add_user, start_server
from xenmem.db.sqlite import connect
from xenmem.toolstack import Context
from xenmem.xenapi.app import XenAPIServer

REFERENCE = re.compile(r"internal error ([0-9a-f]{12}); details are in the server's log")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[XenAPIServer, Loop]]:
    with in_process(tmp_path / "state") as pair:
        yield pair


def _failing_body(state_dir: Path) -> Callable[[Context, str], object]:
    def body(ctx: Context, host: str) -> object:
        raise OSError(24, "Too many open files", str(state_dir / "hosts" / f"{host}.json.new"))

    return body


def _reference(description: object, state_dir: Path) -> str:
    assert isinstance(description, list) and len(description) == 2, description
    assert description[0] == "INTERNAL_ERROR"
    assert str(state_dir) not in description[1]
    match = REFERENCE.fullmatch(description[1])
    assert match is not None, description
    return match.group(1)


def _logged_with(caplog: pytest.LogCaptureFixture, reference: str, state_dir: Path) -> bool:
    return any(
        reference in record.getMessage()
        and record.exc_text is not None
        and str(state_dir) in record.exc_text
        for record in caplog.records
    )


def test_a_call_that_fails_unexpectedly_answers_a_reference_the_log_explains(
    served: tuple[XenAPIServer, Loop],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, loop = served
    state_dir = tmp_path / "state"
    monkeypatch.setitem(server.bodies, "host.compute_free_memory", _failing_body(state_dir))
    session = loop.login()
    with caplog.at_level(logging.ERROR):
        reply = loop.call("host.compute_free_memory", session, server.master)
    reference = _reference(reply, state_dir)
    assert _logged_with(caplog, reference, state_dir)


def test_a_task_that_fails_unexpectedly_reports_a_reference_the_log_explains(
    served: tuple[XenAPIServer, Loop],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, loop = served
    state_dir = tmp_path / "state"
    monkeypatch.setitem(server.bodies, "host.compute_free_memory", _failing_body(state_dir))
    session = loop.login()
    with caplog.at_level(logging.ERROR):
        task = loop.call("Async.host.compute_free_memory", session, server.master)
        deadline = time.monotonic() + PATIENCE_S
        while loop.call("task.get_status", session, task) == "pending":
            assert time.monotonic() < deadline, "the task never ended"
            loop.loop.run_until_complete(asyncio.sleep(0.01))
    assert loop.call("task.get_status", session, task) == "failure"
    reference = _reference(loop.call("task.get_error_info", session, task), state_dir)
    assert _logged_with(caplog, reference, state_dir)


def test_over_the_wire_an_unexpected_failure_answers_a_reference(fresh_state: Path) -> None:
    running = start_server(fresh_state)
    add_user(fresh_state, "broken", "read-only", "pw")
    # A users row no xenmem wrote: its salt is text where bytes belong.
    conn = connect(fresh_state)
    with conn:
        conn.execute("UPDATE users SET salt = ? WHERE name = 'broken'", (str(fresh_state),))
    conn.close()
    try:
        with pytest.raises(XenAPI.Failure) as failed:
            running.session("broken", "pw")
        reference = _reference(failed.value.details, fresh_state)
    finally:
        log = running.stop()
    details = log[log.index(reference) :]
    assert "Traceback" in details
    assert "session.login_with_password" in details
