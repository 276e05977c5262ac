"""Squeezer benchmark: time-to-free against the physical bound, and CPU per iteration.

Run: `.venv/bin/python -m bench.squeezer`. Time-to-free is simulated time on the virtual
clock (deterministic); CPU time is `time.process_time` around the pure core's
`one_iteration` and around one full snapshot + iteration through the simulated host.
"""

from __future__ import annotations

import statistics
import time

from xenmem.balloon import Squeezer, SqueezerConfig
from xenmem.balloon.core import SqueezerState, one_iteration
from xenmem.memory.model import DomainType
from xenmem.xen import VirtualClock, domain_path, run_virtual
from xenmem.xen.simulator import Driver, Guest, HostSpec, Ideal, SimulatedHost, Stuck

MIB = 1024
RATE = 256 * MIB  # KiB/s per healthy driver
SIZE = 4096 * MIB  # KiB per guest
TO_FREE = 6144 * MIB  # KiB the request must make free


def _host(drivers: list[Driver], config: SqueezerConfig) -> tuple[Squeezer, VirtualClock]:
    clock = VirtualClock()
    total = SIZE * len(drivers) + config.target_host_free_kib
    host = SimulatedHost(HostSpec(total_kib=total, xen_kib=0, dom0_kib=None), clock)
    for driver in drivers:
        domid = host.create_domain(domain_type=DomainType.PV, max_kib=SIZE)
        host.build_domain(domid, memory_kib=SIZE, shadow_mib=0)
        keys = {"target": SIZE, "dynamic-min": 512 * MIB, "dynamic-max": SIZE, "memory-offset": 0}
        for key, value in keys.items():
            host.xenstore.write(domain_path(domid, f"memory/{key}"), str(value))
        host.attach_guest(domid, Guest(driver=driver), booted=True)
        host.unpause_domain(domid)
    return Squeezer(host, clock, config), clock


def time_to_free(drivers: list[Driver], *, reference: bool) -> float:
    config = SqueezerConfig(reference_ticks=reference)
    squeezer, clock = _host(drivers, config)
    run_virtual(squeezer.free_memory(TO_FREE))
    return clock.now()


def physical_bound(drivers: list[Driver]) -> float:
    """Amount ÷ Σ rates of the drivers that can move: no squeezer can free it sooner."""
    return TO_FREE / sum(d.rate_kib_s for d in drivers if isinstance(d, Ideal))


MIXES: dict[str, list[Driver]] = {
    "4 cooperative": [Ideal(rate_kib_s=RATE) for _ in range(4)],
    "3 cooperative + 1 stuck": [*(Ideal(rate_kib_s=RATE) for _ in range(3)), Stuck()],
    "2 cooperative + 2 stuck": [*(Ideal(rate_kib_s=RATE) for _ in range(2)), Stuck(), Stuck()],
}


def report_time_to_free() -> None:
    print(f"time to free {TO_FREE // MIB} MiB (simulated s; drivers at {RATE // MIB} MiB/s)")
    print(f"{'mix':<26}{'bound':>8}{'reference 1 s':>15}{'event-driven':>14}")
    for name, drivers in MIXES.items():
        reference = time_to_free(drivers, reference=True)
        event = time_to_free(drivers, reference=False)
        print(f"{name:<26}{physical_bound(drivers):>8.2f}{reference:>15.2f}{event:>14.2f}")


def _cpu_per_iteration(count: int, repeats: int) -> tuple[float, float]:
    drivers: list[Driver] = [Ideal(rate_kib_s=RATE) for _ in range(count)]
    config = SqueezerConfig()
    squeezer, clock = _host(drivers, config)
    snapshot = run_virtual(squeezer.snapshot())
    core: list[float] = []
    full: list[float] = []
    for _ in range(repeats):
        started = time.process_time()
        one_iteration(
            SqueezerState(),
            snapshot.host,
            host_target_kib=config.target_host_free_kib + TO_FREE,
            success=lambda free: False,
            now=clock.now(),
            config=config,
        )
        core.append(time.process_time() - started)
        started = time.process_time()
        fresh = run_virtual(squeezer.snapshot())
        one_iteration(
            SqueezerState(),
            fresh.host,
            host_target_kib=config.target_host_free_kib + TO_FREE,
            success=lambda free: False,
            now=clock.now(),
            config=config,
        )
        full.append(time.process_time() - started)
    return statistics.median(core), statistics.median(full)


def report_cpu() -> None:
    print("CPU per iteration (median, ms)")
    print(f"{'domains':>8}{'core':>10}{'snapshot+core':>16}")
    for count, repeats in ((10, 200), (100, 50), (1000, 10)):
        core, full = _cpu_per_iteration(count, repeats)
        print(f"{count:>8}{core * 1000:>10.3f}{full * 1000:>16.3f}")


def main() -> None:
    report_time_to_free()
    print()
    report_cpu()


if __name__ == "__main__":
    main()
