"""Failed logins slow down guesses at that user name and nothing else: guesses sent in
parallel, from any addresses, are checked one delay apart; a correct password never waits
for other names' failures nor for its address's; an unknown user costs a hash like a known
one; the throttle's table and the names it keeps are bounded."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.security.support import in_process
from tests.serving import ROOT_PASSWORD, RawXenAPI, RunningServer
from xenmem.xenapi.throttle import MAX_USER_NAME_LENGTH, LoginThrottle

AUTHENTICATION_FAILED = "SESSION_AUTHENTICATION_FAILED"


class _FakeTime:
    """A clock that a sleep moves forward at once (for logins one after another)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class _ManualTime:
    """A clock that moves only when the test says, waking the sleepers it passes."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, wake))
        await wake

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for entry in [e for e in self._sleepers if e[0] <= self.now]:
            self._sleepers.remove(entry)
            entry[1].set_result(None)
        await settle()


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(50):
        await asyncio.sleep(0)


def _answer(
    ok: bool, checked: list[str] | None = None, label: str = ""
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        if checked is not None:
            checked.append(label)
        return ok

    return check


def _attempt(throttle: LoginThrottle, user: str, source: str, ok: bool) -> bool:
    return asyncio.run(throttle.attempt(user, source, _answer(ok)))


def test_failed_logins_wait_longer_each_time_until_a_success() -> None:
    t = _FakeTime()
    throttle = LoginThrottle(base=0.5, cap=4.0, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        assert not _attempt(throttle, "root", "10.0.0.1", ok=False)
    assert t.slept == [0.5, 1.0, 2.0, 4.0, 4.0]
    # Another address guessing the same user name is slowed down as much.
    t.slept.clear()
    assert not _attempt(throttle, "root", "10.0.0.2", ok=False)
    assert t.slept == [4.0]
    # A success resets that name's count; other names never waited.
    t.slept.clear()
    assert _attempt(throttle, "root", "10.0.0.1", ok=True)
    assert throttle.failures("root") == 0
    assert _attempt(throttle, "alice", "10.0.0.3", ok=True)
    assert not _attempt(throttle, "bob", "10.0.0.3", ok=False)
    assert t.slept == [0.5]
    # Failures are forgotten after a quiet quarter of an hour.
    t.now += 901.0
    assert throttle.failures("bob") == 0


def test_parallel_guesses_at_one_name_are_checked_one_delay_apart() -> None:
    """Rotating source addresses does not buy parallel guesses."""

    async def scenario() -> None:
        t = _ManualTime()
        throttle = LoginThrottle(base=1.0, cap=1.0, clock=t.clock, sleep=t.sleep)
        checked: list[str] = []
        guesses = [
            asyncio.ensure_future(
                throttle.attempt("root", f"10.0.0.{i}", _answer(False, checked, str(i)))
            )
            for i in range(5)
        ]
        await settle()
        assert checked == ["0"]
        for done in range(1, 5):
            await t.advance(1.0)
            assert len(checked) == done + 1
        await t.advance(1.0)
        assert [g.result() for g in guesses] == [False] * 5

    asyncio.run(scenario())


def test_a_correct_password_never_waits_for_other_names_or_its_address() -> None:
    async def scenario() -> None:
        t = _ManualTime()
        throttle = LoginThrottle(base=8.0, cap=8.0, clock=t.clock, sleep=t.sleep)
        # The dashboard mistypes, and a script guesses other names, all from 127.0.0.1;
        # every failure is still waiting out its delay.
        failing = [
            asyncio.ensure_future(throttle.attempt(name, "127.0.0.1", _answer(False)))
            for name in ("admin", "admin", "operator", "nobody", "guest")
        ]
        await settle()
        root = asyncio.ensure_future(throttle.attempt("root", "127.0.0.1", _answer(True)))
        await settle()
        assert root.done() and root.result()
        assert not any(f.done() for f in failing)
        for _ in range(3):  # admin's second try waits for the first's delay
            await t.advance(8.0)
        assert all(f.done() and not f.result() for f in failing)

    asyncio.run(scenario())


def test_a_burst_from_one_address_holds_another_back_by_one_turn() -> None:
    async def scenario() -> None:
        t = _ManualTime()
        throttle = LoginThrottle(base=1.0, cap=1.0, clock=t.clock, sleep=t.sleep)
        checked: list[str] = []
        guesses = [
            asyncio.ensure_future(
                throttle.attempt("root", "10.9.9.9", _answer(False, checked, f"guess {i}"))
            )
            for i in range(5)
        ]
        await settle()
        root = asyncio.ensure_future(
            throttle.attempt("root", "10.0.0.1", _answer(True, checked, "root"))
        )
        await settle()
        assert checked == ["guess 0"]
        await t.advance(1.0)  # the guess in progress is answered: root's turn comes next
        assert checked[:2] == ["guess 0", "root"]
        assert root.done() and root.result()
        for _ in range(4):
            await t.advance(1.0)
        assert checked == ["guess 0", "root", "guess 1", "guess 2", "guess 3", "guess 4"]
        assert all(g.done() for g in guesses)

    asyncio.run(scenario())


def test_a_cancelled_login_passes_its_turn_on() -> None:
    async def scenario() -> None:
        t = _ManualTime()
        throttle = LoginThrottle(base=1.0, cap=1.0, clock=t.clock, sleep=t.sleep)
        checked: list[str] = []
        first = asyncio.ensure_future(throttle.attempt("root", "a", _answer(False, checked, "a")))
        waiting = asyncio.ensure_future(throttle.attempt("root", "b", _answer(False, checked, "b")))
        last = asyncio.ensure_future(throttle.attempt("root", "c", _answer(True, checked, "c")))
        await settle()
        waiting.cancel()
        await t.advance(1.0)
        assert first.done() and last.done() and last.result()
        assert checked == ["a", "c"]
        assert throttle.tracked_names == 0  # a success with nobody waiting leaves nothing

    asyncio.run(scenario())


def test_the_table_of_names_is_bounded() -> None:
    t = _FakeTime()
    throttle = LoginThrottle(base=0.5, max_names=100, clock=t.clock, sleep=t.sleep)
    for i in range(1000):
        assert not _attempt(throttle, f"user{i}", f"10.1.{i // 256}.{i % 256}", ok=False)
    assert throttle.tracked_names == 100
    # The least recently tried are forgotten first.
    assert throttle.failures("user999") == 1
    assert throttle.failures("user0") == 0


def test_an_over_long_user_name_is_refused_unchecked_and_not_kept() -> None:
    t = _FakeTime()
    throttle = LoginThrottle(base=0.5, clock=t.clock, sleep=t.sleep)
    checked: list[str] = []
    longest = "n" * MAX_USER_NAME_LENGTH
    assert asyncio.run(throttle.attempt(longest, "a", _answer(True, checked, "longest")))
    assert not asyncio.run(throttle.attempt(longest + "n", "a", _answer(True, checked, "over")))
    assert checked == ["longest"]
    assert throttle.tracked_names == 0


def test_xenmem_user_add_refuses_a_name_no_login_could_use(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xenmem.cli.main",
            "user",
            "add",
            "n" * (MAX_USER_NAME_LENGTH + 1),
            "--role",
            "read-only",
            "--state",
            str(tmp_path),
        ],
        input="pw\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid user name" in result.stderr


def test_an_unknown_user_costs_a_hash_like_a_known_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[int] = []
    scrypt = hashlib.scrypt

    def counting(
        password: bytes, *, salt: bytes, n: int, r: int, p: int, maxmem: int = 0, dklen: int = 64
    ) -> bytes:
        hashed.append(n)
        return scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)

    with in_process(tmp_path) as (_, loop):
        monkeypatch.setattr(hashlib, "scrypt", counting)  # the module users hashes with
        for name in ("root", "nobody"):
            hashed.clear()
            reply = loop.call("session.login_with_password", name, "wrong")
            assert reply == [AUTHENTICATION_FAILED, name, "Authentication failure"]
            assert hashed == [2**14], name


def test_root_logs_in_while_failures_from_its_address_wait(server: RunningServer) -> None:
    """Over the wire, as xe and the dashboard share 127.0.0.1: a burst of failed logins
    for other names from that address does not hold root's correct login back."""
    names = [f"mistyped-{i}" for i in range(4)]
    answered: list[str] = []
    lock = threading.Lock()

    def login(user: str, password: str) -> None:
        proxy = RawXenAPI(xmlrpc.client.ServerProxy(server.url))
        reply = proxy.session.login_with_password(user, password, "1.0", "t")
        proxy.close()
        with lock:
            answered.append(f"{user}: {reply['Status']}")

    # A first failure each: the next failure of each name is answered 1 s late.
    first = [threading.Thread(target=login, args=(n, "wrong")) for n in names]
    for thread in first:
        thread.start()
    for thread in first:
        thread.join()
    answered.clear()
    burst = [threading.Thread(target=login, args=(n, "wrong")) for n in names]
    for thread in burst:
        thread.start()
    time.sleep(0.2)
    login("root", ROOT_PASSWORD)
    with lock:
        assert answered[0] == "root: Success", answered
    for thread in burst:
        thread.join()
    assert sorted(answered[1:]) == [f"{n}: Failure" for n in names]
