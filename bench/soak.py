"""Soak: ordinary and hostile traffic mixed for minutes (BENCHMARKS.md, "Soak").

A real `xenmem serve` (the load benchmark's pool of four 32 GiB hosts, real time, default
connection limits) under this mix, in threads of one client process, for `--seconds`:

- connections: a client that connects, makes one call and hangs up, 20 times a second;
  16 idle connections and 8 that send a header byte a second, each replaced when the
  server closes it;
- logins: root logging in and out; wrong passwords for random user names (2 clients) and
  for one existing user, `operator` (4 clients guessing in parallel);
- waiters: 4 watchers in `event.from` (VM, host, task; 30 s) taking each batch; 10 a second
  `event.from` calls on the pool (which nothing changes) with an hour's timeout, whose
  clients hang up at once;
- tasks and cancels: 10 a second `Async.VM.compute_memory_overhead` left in the database;
  2 clients starting a halted VM with `Async.VM.start` and cancelling it within a second
  (shutting it down when the start won);
- the probes: `VM.get_record` back to back on one connection, and `Async.host.
  compute_free_memory` followed by `task.destroy`, back to back on another.

Every completed operation is counted by kind with its time; the server's RSS and open
files are sampled every second and its task count every 5 s (event.from's
valid_ref_counts), with its CPU time. The report compares the first `--window` seconds
after a 10 s warm-up with the last, and each probe run alone for `--quiet` seconds before
the mix and after it (what the mix left behind, without the mix's own load): it measures,
it asserts nothing. The server's CPU time per call is the figure that other work on the
machine moves least.

    .venv/bin/python -m bench.soak [--seconds 180] [--window 30]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import XenAPI

from bench.load import Server, close, login, new_vm, start_server

OPERATOR_PASSWORD = "operator-soak"
WARM_UP_S = 10.0
IDLE_CONNECTIONS = 16
SLOW_CONNECTIONS = 8
WATCHERS = 4
HANG_UPS_PER_S = 10.0
TASKS_LEFT_PER_S = 10.0
CANCELLERS = 2
RANDOM_GUESSERS = 2
OPERATOR_GUESSERS = 4
CHURN_PAUSE_S = 0.05
WATCHED = ["vm", "host", "task"]
LINGER_S = 5.0  # after the deadline, for calls in flight (queued wrong logins wait 8 s each)


@dataclass
class Tally:
    """Completed operations by kind, with the second they completed at."""

    started: float = field(default_factory=time.monotonic)
    done: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str) -> None:
        with self.lock:
            self.done.append((time.monotonic() - self.started, kind))

    def rates(self, start: float, end: float) -> Counter[str]:
        """Operations per second of each kind completed in [start, end)."""
        counts = Counter(kind for t, kind in self.done if start <= t < end)
        return Counter({kind: n / (end - start) for kind, n in counts.items()})


@dataclass
class Samples:
    """(seconds, value) series of the server's state."""

    rss_mib: list[tuple[float, float]] = field(default_factory=list)
    cpu_s: list[tuple[float, float]] = field(default_factory=list)  # used so far
    open_files: list[tuple[float, float]] = field(default_factory=list)
    tasks: list[tuple[float, float]] = field(default_factory=list)

    def cpu_share(self, start: float, end: float) -> float:
        """The server's CPU time in [start, end) over the time: 1.0 is one core."""
        inside = [(t, v) for t, v in self.cpu_s if start <= t < end]
        if len(inside) < 2:
            return float("nan")
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    @staticmethod
    def mean(series: list[tuple[float, float]], start: float, end: float) -> float:
        values = [v for t, v in series if start <= t < end]
        return statistics.fmean(values) if values else float("nan")


