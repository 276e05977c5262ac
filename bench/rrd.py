"""RRD benchmark: what recording and serving the pool's RRDs costs, per VM count.

Run: `.venv/bin/python -m bench.rrd`. Two hosts (AVERAGE/MIN/MAX archives) and N VMs
(AVERAGE only, three sources each), fed 130 samples; then XO's 5-s query (`select`, on
the event loop; rendering, in a thread), and keeping them (copy on the loop; dump in a
thread). Median CPU time (`time.process_time`) of 5 runs of each step: the machine is shared.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from xenmem.rrd import Rrd, SourceSpec, archives, copy, create, select, to_json, to_xml, update
from xenmem.rrd.persist import dump

T0 = 1_800_000_000.0
SAMPLES = 130
HOST_SOURCES = ("memory_free_kib", "memory_reclaimed", "memory_reclaimed_max", "memory_total_kib")
VM_SOURCES = ("memory", "memory_internal_free", "memory_target")


def _rrd(names: tuple[str, ...], min_max: bool) -> Rrd:
    return create([SourceSpec(name=n, minimum=0.0) for n in names], archives(min_max), T0)


def _median_ms(step: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def measure(vm_count: int) -> dict[str, float]:
    hosts = [_rrd(HOST_SOURCES, True) for _ in range(2)]
    vms = [_rrd(VM_SOURCES, False) for _ in range(vm_count)]
    host_values = dict.fromkeys(HOST_SOURCES, 6.0e7)
    vm_values = dict.fromkeys(VM_SOURCES, 4.5e9)
    started = time.process_time()
    for k in range(1, SAMPLES + 1):
        for rrd in hosts:
            update(rrd, T0 + 5 * k, host_values)
        for rrd in vms:
            update(rrd, T0 + 5 * k, vm_values)
    sample_ms = (time.process_time() - started) / SAMPLES * 1000
    prefixed = [(f"host:{i}:", r) for i, r in enumerate(hosts)]
    prefixed += [(f"vm:{i}:", r) for i, r in enumerate(vms)]
    start = int(T0 + 5 * SAMPLES) - 595
    updates = select(prefixed, start, 5, None)
    copies = [copy(rrd) for rrd in hosts + vms]
    return {
        "sample": sample_ms,
        "select": _median_ms(lambda: select(prefixed, start, 5, None)),
        "json": _median_ms(lambda: to_json(updates)),
        "xml": _median_ms(lambda: to_xml(updates)),
        "copy": _median_ms(lambda: [copy(rrd) for rrd in hosts + vms]),
        "dump": _median_ms(lambda: json.dumps([dump(rrd) for rrd in copies])),
    }


def main() -> None:
    print("ms per step; 2 hosts + N VMs; XO's query: 120 rows of every source")
    print(f"{'VMs':>5} {'sample':>7} {'select':>7} {'json':>7} {'xml':>7} {'copy':>7} {'dump':>7}")
    for vm_count in (10, 100, 1000):
        m = measure(vm_count)
        print(
            f"{vm_count:>5} {m['sample']:>7.2f} {m['select']:>7.2f} {m['json']:>7.1f}"
            f" {m['xml']:>7.1f} {m['copy']:>7.1f} {m['dump']:>7.1f}"
        )


if __name__ == "__main__":
    main()
