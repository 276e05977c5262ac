"""Load: many concurrent XenAPI clients on loopback for a while (BENCHMARKS.md, "Load").

A real `xenmem serve` (a pool of four 32 GiB hosts, real time) and `--clients` clients of
the official SDK, spread over `--processes` client processes (threads inside each, one
session and keep-alive connection per client):

- watchers (1 in 8) sit in `event.from` (30 s timeout) on VM, VM_metrics, host and
  host_metrics all the time, and count the events they get;
- writers (1 in 4) own two VMs each and change them: set_memory_dynamic_range on a running
  VM (most calls), clean_shutdown then start;
- readers (the rest) read: VM.get_record, VM.get_all_records, host.get_record,
  host.compute_free_memory, host.get_memory_ledger, VM_metrics.get_memory_actual.

Each client waits a random think time (uniform in [0, 2 × --think-ms]) between calls.
Every call's latency is measured in the client; errors are counted per code: XenAPI
refusals a busy pool legitimately gives (HOST_NOT_ENOUGH_FREE_MEMORY, NO_HOSTS_AVAILABLE,
VMS_FAILED_TO_COOPERATE) are expected, anything else (INTERNAL_ERROR, a transport error)
is not. The server's RSS and CPU time are sampled once a second. At the end the books
must balance: no reservation marker or operation left, compute_free_memory equal to
xapi's formula from the records.

    .venv/bin/python -m bench.load [--clients 64] [--seconds 60] [--processes 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import XenAPI

PASSWORD = "load"
MIB = 2**20
GIB = 2**30
_URL = re.compile(r"XenAPI at (http://\S+/)")
POOL = """
[pool]
name = "load"
""" + "".join(
    f"""
[[host]]
name = "h{i}"
memory = "32GiB"
cpus = 16
"""
    for i in range(1, 5)
)
EXPECTED_REFUSALS = frozenset(
    {"HOST_NOT_ENOUGH_FREE_MEMORY", "NO_HOSTS_AVAILABLE", "VMS_FAILED_TO_COOPERATE"}
)
EVENT_CLASSES = ["vm", "vm_metrics", "host", "host_metrics"]
EVENT_TIMEOUT_S = 30.0
WRITER_VMS = 2
BACKGROUND_VMS = 16


# -- the server ------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]

    def sample(self) -> tuple[float, float]:
        """(RSS in MiB, CPU seconds used so far) from /proc."""
        rss = float("nan")
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return rss, cpu

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.communicate(timeout=30)


def start_server(state: Path, time_scale: float, *options: str) -> Server:
    """`xenmem serve` on the four-host pool, with more `options` for serve."""
    pool = state / "pool.toml"
    pool.write_text(POOL)
    env = {**os.environ, "XENMEM_ROOT_PASSWORD": PASSWORD}
    argv = [sys.executable, "-m", "xenmem.cli.main", "serve", "--port", "0"]
    argv += ["--state", str(state / "db"), "--pool", str(pool), "--time-scale", str(time_scale)]
    argv += options
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if match := _URL.search(line):
            return Server(url=match.group(1), process=process)
    raise RuntimeError("xenmem serve did not start")


def login(url: str, name: str) -> XenAPI.Session:
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", PASSWORD, "1.0", name)
    return session


def close(session: XenAPI.Session) -> None:
    try:
        session.xenapi.session.logout()
    finally:
        session("close")()


def new_vm(api: Any, name: str) -> str:
    return str(
        api.VM.create(
            {
                "name_label": name,
                "memory_static_min": str(256 * MIB),
                "memory_static_max": str(2 * GIB),
                "memory_dynamic_min": str(GIB),
                "memory_dynamic_max": str(2 * GIB),
                "VCPUs_max": "2",
                "VCPUs_at_startup": "2",
                "HVM_boot_policy": "BIOS order",
                "other_config": {"xenmem_boot_seconds": "2"},
            }
        )
    )


# -- clients ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkerPlan:
    """One client process: its clients' roles, and the pool's objects. JSON-able."""

    url: str
    seconds: float
    think_ms: float
    seed: int
    roles: list[str]  # "watcher" | "reader" | "writer:<vm>,<vm>"
    vms: list[str]
    hosts: list[str]


@dataclass
class Results:
    """Latencies in ms per call, outcomes per call and code, events seen by watchers."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: str, ms: float, outcome: str) -> None:
        with self.lock:
            self.latencies.setdefault(call, []).append(ms)
            self.outcomes.setdefault(call, Counter())[outcome] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "latencies": self.latencies,
            "outcomes": {k: dict(v) for k, v in self.outcomes.items()},
            "events": self.events,
        }

    def merge(self, other: Mapping[str, Any]) -> None:
        for call, values in other["latencies"].items():
            self.latencies.setdefault(call, []).extend(values)
        for call, counts in other["outcomes"].items():
            self.outcomes.setdefault(call, Counter()).update(counts)
        self.events += int(other["events"])


