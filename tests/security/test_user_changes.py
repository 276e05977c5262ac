"""A role or password change ends that user's sessions (a deliberate deviation: xapi keeps
them), also when `xenmem user add` runs beside the running server.

Raw XML-RPC: the SDK would hide an ended session by logging in again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.serving import RunningServer, add_user, start_server, vm_record


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("users") / "state")
    yield running
    running.stop()


class Client:
    def __init__(self, server: RunningServer) -> None:
        self._proxy: Any = server.proxy()

    def login(self, user: str, password: str) -> str:
        reply = self._proxy.session.login_with_password(user, password, "1.0", "tests")
        assert reply["Status"] == "Success", reply
        session: str = reply["Value"]
        return session

    def call(self, method: str, *params: object) -> Any:
        """The value, or the error description of a failure."""
        target = self._proxy
        for part in method.split("."):
            target = getattr(target, part)
        reply = target(*params)
        return reply["Value"] if reply["Status"] == "Success" else reply["ErrorDescription"]


def test_a_demoted_user_loses_every_session_at_once(served: RunningServer) -> None:
    client = Client(served)
    add_user(served.state_dir, "boss", "pool-admin", "boss-pw")
    add_user(served.state_dir, "bystander", "vm-admin", "by-pw")
    sessions = [client.login("boss", "boss-pw") for _ in range(2)]
    others = [client.login("bystander", "by-pw"), client.login("root", "s3cret-root")]
    for session in sessions:
        vm = client.call("VM.create", session, vm_record("admin's"))
        assert client.call("VM.destroy", session, vm) == ""
    add_user(served.state_dir, "boss", "read-only", "boss-pw")
    for session in sessions:
        assert client.call("VM.create", session, vm_record("no")) == ["SESSION_INVALID", session]
        assert client.call("VM.get_all", session) == ["SESSION_INVALID", session]
    for session in others:  # nobody else's sessions end
        assert isinstance(client.call("VM.get_all", session), list)
    demoted = client.login("boss", "boss-pw")
    assert client.call("VM.create", demoted, vm_record("no"))[0] == "RBAC_PERMISSION_DENIED"


def test_a_new_password_ends_the_users_sessions(served: RunningServer) -> None:
    client = Client(served)
    add_user(served.state_dir, "alice", "vm-admin", "old-pw")
    old = client.login("alice", "old-pw")
    add_user(served.state_dir, "alice", "vm-admin", "new-pw")
    assert client.call("host.get_all", old) == ["SESSION_INVALID", old]
    new = client.login("alice", "new-pw")
    assert isinstance(client.call("host.get_all", new), list)
