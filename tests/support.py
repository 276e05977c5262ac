"""Helpers shared by the tests: scenario building and the invariants checked after steps."""

from __future__ import annotations

from typing import Any

from xenmem.balloon.snapshot import read_host
from xenmem.cli.scenario import Scenario, World, build_world, parse_scenario, run_scenario
from xenmem.toolstack.host_agent import HostAgent
from xenmem.xen.clock import VirtualClock
from xenmem.xen.simulator import SimulatedHost, SimulatedLab


def simulated(agent: HostAgent) -> SimulatedHost:
    """The simulated host behind a host agent of a simulated pool."""
    lab = agent.lab
    assert isinstance(lab, SimulatedLab)
    return lab.host


def domain(
    domid: int,
    *,
    dmin: int,
    dmax: int,
    actual: int,
    target: int | None = None,
    maxmem: int | None = None,
    driver: dict[str, Any] | None = None,
    can_balloon: bool = True,
) -> dict[str, Any]:
    """A scenario domain in the JSON format; target and maxmem default to `actual`."""
    return {
        "domid": domid,
        "can_balloon": can_balloon,
        "dynamic_min": dmin,
        "target": actual if target is None else target,
        "dynamic_max": dmax,
        "actual": actual,
        "maxmem": actual if maxmem is None else maxmem,
        "inaccuracy": 4,
        "driver": driver or {"kind": "ideal", "rate": 100},
    }


def scenario(
    domains: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    *,
    host_free_kib: int = 0,
    **options: Any,
) -> Scenario:
    return parse_scenario(
        {"host_free_kib": host_free_kib, "options": options, "domains": domains, "steps": steps}
    )


def reference_steps(required_kib: int) -> list[dict[str, Any]]:
    """The reference procedure (squeezer.md §7.4): free, consume 500, then F ≤ 32."""
    return [
        {"op": "free", "kib": required_kib},
        {"op": "consume", "kib": 500},
        {"op": "balance", "target_kib": 0, "tolerance_kib": 33},
    ]


def guaranteed_free_kib(world: World) -> int:
    """Free memory left even if every balloonable domain grew to target + inaccuracy (§7.4)."""
    snapshot = read_host(world.host, world.squeezer.config)
    growth = sum(
        max(0, d.target_kib + d.inaccuracy_kib - d.actual_kib)
        for d in snapshot.host.domains
        if d.can_balloon
    )
    return snapshot.host.free_kib - growth


def required_of(step: dict[str, Any] | Any) -> int:
    """The free memory a successful step promises: `kib` for free, the target for balance."""
    if step["op"] == "free":
        return int(step["kib"])
    if step["op"] == "balance":
        return int(step["target_kib"])
    if step["op"] == "free_range":
        return int(step["min"])
    return 0


class CheckedRun:
    """Runs a scenario step by step, checking guaranteed-free after each success."""

    def __init__(self, parsed: Scenario) -> None:
        self.scenario = parsed
        self.world = build_world(parsed, VirtualClock())
        self.outcomes: list[tuple[str, list[Any]]] = []

    def run(self) -> list[tuple[str, list[Any]]]:
        for step in self.scenario.steps:
            single = Scenario(
                host_free_kib=self.scenario.host_free_kib,
                config=self.scenario.config,
                domains=self.scenario.domains,
                steps=(step,),
            )
            report = run_scenario(single, self.world)["steps"][0]
            self.outcomes.append((report["outcome"], report["params"]))
            if report["outcome"] != "success":
                break
            assert guaranteed_free_kib(self.world) >= required_of(step), step
        return self.outcomes