def timed(results: Results, name: str, call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    outcome, value = "ok", None
    try:
        value = call()
    except XenAPI.Failure as failure:
        outcome = str(failure.details[0])
    except Exception as error:  # transport errors are counted, never allowed
        outcome = type(error).__name__
    results.record(name, (time.perf_counter() - started) * 1000, outcome)
    return value


def reader(api: Any, plan: WorkerPlan, rng: random.Random, results: Results) -> None:
    roll = rng.random()
    vm, host = rng.choice(plan.vms), rng.choice(plan.hosts)
    if roll < 0.30:
        timed(results, "VM.get_record", lambda: api.VM.get_record(vm))
    elif roll < 0.40:
        timed(results, "VM.get_all_records", api.VM.get_all_records)
    elif roll < 0.50:
        timed(results, "host.get_record", lambda: api.host.get_record(host))
    elif roll < 0.75:
        timed(results, "host.compute_free_memory", lambda: api.host.compute_free_memory(host))
    elif roll < 0.90:
        timed(results, "host.get_memory_ledger", lambda: api.host.get_memory_ledger(host))
    else:
        metrics = timed(results, "VM.get_metrics", lambda: api.VM.get_metrics(vm))
        timed(
            results,
            "VM_metrics.get_memory_actual",
            lambda: api.VM_metrics.get_memory_actual(metrics),
        )


def writer(api: Any, vms: list[str], rng: random.Random, results: Results) -> None:
    vm = rng.choice(vms)
    state = timed(results, "VM.get_power_state", lambda: api.VM.get_power_state(vm))
    if state == "Halted":
        timed(results, "VM.start", lambda: api.VM.start(vm, False, False))
    elif rng.random() < 0.1:
        timed(results, "VM.clean_shutdown", lambda: api.VM.clean_shutdown(vm))
    else:
        low = str(rng.choice([512, 768, 1024, 1280]) * MIB)
        high = str(rng.choice([1536, 2048]) * MIB)
        timed(
            results,
            "VM.set_memory_dynamic_range",
            lambda: api.VM.set_memory_dynamic_range(vm, low, high),
        )


def client(plan: WorkerPlan, role: str, seed: int, results: Results) -> None:
    rng = random.Random(seed)
    session = login(plan.url, f"load-{seed}")
    api = session.xenapi
    deadline = time.monotonic() + plan.seconds
    token = ""
    try:
        if role == "watcher":
            token = api.event_from(EVENT_CLASSES, "", 0.0)["token"]
        while time.monotonic() < deadline:
            if role == "watcher":
                remaining = min(EVENT_TIMEOUT_S, max(0.1, deadline - time.monotonic()))
                wait = partial(api.event_from, EVENT_CLASSES, token, remaining)
                batch = timed(results, "event.from", wait)
                if batch is not None:
                    token = batch["token"]
                    with results.lock:
                        results.events += len(batch["events"])
                continue
            if role == "reader":
                reader(api, plan, rng, results)
            else:
                writer(api, role.split(":", 1)[1].split(","), rng, results)
            time.sleep(rng.uniform(0, 2 * plan.think_ms) / 1000)
    finally:
        close(session)


def run_worker(plan: WorkerPlan) -> Results:
    results = Results()
    threads = [
        threading.Thread(target=client, args=(plan, role, plan.seed * 1000 + i, results))
        for i, role in enumerate(plan.roles)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# -- the driver ------------------------------------------------------------------------


def roles(clients: int) -> list[str]:
    """1 in 8 watchers, 1 in 4 writers, the rest readers; interleaved so that every
    process gets its share."""
    pattern = ["reader", "writer", "reader", "watcher", "reader", "writer", "reader", "reader"]
    return [pattern[i % len(pattern)] for i in range(clients)]


def setup(url: str, writers: int, background: int) -> tuple[list[list[str]], list[str], list[str]]:
    """Create and start the VMs: two per writer, plus background ones nobody changes."""
    session = login(url, "load-setup")
    api = session.xenapi
    owned = [[new_vm(api, f"w{w}-{i}") for i in range(WRITER_VMS)] for w in range(writers)]
    others = [new_vm(api, f"bg{i}") for i in range(background)]
    for vm in [v for vms in owned for v in vms] + others:
        api.VM.start(vm, False, False)
    hosts = list(api.host.get_all())
    close(session)
    return owned, others, hosts


def books_balance(url: str) -> list[str]:
    """What is wrong with the books at rest (empty when they balance)."""
    session = login(url, "load-books")
    api = session.xenapi
    problems = []
    vms = api.VM.get_all_records()
    for vm, record in vms.items():
        if (
            record["scheduled_to_be_resident_on"] != "OpaqueRef:NULL"
            or record["current_operations"]
        ):
            problems.append(f"{vm} left with a reservation marker or an operation")
    for host, record in api.host.get_all_records().items():
        free = int(api.host_metrics.get_memory_total(record["metrics"]))
        free -= int(record["memory_overhead"])
        for vm in vms.values():
            if host in (vm["resident_on"], vm["scheduled_to_be_resident_on"]):
                free -= int(vm["memory_dynamic_min"]) + int(vm["memory_overhead"])
        if int(api.host.compute_free_memory(host)) != max(0, free):
            problems.append(f"{host}: compute_free_memory is not §4.2 from the records")
        ledger = {k: int(v) for k, v in api.host.get_memory_ledger(host).items()}
        parts = ["xen", "dom0", "reservations", "reserve", "free"]
        held = sum(ledger[p] for p in parts)
        held += sum(v for k, v in ledger.items() if k.endswith((":ram", ":overhead")))
        if held != ledger["total"] or ledger["free"] < 0:
            problems.append(f"{host}: ledger does not add up or is below zero")
    close(session)
    return problems


def start_workers(
    url: str,
    args: argparse.Namespace,
    *,
    owned: list[list[str]],
    vms: list[str],
    hosts: list[str],
    state: str,
) -> list[subprocess.Popen[str]]:
    """The client processes; each writes its results to `state`/worker-N.json (a file,
    not a pipe, so a large result cannot block it while nobody reads)."""
    all_roles, writer_vms = [], iter(owned)
    for role in roles(args.clients):
        all_roles.append(f"writer:{','.join(next(writer_vms))}" if role == "writer" else role)
    workers = []
    for p in range(args.processes):
        out = Path(state) / f"worker-{p}.json"
        plan = WorkerPlan(
            url=url,
            seconds=args.seconds,
            think_ms=args.think_ms,
            seed=p + 1,
            roles=all_roles[p :: args.processes],
            vms=vms,
            hosts=hosts,
        )
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.load",
                    "--worker",
                    json.dumps(asdict(plan)),
                    str(out),
                ],
                text=True,
            )
        )
    return workers