class Soak:
    def __init__(self, server: Server, seconds: float, vms: list[str]) -> None:
        self.server = server
        self.url = server.url
        parts = urlsplit(server.url)
        self.address = (parts.hostname or "", parts.port or 80)
        self.deadline = time.monotonic() + seconds
        self.tally = Tally()
        self.samples = Samples()
        self.vms = vms
        self.errors: Counter[str] = Counter()

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def guarded(self, name: str, work: Callable[[], None]) -> Callable[[], None]:
        """Run `work` until the deadline; an unexpected error is counted, then retried."""

        def loop() -> None:
            while self.running():
                try:
                    work()
                except Exception as error:  # counted, never fatal: the soak goes on
                    with self.tally.lock:
                        if self.running():  # not a call cut short when the server stopped
                            self.errors[f"{name}: {type(error).__name__} {error}"[:120]] += 1
                    time.sleep(0.1)

        return loop

    # -- the probes and the tasks --------------------------------------------------------

    def probe_get_record(self) -> None:
        session = login(self.url, "soak-probe")
        try:
            while self.running():
                session.xenapi.VM.get_record(self.vms[0])
                self.tally.count("probe VM.get_record")
        finally:
            close(session)

    def probe_async(self) -> None:
        session = login(self.url, "soak-probe-async")
        host = session.xenapi.host.get_all()[0]
        try:
            while self.running():
                task = session.xenapi.Async.host.compute_free_memory(host)
                session.xenapi.task.destroy(task)
                self.tally.count("probe Async call + task.destroy")
        finally:
            close(session)

    def tasks_left(self) -> None:
        session = login(self.url, "soak-tasks")
        try:
            while self.running():
                session.xenapi.Async.VM.compute_memory_overhead(self.vms[0])
                self.tally.count("Async task left in the database")
                time.sleep(1 / TASKS_LEFT_PER_S)
        finally:
            close(session)

    def canceller(self, vm: str) -> Callable[[], None]:
        def work() -> None:
            session = login(self.url, "soak-cancel")
            api = session.xenapi
            try:
                while self.running():
                    task = api.Async.VM.start(vm, False, False)
                    time.sleep(random.uniform(0, 1.0))
                    with contextlib.suppress(XenAPI.Failure):  # it may have finished first
                        api.task.cancel(task)
                    while api.task.get_status(task) in ("pending", "cancelling"):
                        time.sleep(0.05)
                    won = api.task.get_status(task) == "success"
                    api.task.destroy(task)
                    if api.VM.get_power_state(vm) == "Running":
                        api.VM.hard_shutdown(vm)
                    self.tally.count("VM.start, then its shutdown" if won else "VM.start cancelled")
            finally:
                close(session)

        return work

    # -- logins ----------------------------------------------------------------------

    def logins(self) -> None:
        session = login(self.url, "soak-login")
        close(session)
        self.tally.count("correct login + logout")

    def wrong_login(self, user: Callable[[], str]) -> Callable[[], None]:
        def work() -> None:
            session = XenAPI.Session(self.url)
            try:
                session.xenapi.login_with_password(user(), "wrong", "1.0", "soak")
            except XenAPI.Failure:
                self.tally.count("failed login answered")
            finally:
                session("close")()

        return work

    # -- connections and waiters -----------------------------------------------------------

    def one_call_per_connection(self, session: str) -> Callable[[], None]:
        def work() -> None:
            proxy = xmlrpc.client.ServerProxy(self.url)
            proxy.pool.get_all(session)
            proxy("close")()
            self.tally.count("connect, one call, hang up")
            time.sleep(CHURN_PAUSE_S)

        return work

    def held_connections(self, count: int, trickle: bool) -> None:
        """Keep `count` connections open, idle or sending a header byte a second; count
        the ones the server closes and replace them."""
        kind = "slow connection cut" if trickle else "idle connection closed"
        held: list[socket.socket] = []
        try:
            while self.running():
                while len(held) < count:
                    connection = socket.create_connection(self.address)
                    if trickle:
                        connection.sendall(b"POST / HTTP/1.1\r\n")
                    held.append(connection)
                readable, _, _ = select.select(held, [], [], 1.0)
                for connection in held[:]:
                    closed = connection in readable and _at_end(connection)
                    if not closed and trickle:
                        try:
                            connection.sendall(b"X")
                        except (BrokenPipeError, ConnectionResetError):
                            closed = True
                    if closed:
                        held.remove(connection)
                        connection.close()
                        self.tally.count(kind)
        finally:
            for connection in held:
                connection.close()

    def watcher(self) -> None:
        session = login(self.url, "soak-watcher")
        try:
            token = session.xenapi.event_from(WATCHED, "", 0.0)["token"]
            while self.running():
                timeout = min(30.0, max(0.1, self.deadline - time.monotonic()))
                batch = session.xenapi.event_from(WATCHED, token, timeout)
                token = batch["token"]
                self.tally.count("event.from batch taken")
        finally:
            close(session)

    def hang_ups(self, session: str, token: str) -> Callable[[], None]:
        """event.from on the pool, which nothing changes: kept, each would wait an hour."""
        body = xmlrpc.client.dumps((session, ["pool"], token, 3600.0), "event.from").encode()
        request = (
            f"POST / HTTP/1.1\r\nHost: {self.address[0]}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

        def work() -> None:
            with socket.create_connection(self.address) as connection:
                connection.sendall(request)
            self.tally.count("event.from hung up")
            time.sleep(1 / HANG_UPS_PER_S)

        return work

    # -- the server's state ----------------------------------------------------------------

    def sample(self) -> None:
        session = login(self.url, "soak-sampler")
        try:
            while self.running():
                now = time.monotonic() - self.tally.started
                rss, cpu = self.server.sample()
                self.samples.rss_mib.append((now, rss))
                self.samples.cpu_s.append((now, cpu))
                files = len(os.listdir(f"/proc/{self.server.process.pid}/fd"))
                self.samples.open_files.append((now, files))
                if len(self.samples.rss_mib) % 5 == 1:
                    counts = session.xenapi.event_from(["pool"], "", 0.0)["valid_ref_counts"]
                    self.samples.tasks.append((now, int(counts["task"])))
                time.sleep(1.0)
        finally:
            close(session)

    def run(self, root_session: str, token: str) -> None:
        halted = self.vms[1 : 1 + CANCELLERS]
        jobs: list[tuple[str, Callable[[], None]]] = [
            ("sampler", self.sample),
            ("probe", self.probe_get_record),
            ("probe async", self.probe_async),
            ("tasks", self.tasks_left),
            *((f"cancel {vm}", self.canceller(vm)) for vm in halted),
            ("logins", self.logins),
            *(
                ("random guesses", self.wrong_login(lambda: f"nobody-{random.random()}"))
                for _ in range(RANDOM_GUESSERS)
            ),
            *(
                ("operator guesses", self.wrong_login(lambda: "operator"))
                for _ in range(OPERATOR_GUESSERS)
            ),
            ("churn", self.one_call_per_connection(root_session)),
            ("idle", lambda: self.held_connections(IDLE_CONNECTIONS, trickle=False)),
            ("slow", lambda: self.held_connections(SLOW_CONNECTIONS, trickle=True)),
            *(("watcher", self.watcher) for _ in range(WATCHERS)),
            ("hang-ups", self.hang_ups(root_session, token)),
        ]
        threads = [threading.Thread(target=self.guarded(n, job), daemon=True) for n, job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, self.deadline + LINGER_S - time.monotonic()))


