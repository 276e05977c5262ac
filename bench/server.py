"""XenAPI server throughput and latency (BENCHMARKS.md, "The XenAPI server").

For 1,000 and 10,000 VMs in the database: VM.get_record and host.compute_free_memory
through the official SDK (XML-RPC) and over JSON-RPC v2, with 1 and 16 concurrent
clients (threads, one keep-alive connection each), each cell for a fixed duration; beside
the same clients against a bare ASGI endpoint on the same HTTP stack (bench.ceiling).
Reports calls/s, p50 and p99 latency, and the server's RSS.

    .venv/bin/python -m bench.server [--seconds 3] [--vms 1000 10000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import XenAPI

from xenmem.db import Store
from xenmem.db.sqlite import connect
from xenmem.xenapi.model import RELATIONS, SUMS, schemas

PASSWORD = "bench"
GIB = 2**30
_URL = re.compile(r"(http://\S+/)")

Call = Callable[[], object]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.communicate(timeout=30)


def _start(argv: list[str], env: dict[str, str]) -> Server:
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
    raise RuntimeError(f"{argv} did not start")


def start_xenmem(state: Path) -> Server:
    env = {**os.environ, "XENMEM_ROOT_PASSWORD": PASSWORD}
    argv = [sys.executable, "-m", "xenmem.cli.main", "serve", "--port", "0", "--state", str(state)]
    return _start(argv, env)


def start_ceiling() -> Server:
    return _start([sys.executable, "-m", "bench.ceiling"], dict(os.environ))


class JsonClient:
    """JSON-RPC v2 over one keep-alive connection, as XO sends it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port)

    def call(self, method: str, *params: object) -> object:
        body = json.dumps({"id": 0, "jsonrpc": "2.0", "method": method, "params": list(params)})
        self._conn.request(
            "POST", "/jsonrpc", body=body, headers={"Content-Type": "application/json"}
        )
        reply = json.loads(self._conn.getresponse().read())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        self._conn.close()


def _vm_record(index: int) -> dict[str, object]:
    return {
        "name_label": f"bench-{index}",
        "memory_static_min": GIB,
        "memory_static_max": 4 * GIB,
        "memory_dynamic_min": 2 * GIB,
        "memory_dynamic_max": 4 * GIB,
        "VCPUs_max": 2,
        "VCPUs_at_startup": 2,
        "HVM_boot_policy": "BIOS order",
    }


def populate(url: str, count: int) -> None:
    """Create `count` VMs over JSON-RPC with 4 clients."""

    def create(indices: range) -> None:
        client = JsonClient(url)
        session = client.call("session.login_with_password", "root", PASSWORD)
        for index in indices:
            client.call("VM.create", session, _vm_record(index))
        client.close()

    step = (count + 3) // 4
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, [range(i, min(i + step, count)) for i in range(0, count, step)]))


def make_resident(state: Path) -> None:
    """Mark every bench VM resident on a host, alternately, directly in the stopped
    server's database (VM.start comes with the next issue): compute_free_memory then
    sums over half of them per host."""
    conn = connect(state)
    store = Store(schemas(), relations=RELATIONS, sums=SUMS, conn=conn)
    hosts = sorted(store.records("host"))
    with store.transaction() as tx:
        for index, (ref, record) in enumerate(sorted(store.records("VM").items())):
            if not record["is_control_domain"]:
                tx.update(
                    "VM", ref, {"resident_on": hosts[index % len(hosts)], "power_state": "Running"}
                )
    conn.close()