@dataclass
class Report:
    results: Results
    samples: list[tuple[float, float, float]]  # (seconds since start, RSS MiB, CPU s)
    seconds: float
    books: list[str]
    load_average: float  # the machine's 1-minute load average at the end

    def unexpected(self) -> dict[str, int]:
        bad: Counter[str] = Counter()
        for call, counts in self.results.outcomes.items():
            for outcome, n in counts.items():
                if outcome != "ok" and outcome not in EXPECTED_REFUSALS:
                    bad[f"{call}: {outcome}"] += n
        return dict(bad)


def run(args: argparse.Namespace) -> Report:
    with tempfile.TemporaryDirectory(prefix="xenmem-load-") as state:
        server = start_server(Path(state), args.time_scale)
        try:
            writers = sum(1 for r in roles(args.clients) if r == "writer")
            owned, background, hosts = setup(server.url, writers, args.background)
            vms = [v for group in owned for v in group] + background
            workers = start_workers(
                server.url, args, owned=owned, vms=vms, hosts=hosts, state=state
            )
            started = time.monotonic()
            samples = []
            while any(w.poll() is None for w in workers):
                rss, cpu = server.sample()
                samples.append((time.monotonic() - started, rss, cpu))
                time.sleep(1.0)
            elapsed = time.monotonic() - started
            results = Results()
            for p, worker in enumerate(workers):
                if worker.wait() != 0:
                    raise RuntimeError(f"a client process failed ({worker.returncode})")
                results.merge(json.loads((Path(state) / f"worker-{p}.json").read_text()))
            books = books_balance(server.url)
        finally:
            server.stop()
    load_average = float(Path("/proc/loadavg").read_text().split()[0])
    return Report(
        results=results,
        samples=samples,
        seconds=elapsed,
        books=books,
        load_average=load_average,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) in MiB per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def window(samples: list[tuple[float, float, float]], start: float, end: float) -> float:
    values = [rss for t, rss, _ in samples if start <= t < end]
    return statistics.fmean(values) if values else float("nan")