def _at_end(connection: socket.socket) -> bool:
    """Whether the server has closed `connection` (which has something to read)."""
    try:
        return connection.recv(4096) == b""
    except ConnectionResetError:  # closed with our unread header bytes: a reset
        return True


def add_operator(state: Path) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "xenmem.cli.main", "user", "add", "operator"),
            *("--role", "pool-operator", "--state", str(state / "db")),
        ],
        input=OPERATOR_PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


def print_report(soak: Soak, seconds: float, window_s: float) -> None:
    first = (WARM_UP_S, WARM_UP_S + window_s)
    last = (seconds - window_s, seconds)
    early, late = soak.tally.rates(*first), soak.tally.rates(*last)
    samples = soak.samples
    print(
        f"{seconds:.0f} s; windows {first[0]:.0f}-{first[1]:.0f} s, {last[0]:.0f}-{last[1]:.0f} s"
    )
    print("| measure | first window | last window |\n|---|---:|---:|")
    for label, series in (
        ("server RSS, MiB", samples.rss_mib),
        ("server open files", samples.open_files),
        ("tasks in the database", samples.tasks),
    ):
        before, after = Samples.mean(series, *first), Samples.mean(series, *last)
        print(f"| {label} | {before:,.1f} | {after:,.1f} |")
    print(
        f"| server CPU, % of one core | {100 * samples.cpu_share(*first):.0f} "
        f"| {100 * samples.cpu_share(*last):.0f} |"
    )
    per_operation = [
        1000 * samples.cpu_share(*span) / max(1e-9, sum(rates.values()))
        for span, rates in ((first, early), (last, late))
    ]
    print(f"| server CPU per operation, ms | {per_operation[0]:.2f} | {per_operation[1]:.2f} |")
    for kind in sorted(set(early) | set(late)):
        print(f"| {kind}, per s | {early[kind]:,.2f} | {late[kind]:,.2f} |")
    load = float(Path("/proc/loadavg").read_text().split()[0])
    print(f"unexpected errors: {dict(soak.errors) or 'none'}")
    print(f"machine load average at the end: {load:.1f} on {os.cpu_count()} CPUs")


