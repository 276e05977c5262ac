"""A storm of concurrent VM lifecycle and memory calls, and the books it must keep.

Used by the race tests: clients (threads here, and threads in worker processes started as
`python -m tests.reliability.storm PLAN-JSON`) start, migrate, suspend,
resume, shut down and resize a shared set of VMs through the official SDK, each call's
outcome recorded as `ok` or its XenAPI error code. A watcher polls the records, every
host's `compute_free_memory` and memory ledger while they run, and `check_books` lists
every broken invariant of one observation.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import XenAPI

from tests.serving import PATIENCE_S
from xenmem.toolstack.ledger import PARTS

MIB = 2**20

# The XenAPI errors each message may answer under contention (xapi-memory.md §3.4, §4,
# squeezer.md §5.4); anything else (INTERNAL_ERROR, a transport error) is a bug.
_LIFECYCLE = frozenset({"VM_BAD_POWER_STATE", "OTHER_OPERATION_IN_PROGRESS"})
_ADMISSION = frozenset({"HOST_NOT_ENOUGH_FREE_MEMORY", "VMS_FAILED_TO_COOPERATE"})
ALLOWED: Mapping[str, frozenset[str]] = {
    "VM.start": _LIFECYCLE | _ADMISSION | {"NO_HOSTS_AVAILABLE"},
    "VM.start_on": _LIFECYCLE | _ADMISSION,
    "VM.resume": _LIFECYCLE | _ADMISSION | {"NO_HOSTS_AVAILABLE"},
    "VM.resume_on": _LIFECYCLE | _ADMISSION,
    "VM.pool_migrate": _LIFECYCLE | _ADMISSION,
    "VM.clean_shutdown": _LIFECYCLE,
    "VM.hard_shutdown": _LIFECYCLE,
    "VM.suspend": _LIFECYCLE,
    "VM.set_memory_dynamic_range": _LIFECYCLE | _ADMISSION | {"MEMORY_CONSTRAINT_VIOLATION_ORDER"},
    "VM.set_memory_target_live": _LIFECYCLE
    | {"HOST_NOT_ENOUGH_FREE_MEMORY", "MEMORY_CONSTRAINT_VIOLATION_ORDER"},
}


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one group of storm clients does; JSON-able, to cross a process boundary."""

    url: str
    password: str
    vms: list[str]
    hosts: list[str]
    seconds: float
    seed: int
    threads: int
    # dynamic ranges drawn for set_memory_dynamic_range, in MiB (some out of order)
    dynamic_mins: list[int] = field(default_factory=lambda: [256, 384, 512, 768, 1024])
    dynamic_maxes: list[int] = field(default_factory=lambda: [512, 768, 1024])


# The symptom of a build whose reservation another guest took (a rebalance after a
# dynamic_min raise; test_reservation_race): kept apart so that a failure names it.
KNOWN_BUILD_FAILURE = "cannot build domain"
_BUILDS = frozenset({"VM.start", "VM.start_on", "VM.resume", "VM.resume_on", "VM.pool_migrate"})


@dataclass
class Tally:
    """Outcomes per message (`ok` or the error code), and what should never happen."""

    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, message: str, outcome: str, detail: str = "") -> None:
        with self.lock:
            self.outcomes.setdefault(message, Counter())[outcome] += 1
            if outcome == "ok" or outcome in ALLOWED[message]:
                return
            line = f"{message}: {outcome} {detail}".strip()
            if message in _BUILDS and outcome == "INTERNAL_ERROR" and KNOWN_BUILD_FAILURE in detail:
                self.known.append(line)
            else:
                self.unexpected.append(line)

    def merge(self, other: Mapping[str, Any]) -> None:
        with self.lock:
            for message, counts in other["outcomes"].items():
                self.outcomes.setdefault(message, Counter()).update(counts)
            self.unexpected.extend(other["unexpected"])
            self.known.extend(other["known"])

    def as_json(self) -> dict[str, Any]:
        return {
            "outcomes": {m: dict(c) for m, c in self.outcomes.items()},
            "unexpected": self.unexpected,
            "known": self.known,
        }

    def count(self, outcome: str) -> int:
        with self.lock:
            return sum(c[outcome] for c in self.outcomes.values())

    def succeeded(self, message: str) -> int:
        with self.lock:
            return self.outcomes.get(message, Counter())["ok"]


