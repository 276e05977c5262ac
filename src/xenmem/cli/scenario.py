"""Ballooning scenarios as JSON: parse, run on the virtual clock, report (`xenmem simulate`).

A scenario is a bare host (no Xen share, no dom0: domid 0 is an ordinary guest, as in
the reference simulator, squeezer.md §7) holding `host_free_kib` plus the listed domains,
and a list of steps run one after the other until one fails. Amounts are KiB, rates KiB/s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from xenmem.balloon import (
    CannotFreeThisMuchMemory,
    DomainsRefusedToCooperate,
    Squeezer,
    SqueezerConfig,
)
from xenmem.balloon.snapshot import read_host
from xenmem.memory.model import DomainType
from xenmem.xen.clock import VirtualClock, run_virtual
from xenmem.xen.port import domain_path
from xenmem.xen.simulator import (
    Cap,
    Driver,
    Floor,
    Greedy,
    Guest,
    GuestFault,
    HostSpec,
    Ideal,
    Intermittent,
    NoDriver,
    SimulatedHost,
    Stuck,
)

__all__ = ["Scenario", "ScenarioError", "World", "build_world", "parse_scenario", "run_scenario"]

# The reference simulator's timing: one iteration per 0.1 s tick (squeezer.md §3.9).
REFERENCE_TICK_S = 0.1


class ScenarioError(ValueError):
    """A malformed scenario; the message names the offending field."""


@dataclass(frozen=True, kw_only=True)
class ScenarioDomain:
    domid: int
    can_balloon: bool
    dynamic_min: int
    target: int
    dynamic_max: int
    actual: int
    maxmem: int
    driver: Driver


@dataclass(frozen=True, kw_only=True)
class Scenario:
    host_free_kib: int
    config: SqueezerConfig
    domains: tuple[ScenarioDomain, ...]
    steps: tuple[Mapping[str, int | str], ...]


def _field(obj: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise ScenarioError(f"{where}: missing field '{name}'")
    return obj[name]


def _amount(obj: Mapping[str, Any], name: str, where: str, default: int | None = None) -> int:
    value = obj.get(name, default) if default is not None else _field(obj, name, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScenarioError(f"{where}.{name}: expected a non-negative integer, got {value!r}")
    return value


def _flag(obj: Mapping[str, Any], name: str, where: str, default: bool) -> bool:
    value = obj.get(name, default)
    if not isinstance(value, bool):
        raise ScenarioError(f"{where}.{name}: expected true or false, got {value!r}")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected an object")
    return value


def _driver(untrusted: Any, where: str, can_balloon: bool) -> Driver:
    spec = _object(untrusted, where)
    kind = _field(spec, "kind", where)
    builders: dict[str, Callable[[], Driver]] = {
        "ideal": lambda: Ideal(rate_kib_s=_amount(spec, "rate", where)),
        "floor": lambda: Floor(
            rate_kib_s=_amount(spec, "rate", where), floor_kib=_amount(spec, "floor", where)
        ),
        "cap": lambda: Cap(
            rate_kib_s=_amount(spec, "rate", where), cap_kib=_amount(spec, "cap", where)
        ),
        "stuck": Stuck,
        "intermittent": lambda: Intermittent(
            rate_kib_s=_amount(spec, "rate", where), interval_s=_interval(spec, where)
        ),
        "none": NoDriver,
        "greedy": lambda: Greedy(rate_kib_s=_amount(spec, "rate", where)),
    }
    if not isinstance(kind, str) or kind not in builders:
        raise ScenarioError(f"{where}.kind: expected one of {', '.join(builders)}, got {kind!r}")
    driver = builders[kind]()
    # A domain that cannot balloon runs no balloon driver: it never announces itself and
    # never moves, whatever driver the scenario names (squeezer.md §3.8, §7).
    if not can_balloon:
        return NoDriver()
    if not driver.announces:
        raise ScenarioError(f"{where}.kind: 'none' is a domain with can_balloon false")
    return driver


def _interval(spec: Mapping[str, Any], where: str) -> float:
    value = _field(spec, "interval", where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise ScenarioError(f"{where}.interval: expected a positive number of seconds")
    return float(value)


def _domain(untrusted: Any, where: str) -> tuple[ScenarioDomain, int]:
    spec = _object(untrusted, where)
    can_balloon = _flag(spec, "can_balloon", where, True)
    domain = ScenarioDomain(
        domid=_amount(spec, "domid", where),
        can_balloon=can_balloon,
        dynamic_min=_amount(spec, "dynamic_min", where),
        target=_amount(spec, "target", where),
        dynamic_max=_amount(spec, "dynamic_max", where),
        actual=_amount(spec, "actual", where),
        maxmem=_amount(spec, "maxmem", where),
        driver=_driver(_field(spec, "driver", where), f"{where}.driver", can_balloon),
    )
    return domain, _amount(spec, "inaccuracy", where, default=4)


_STEP_FIELDS = {
    "free": ("kib",),
    "consume": ("kib",),
    "balance": ("target_kib", "tolerance_kib"),
    "free_range": ("min", "max"),
}


def _step(untrusted: Any, where: str) -> Mapping[str, int | str]:
    spec = _object(untrusted, where)
    op = _field(spec, "op", where)
    if not isinstance(op, str) or op not in _STEP_FIELDS:
        raise ScenarioError(f"{where}.op: expected one of {', '.join(_STEP_FIELDS)}, got {op!r}")
    return {"op": op, **{name: _amount(spec, name, where) for name in _STEP_FIELDS[op]}}


def _config(untrusted: Any, inaccuracy_kib: int) -> SqueezerConfig:
    options = _object(untrusted, "options")
    known = {
        "two_phase",
        "inaccuracy_compensation",
        "deficit_compensation",
        "inactive_never_grows",
        "keep_owed_growth",
        "reference_ticks",
        "target_host_free_kib",
    }
    unknown = set(options) - known
    if unknown:
        raise ScenarioError(f"options: unknown option {sorted(unknown)[0]!r}")
    reference = _flag(options, "reference_ticks", "options", True)
    return SqueezerConfig(
        target_host_free_kib=_amount(options, "target_host_free_kib", "options", default=0),
        two_phase=_flag(options, "two_phase", "options", True),
        inaccuracy_compensation=_flag(options, "inaccuracy_compensation", "options", True),
        deficit_compensation=_flag(options, "deficit_compensation", "options", True),
        inactive_never_grows=_flag(options, "inactive_never_grows", "options", True),
        keep_owed_growth=_flag(options, "keep_owed_growth", "options", True),
        reference_ticks=reference,
        iteration_interval_s=REFERENCE_TICK_S,
        # Domid 0 is an ordinary guest here, so the squeezer must manage it.
        manage_domain_zero=True,
        domain_inaccuracy_kib=inaccuracy_kib,
    )


def parse_scenario(untrusted: Any) -> Scenario:
    """A validated scenario from decoded JSON; raises ScenarioError naming the bad field."""
    top = _object(untrusted, "scenario")
    domains_json = _field(top, "domains", "scenario")
    steps_json = _field(top, "steps", "scenario")
    if not isinstance(domains_json, list) or not isinstance(steps_json, list):
        raise ScenarioError("scenario: 'domains' and 'steps' must be lists")
    parsed = [_domain(d, f"domains[{i}]") for i, d in enumerate(domains_json)]
    domids = [d.domid for d, _ in parsed]
    if len(set(domids)) != len(domids):
        raise ScenarioError("domains: domids must be unique")
    inaccuracies = {inaccuracy for _, inaccuracy in parsed}
    if len(inaccuracies) > 1:
        raise ScenarioError("domains: every domain must have the same inaccuracy")
    return Scenario(
        host_free_kib=_amount(top, "host_free_kib", "scenario"),
        config=_config(top.get("options", {}), inaccuracies.pop() if inaccuracies else 4),
        domains=tuple(d for d, _ in parsed),
        steps=tuple(_step(s, f"steps[{i}]") for i, s in enumerate(steps_json)),
    )


@dataclass(frozen=True, kw_only=True)
class World:
    """A scenario's simulated host, its clock and its squeezer."""

    host: SimulatedHost
    clock: VirtualClock
    squeezer: Squeezer