@dataclass(frozen=True)
class QuietProbe:
    """One probe run alone: calls per second, and the server's CPU ms per call."""

    rate: float
    cpu_ms: float


def quiet_probes(server: Server, vm: str, seconds: float) -> dict[str, QuietProbe]:
    """Each probe alone for `seconds` on one keep-alive connection, nothing else running."""
    session = login(server.url, "soak-quiet-probe")
    api = session.xenapi
    host = api.host.get_all()[0]

    def get_record() -> None:
        api.VM.get_record(vm)

    def async_call() -> None:
        api.task.destroy(api.Async.host.compute_free_memory(host))

    probes = {"VM.get_record": get_record, "Async call + task.destroy": async_call}
    results = {}
    for name, call in probes.items():
        calls, cpu_before = 0, server.sample()[1]
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            call()
            calls += 1
        elapsed = time.monotonic() - started
        cpu = server.sample()[1] - cpu_before
        results[name] = QuietProbe(rate=calls / elapsed, cpu_ms=1000 * cpu / calls)
    close(session)
    return results


def print_quiet(before: dict[str, QuietProbe], after: dict[str, QuietProbe]) -> None:
    print("| probe alone | before the mix | after the mix |\n|---|---:|---:|")
    for name, first in before.items():
        last = after[name]
        print(f"| {name}, calls/s | {first.rate:,.1f} | {last.rate:,.1f} |")
        print(f"| {name}, server CPU ms per call | {first.cpu_ms:.2f} | {last.cpu_ms:.2f} |")


@dataclass(frozen=True)
class SoakResult:
    before: dict[str, QuietProbe]
    after: dict[str, QuietProbe]
    soak: Soak


def run(seconds: float, quiet: float, *serve_options: str) -> SoakResult:
    """The probes alone, the mix for `seconds`, the probes alone again."""
    with tempfile.TemporaryDirectory(prefix="xenmem-soak-") as state:
        server = start_server(Path(state), 1.0, *serve_options)
        try:
            add_operator(Path(state))
            setup = login(server.url, "soak-setup")
            vms = [new_vm(setup.xenapi, f"soak-{i}") for i in range(1 + CANCELLERS)]
            token = setup.xenapi.event_from(["pool"], "", 0.0)["token"]
            before = quiet_probes(server, vms[0], quiet)
            soak = Soak(server, seconds, vms)
            soak.run(setup.handle, token)
            after = quiet_probes(server, vms[0], quiet)
            close(setup)
        finally:
            server.stop()
    return SoakResult(before=before, after=after, soak=soak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument(
        "--quiet", type=float, default=10.0, help="seconds of each probe alone, before and after"
    )
    args = parser.parse_args()
    result = run(args.seconds, args.quiet)
    print_quiet(result.before, result.after)
    print()
    print_report(result.soak, args.seconds, args.window)


if __name__ == "__main__":
    main()