def _choose(api: Any, plan: Plan, rng: random.Random, vm: str) -> tuple[str, Callable[[], Any]]:
    """A call that makes sense for the VM's power state as this client last saw it; by
    the time it arrives, others may have changed that state (which is the point)."""
    state = api.VM.get_power_state(vm)
    host = rng.choice(plan.hosts)
    if state == "Halted":
        if rng.random() < 0.3:
            return _resize(api, plan, rng, vm)
        if rng.random() < 0.5:
            return "VM.start", lambda: api.VM.start(vm, False, False)
        return "VM.start_on", lambda: api.VM.start_on(vm, host, False, False)
    if state == "Suspended":
        if rng.random() < 0.5:
            return "VM.resume", lambda: api.VM.resume(vm, False, False)
        return "VM.resume_on", lambda: api.VM.resume_on(vm, host, False, False)
    roll = rng.random()
    if roll < 0.35:
        return "VM.pool_migrate", lambda: api.VM.pool_migrate(vm, host, {})
    if roll < 0.65:
        return _resize(api, plan, rng, vm)
    if roll < 0.75:
        target = str(rng.choice(plan.dynamic_mins) * MIB)
        return "VM.set_memory_target_live", lambda: api.VM.set_memory_target_live(vm, target)
    if roll < 0.82:
        return "VM.suspend", lambda: api.VM.suspend(vm)
    if roll < 0.91:
        return "VM.clean_shutdown", lambda: api.VM.clean_shutdown(vm)
    return "VM.hard_shutdown", lambda: api.VM.hard_shutdown(vm)


def _resize(api: Any, plan: Plan, rng: random.Random, vm: str) -> tuple[str, Callable[[], Any]]:
    low = str(rng.choice(plan.dynamic_mins) * MIB)
    high = str(rng.choice(plan.dynamic_maxes) * MIB)
    return "VM.set_memory_dynamic_range", lambda: api.VM.set_memory_dynamic_range(vm, low, high)


def client(plan: Plan, seed: int, tally: Tally, enough: Callable[[], bool]) -> None:
    """One client: its own SDK session, random calls on the shared VMs for `plan.seconds`
    and then until `enough()` holds (or, in a hung run, PATIENCE_S have passed)."""
    rng = random.Random(seed)
    session = XenAPI.Session(plan.url)
    try:
        session.xenapi.login_with_password("root", plan.password, "1.0", f"storm-{seed}")
        started = time.monotonic()
        while not (time.monotonic() - started >= plan.seconds and enough()):
            if time.monotonic() - started >= PATIENCE_S:
                break
            vm = rng.choice(plan.vms)
            try:
                message, call = _choose(session.xenapi, plan, rng, vm)
            except XenAPI.Failure as failure:
                tally.record("VM.get_power_state", "?", repr(failure.details))
                continue
            try:
                call()
            except XenAPI.Failure as failure:
                details = list(failure.details)
                tally.record(message, str(details[0]), repr(details))
            except Exception as error:  # a transport error is never an allowed answer
                tally.record(message, type(error).__name__, repr(error))
            else:
                tally.record(message, "ok")
        session.xenapi.session.logout()
    except Exception as error:
        with tally.lock:
            tally.unexpected.append(f"client {seed}: {error!r}")
    finally:
        session("close")()  # the SDK closes its keep-alive connection


