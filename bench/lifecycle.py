"""VM.start on a simulated pool: throughput and latency, and what placement costs.

Run: `.venv/bin/python -m bench.lifecycle [--vms N] [--hosts N]`.

The pool runs in process on the virtual clock, so the figures are the toolstack's own
CPU cost per call (admission, placement, the reservation through squeezed, building the
domain, the records), not simulated ballooning time, which is reported separately as
simulated seconds. Latency is wall time per `VM.start` body, measured with
`time.perf_counter`; placement is `choose_host` alone for one more VM, on pools whose
every host already runs the same number of VMs.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import statistics
import time
from typing import Any

from xenmem.cli.pool import start_simulated_pool
from xenmem.db import Store
from xenmem.toolstack import MESSAGES, Context
from xenmem.toolstack.admission import choose_host
from xenmem.toolstack.pool import PoolHost, PoolSpec
from xenmem.xen import VirtualClock
from xenmem.xenapi.model import INDEXES, RELATIONS, SUMS, decode_record, schemas

GIB = 2**30
MIB = 2**20


class BenchPool:
    def __init__(self, hosts: int, host_memory: int) -> None:
        spec = PoolSpec(
            name="bench",
            dmc=True,
            hosts=tuple(
                PoolHost(
                    name=f"h{i}",
                    memory=host_memory,
                    cpus=64,
                    dom0_memory=4 * GIB,
                    xen_memory=GIB,
                )
                for i in range(hosts)
            ),
        )
        self.clock = VirtualClock()
        store = Store(schemas(), relations=RELATIONS, indexes=INDEXES, sums=SUMS)
        runtime = asyncio.run(
            start_simulated_pool(store, spec, self.clock, draw=random.Random(7).random)
        )
        self.ctx = Context(store=store, runtime=runtime)

    def call(self, name: str, *args: Any) -> Any:
        result = MESSAGES[name](self.ctx, *args)
        return asyncio.run(result) if inspect.iscoroutine(result) else result

    def new_vm(self, number: int) -> str:
        dynamic_min = (512 + 512 * (number % 4)) * MIB
        record = decode_record(
            "VM",
            {
                "name_label": f"vm{number}",
                "HVM_boot_policy": "BIOS order",
                "memory_static_min": 256 * MIB,
                "memory_dynamic_min": dynamic_min,
                "memory_dynamic_max": 2 * dynamic_min,
                "memory_static_max": 4 * GIB,
                "VCPUs_max": 2,
                "VCPUs_at_startup": 2,
                "other_config": {"xenmem_boot_seconds": "0"},
            },
        )
        return str(self.call("VM.create", record))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report_starts(vms: int, hosts: int) -> None:
    # The VMs' dynamic minima fit in the pool but their maxima do not: later starts must
    # have squeezed balloon earlier guests down.
    pool = BenchPool(hosts, 128 * GIB)
    refs = [pool.new_vm(i) for i in range(vms)]
    latencies = []
    simulated_start = pool.clock.now()
    began = time.perf_counter()
    for vm in refs:
        before = time.perf_counter()
        pool.call("VM.start", vm, False, False)
        latencies.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - began
    running = sum(1 for r in pool.ctx.store.records("VM").values() if r["power_state"] == "Running")
    print(f"VM.start, {vms} VMs onto {hosts} hosts of 128 GiB (in process, virtual clock)")
    print(f"  started      {running - hosts} of {vms}")
    print(f"  throughput   {vms / elapsed:8.1f} starts/s (wall)")
    print(f"  latency p50  {1000 * statistics.median(latencies):8.2f} ms")
    print(f"  latency p99  {1000 * percentile(latencies, 0.99):8.2f} ms")
    print(f"  first 100    {1000 * statistics.mean(latencies[:100]):8.2f} ms mean")
    print(f"  last 100     {1000 * statistics.mean(latencies[-100:]):8.2f} ms mean")
    print(f"  simulated    {pool.clock.now() - simulated_start:8.1f} s of ballooning and boots")


def report_placement(sizes: list[int], per_host: int) -> None:
    print(f"\nplacement (choose_host) with {per_host} VMs running on every host")
    print(f"  {'hosts':>6} {'VMs':>6} {'per call':>10}")
    for hosts in sizes:
        pool = BenchPool(hosts, 256 * GIB)
        for i in range(hosts * per_host):
            pool.call("VM.start", pool.new_vm(i), False, False)
        probe = pool.new_vm(10**6)
        repeats = max(20, 2000 // hosts)
        began = time.perf_counter()
        for _ in range(repeats):
            choose_host(pool.ctx, probe)
        per_call = (time.perf_counter() - began) / repeats
        print(f"  {hosts:>6} {hosts * per_host:>6} {1000 * per_call:>8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=10)
    args = parser.parse_args()
    report_starts(args.vms, args.hosts)
    report_placement([1, 4, 16, 64], args.per_host)


if __name__ == "__main__":
    main()