def build_world(scenario: Scenario, clock: VirtualClock | None = None) -> World:
    clock = clock or VirtualClock()
    total = scenario.host_free_kib + sum(d.actual for d in scenario.domains)
    # A guest's refused allocation ends the run there, as in the reference simulator.
    spec = HostSpec(total_kib=total, xen_kib=0, dom0_kib=None)
    host = SimulatedHost(spec, clock, stop_at_fault=True)
    inaccuracy = scenario.config.domain_inaccuracy_kib
    for domain in scenario.domains:
        domid = domain.domid
        host.create_domain(domain_type=DomainType.PV, max_kib=domain.maxmem, domid=domid)
        host.build_domain(domid, memory_kib=domain.actual, shadow_mib=0)
        store = host.xenstore
        for key, value in (
            ("memory/target", domain.target),
            ("memory/dynamic-min", domain.dynamic_min),
            ("memory/dynamic-max", domain.dynamic_max),
            # Already calibrated: the reference simulator has no offsets.
            ("memory/memory-offset", 0),
            ("data/updated", 1),
        ):
            store.write(domain_path(domid, key), str(value))
        guest = Guest(driver=domain.driver, boot_delay_s=0.0, inaccuracy_kib=inaccuracy)
        host.attach_guest(domid, guest, booted=True)
        host.unpause_domain(domid)
    return World(host=host, clock=clock, squeezer=Squeezer(host, clock, scenario.config))