def run_threads(plan: Plan, tally: Tally, enough: Callable[[], bool] = lambda: True) -> None:
    """`plan.threads` clients as threads of this process; returns when all are done."""
    threads = [
        threading.Thread(target=client, args=(plan, plan.seed * 1000 + i, tally, enough))
        for i in range(plan.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- the books -----------------------------------------------------------------------


@dataclass(frozen=True)
class HostBooks:
    """A host's fixed numbers: host_metrics.memory_total and host.memory_overhead."""

    total: int
    overhead: int


def host_books(api: Any) -> dict[str, HostBooks]:
    books = {}
    for host, record in api.host.get_all_records().items():
        total = int(api.host_metrics.get_memory_total(record["metrics"]))
        books[host] = HostBooks(total=total, overhead=int(record["memory_overhead"]))
    return books


def committed(vms: Mapping[str, Mapping[str, Any]], host: str) -> int:
    """Σ (dynamic_min + memory_overhead) of the VMs resident on or scheduled to `host`;
    a VM in both lists counts twice, as in xapi (xapi-memory.md §4.2)."""
    total = 0
    for record in vms.values():
        cost = int(record["memory_dynamic_min"]) + int(record["memory_overhead"])
        total += cost * [record["resident_on"], record["scheduled_to_be_resident_on"]].count(host)
    return total


def check_ledger(host: str, ledger: Mapping[str, Any]) -> list[str]:
    """The ledger's parts add up to total and none is below zero except `free` (see
    `unreserved_free`)."""
    values = {key: int(value) for key, value in ledger.items()}
    parts = {k: v for k, v in values.items() if k in PARTS}
    parts |= {k: v for k, v in values.items() if k.endswith((":ram", ":overhead"))}
    problems = [
        f"{host}: ledger part {k} = {v} < 0"
        for k, v in parts.items()
        if v < 0 and k not in ("free", "unaccounted")
    ]
    if sum(parts.values()) != values["total"]:
        problems.append(f"{host}: ledger parts sum {sum(parts.values())} != {values['total']}")
    return problems


def unreserved_free(ledger: Mapping[str, Any]) -> int:
    """Xen's free memory less squeezed's reservations (the ledger's free + reserve): below
    zero when a reservation is no longer backed by free memory (the known bug above)."""
    return int(ledger["free"]) + int(ledger["reserve"])


def check_books(books: Mapping[str, HostBooks], vms: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """No host is overcommitted in the database at this moment (§4.2's sum never exceeds
    what the host has for VMs)."""
    problems = []
    for host, book in books.items():
        used = committed(vms, host)
        if used > book.total - book.overhead:
            problems.append(
                f"{host}: resident+scheduled {used} > total − overhead {book.total - book.overhead}"
            )
    return problems


def expected_free(book: HostBooks, vms: Mapping[str, Mapping[str, Any]], host: str) -> int:
    """host.compute_free_memory computed from the records alone (§4.2)."""
    return max(0, book.total - book.overhead - committed(vms, host))


@dataclass
class Watcher:
    """Polls the pool while the storm runs and keeps every broken invariant it sees."""

    url: str
    password: str
    observations: int = 0
    problems: list[str] = field(default_factory=list)
    unbacked_reservations: list[str] = field(default_factory=list)
    # Ledgers whose `unaccounted` part was not 0: memory lost (> 0) or counted twice (< 0).
    unaccounted: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = XenAPI.Session(self.url)
        try:
            session.xenapi.login_with_password("root", self.password, "1.0", "storm-watcher")
            api = session.xenapi
            books = host_books(api)
            while not self.stop.is_set():
                self.observe(api, books)
            session.xenapi.session.logout()
        except Exception as error:
            self.problems.append(f"watcher: {error!r}")
        finally:
            session("close")()

    def observe(self, api: Any, books: Mapping[str, HostBooks]) -> None:
        vms = api.VM.get_all_records()
        self.problems += check_books(books, vms)
        for host, book in books.items():
            free = int(api.host.compute_free_memory(host))
            if not 0 <= free <= book.total - book.overhead:
                self.problems.append(f"{host}: compute_free_memory {free} out of range")
            ledger = api.host.get_memory_ledger(host)
            self.problems += check_ledger(host, ledger)
            if lost := int(ledger["unaccounted"]):
                self.unaccounted.append(f"{host}: {lost}")
            if unreserved_free(ledger) < 0:
                self.unbacked_reservations.append(f"{host}: {unreserved_free(ledger)}")
        self.observations += 1


def main() -> None:
    """Worker process: a JSON Plan as the argument, the Tally as JSON on stdout."""
    plan = Plan(**json.loads(sys.argv[1]))
    tally = Tally()
    run_threads(plan, tally)
    json.dump(tally.as_json(), sys.stdout)


if __name__ == "__main__":
    main()