def measure(
    make_call: Callable[[], tuple[Call, Callable[[], None]]], clients: int, seconds: float
) -> tuple[float, float, float]:
    """(calls/s, p50 ms, p99 ms) with `clients` threads calling for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(slot: int) -> None:
        call, close = make_call()
        call()  # warm the connection
        barrier.wait()
        mine = latencies[slot]
        while (now := time.perf_counter()) < stop_at[0]:
            call()
            mine.append(time.perf_counter() - now)
        close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds + 0.05
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flat = sorted(x for per in latencies for x in per)
    p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))]
    return len(flat) / elapsed, statistics.median(flat) * 1e3, p99 * 1e3


def sdk_caller(url: str, method: str, arg: str) -> Callable[[], tuple[Call, Callable[[], None]]]:
    def make() -> tuple[Call, Callable[[], None]]:
        session = XenAPI.Session(url)
        session.xenapi.login_with_password("root", PASSWORD, "1.0", "bench")
        cls, name = method.split(".")
        function = getattr(getattr(session.xenapi, cls), name)

        def close() -> None:
            session.xenapi.session.logout()
            session("close")()

        return (lambda: function(arg)), close

    return make


def json_caller(url: str, method: str, arg: str) -> Callable[[], tuple[Call, Callable[[], None]]]:
    def make() -> tuple[Call, Callable[[], None]]:
        client = JsonClient(url)
        session = client.call("session.login_with_password", "root", PASSWORD)

        def close() -> None:
            client.call("session.logout", session)
            client.close()

        return (lambda: client.call(method, session, arg)), close

    return make


def ceiling_caller(url: str, transport: str) -> Callable[[], tuple[Call, Callable[[], None]]]:
    def make() -> tuple[Call, Callable[[], None]]:
        if transport == "SDK":
            proxy = XenAPI.Session(url)
            return (lambda: proxy.xenapi.VM.get_record("x")), proxy("close")
        client = JsonClient(url)
        return (lambda: client.call("VM.get_record", "x")), client.close

    return make


def _row(label: str, result: tuple[float, float, float]) -> str:
    rate, p50, p99 = result
    return f"| {label} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--vms", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.seconds:g} s per cell")
    print("\n| case | calls/s | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    ceiling = start_ceiling()
    for transport in ("SDK", "JSON"):
        for clients in (1, 16):
            result = measure(ceiling_caller(ceiling.url, transport), clients, args.seconds)
            print(_row(f"ceiling (constant), {transport}, {clients} client(s)", result), flush=True)
    ceiling.stop()
    rss: list[str] = []
    for count in args.vms:
        with tempfile.TemporaryDirectory() as state:
            server = start_xenmem(Path(state))
            started = time.perf_counter()
            populate(server.url, count)
            created = time.perf_counter() - started
            rss.append(
                f"{count} VMs: RSS {server.rss_mib():.0f} MiB after creating them "
                f"({count / created:,.0f} VM.create/s over JSON-RPC, 4 clients)"
            )
            server.stop()
            make_resident(Path(state))
            started = time.perf_counter()
            server = start_xenmem(Path(state))
            rss.append(
                f"{count} VMs: restart until serving {time.perf_counter() - started:.2f} s, "
                f"RSS {server.rss_mib():.0f} MiB"
            )
            probe = JsonClient(server.url)
            session = probe.call("session.login_with_password", "root", PASSWORD)
            vms = probe.call("VM.get_by_name_label", session, f"bench-{count // 2}")
            host = probe.call("host.get_all", session)
            assert isinstance(vms, list) and isinstance(host, list)
            probe.call("session.logout", session)
            probe.close()
            for method, arg in (("VM.get_record", vms[0]), ("host.compute_free_memory", host[0])):
                for transport, caller in (("SDK", sdk_caller), ("JSON", json_caller)):
                    for clients in (1, 16):
                        result = measure(
                            caller(server.url, method, str(arg)), clients, args.seconds
                        )
                        label = f"{method}, {count:,} VMs, {transport}, {clients} client(s)"
                        print(_row(label, result), flush=True)
            rss.append(f"{count} VMs: RSS {server.rss_mib():.0f} MiB after the run")
            server.stop()
    print()
    for line in rss:
        print(f"- {line}")


if __name__ == "__main__":
    main()