async def _perform(world: World, step: Mapping[str, int | str]) -> list[int]:
    """Run one step; returns free_range's amount as its only param, else no params."""
    squeezer = world.squeezer
    match step:
        case {"op": "free", "kib": int(kib)}:
            await squeezer.change_host_free_memory(kib, lambda free: free >= kib)
        case {"op": "balance", "target_kib": int(target), "tolerance_kib": int(tolerance)}:
            await squeezer.change_host_free_memory(target, lambda free: free - target < tolerance)
        case {"op": "consume", "kib": int(kib)}:
            world.host.consume(kib)
        case {"op": "free_range", "min": int(low), "max": int(high)}:
            return [await squeezer.free_memory_range(low, high)]
    return []


def _outcome(world: World, step: Mapping[str, int | str]) -> tuple[str, list[int | str]]:
    """The step's outcome; a fault outranks any other, since it means the run was invalid."""
    faults_before = len(world.host.faults)
    outcome: tuple[str, list[int | str]]
    try:
        outcome = "success", list(run_virtual(_perform(world, step)))
    except CannotFreeThisMuchMemory as error:
        outcome = error.name, [error.needed_kib, error.free_kib]
    except DomainsRefusedToCooperate as error:
        outcome = error.name, list(error.domids)
    except GuestFault:
        outcome = "fault", []  # replaced below by the fault's own report
    new_faults = world.host.faults[faults_before:]
    if new_faults:
        fault = new_faults[0]
        owner: int | str = "xen" if fault.domid is None else fault.domid
        return "fault", [owner, fault.wanted_kib, fault.available_kib]
    return outcome


def _report(world: World) -> dict[str, Any]:
    snapshot = read_host(world.host, world.squeezer.config)
    health = world.squeezer.health()
    return {
        "free_kib": snapshot.host.free_kib,
        "domains": [
            {
                "domid": d.domid,
                "target": d.target_kib,
                "actual": d.actual_kib,
                "maxmem": snapshot.views[d.domid].max_kib,
                "active": health[d.domid].active if d.domid in health else d.can_balloon,
            }
            for d in snapshot.host.domains
        ],
    }


def run_scenario(scenario: Scenario, world: World | None = None) -> dict[str, Any]:
    """Run the steps until one does not succeed; the report of `xenmem simulate`."""
    world = world or build_world(scenario)
    reports: list[dict[str, Any]] = []
    for step in scenario.steps:
        started = world.clock.now()
        outcome, params = _outcome(world, step)
        elapsed = round(world.clock.now() - started, 6)
        reports.append(
            {"op": step["op"], "outcome": outcome, "params": params, "elapsed": elapsed}
            | _report(world)
        )
        if outcome != "success":
            break
    return {"steps": reports}