def print_report(report: Report, args: argparse.Namespace) -> None:
    # Rates over the time every client ran (the wall time adds client start-up).
    results, seconds = report.results, args.seconds
    print(
        f"{args.clients} clients in {args.processes} processes, {seconds:.0f} s each "
        f"({report.seconds:.0f} s wall), think time {args.think_ms:g} ms mean"
    )
    print("| call | calls | calls/s | p50 ms | p99 ms | max ms | refusals |")
    print("|---|---:|---:|---:|---:|---:|---|")
    total = 0
    for call in sorted(results.latencies):
        values = results.latencies[call]
        total += len(values) if call != "event.from" else 0
        refusals = {k: v for k, v in results.outcomes[call].items() if k != "ok"}
        print(
            f"| {call} | {len(values):,} | {len(values) / seconds:,.1f} | "
            f"{percentile(values, 50):.2f} | {percentile(values, 99):.2f} | "
            f"{max(values):.1f} | {refusals or ''} |"
        )
    every = sum(len(v) for v in results.latencies.values())
    print(f"all calls but event.from: {total / seconds:,.0f} calls/s")
    print(f"events delivered to watchers: {results.events:,}")
    print(f"unexpected errors: {report.unexpected() or 'none'}")
    print(f"books at the end: {report.books or 'balanced'}")
    samples = report.samples
    if samples:
        last = samples[-1][0]
        span = min(10.0, last / 3)  # the first seconds are client start-up (warm-up)
        points = [(t, rss) for t, rss, _ in samples if t >= span]
        cpu_s = samples[-1][2] - samples[0][2]
        cpu = cpu_s / max(1e-9, last)
        print(f"server CPU per call (all {every:,} calls): {1000 * cpu_s / max(1, every):.2f} ms")
        print(
            f"server RSS MiB: after {span:.0f} s of warm-up, first {span:.0f} s "
            f"{window(samples, span, 2 * span):.1f}, "
            f"last {span:.0f} s {window(samples, last - span, last + 1):.1f}, "
            f"min {min(s[1] for s in samples):.1f}, max {max(s[1] for s in samples):.1f}, "
            f"slope after warm-up {slope_per_minute(points):+.2f} MiB/min; "
            f"server CPU {100 * cpu:.0f} % of one core; "
            f"machine load average {report.load_average:.1f} on {os.cpu_count()} CPUs"
        )
        if last >= 120:
            print(
                f"server RSS MiB: first minute after warm-up "
                f"{window(samples, span, span + 60):.1f}, "
                f"last minute {window(samples, last - 60, last + 1):.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--think-ms", type=float, default=20.0)
    parser.add_argument(
        "--background",
        type=int,
        default=BACKGROUND_VMS,
        help="running VMs nobody changes, beside the writers' two each",
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per real second"
    )
    parser.add_argument("--json", type=Path, help="also write the raw report here")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        plan, out = args.worker
        results = run_worker(WorkerPlan(**json.loads(plan)))
        Path(out).write_text(json.dumps(results.as_json()))
        return
    report = run(args)
    print_report(report, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "samples": report.samples,
                    "outcomes": report.results.as_json()["outcomes"],
                    "events": report.results.events,
                }
            )
        )


if __name__ == "__main__":
    main()
