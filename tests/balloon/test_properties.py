"""Properties over random hosts and driver mixes (hypothesis), checked at every tick."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.balloon.books import ledger_of
from tests.support import scenario
from xenmem.balloon import SqueezerConfig
from xenmem.balloon.core import SqueezerState, one_iteration
from xenmem.balloon.policy import Domain, Host
from xenmem.balloon.reservations import record_path
from xenmem.balloon.snapshot import read_host
from xenmem.cli.scenario import Scenario, World, build_world, run_scenario
from xenmem.xen.clock import VirtualClock

RATES = st.integers(min_value=100, max_value=5000)
SIZES = st.integers(min_value=0, max_value=20_000)
DRIVERS = st.one_of(
    st.builds(lambda rate: {"kind": "ideal", "rate": rate}, RATES),
    st.builds(
        lambda rate, floor: {"kind": "floor", "rate": rate, "floor": floor},
        RATES,
        st.integers(0, 20_000),
    ),
    st.builds(
        lambda rate, cap: {"kind": "cap", "rate": rate, "cap": cap}, RATES, st.integers(0, 20_000)
    ),
    st.just({"kind": "stuck"}),
    st.builds(
        lambda rate, interval: {"kind": "intermittent", "rate": rate, "interval": interval},
        RATES,
        st.sampled_from([0.5, 3, 7, 12]),
    ),
    st.just({"kind": "none"}),
    st.builds(lambda rate: {"kind": "greedy", "rate": rate}, RATES),
)


@st.composite
def domains(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-4 guests; a guest may sit outside its dynamic range (just changed) and have a
    target it has not reached (left by an earlier squeeze)."""
    count = draw(st.integers(min_value=1, max_value=4))
    inaccuracy = draw(st.sampled_from([0, 4, 8]))
    result = []
    for domid in range(count):
        dmin = draw(st.integers(0, 10_000))
        dmax = draw(st.integers(dmin, dmin + 10_000))
        actual = draw(
            st.one_of(
                st.integers(dmin, dmax), st.integers(0, dmin), st.integers(dmax, dmax + 5_000)
            )
        )
        # Targets as squeezes leave them: within the range, or a size below it.
        target = draw(st.one_of(st.just(min(actual, dmax)), st.integers(min(actual, dmin), dmax)))
        driver = draw(DRIVERS)
        low, high = min(actual, target), max(actual, target)
        result.append(
            {
                "domid": domid,
                "can_balloon": driver["kind"] != "none",
                "dynamic_min": dmin,
                "target": target,
                "dynamic_max": dmax,
                "actual": actual,
                "maxmem": draw(st.integers(low, high + 2_000)),
                "inaccuracy": inaccuracy,
                "driver": driver,
            }
        )
    return result


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    required = draw(st.integers(0, 15_000))
    guests = draw(domains())
    steps = [
        {"op": "free", "kib": required},
        {"op": "consume", "kib": draw(st.integers(0, required))},
        {"op": "balance", "target_kib": 0, "tolerance_kib": 33},
    ]
    if draw(st.booleans()):
        low = draw(st.integers(0, 10_000))
        steps.append({"op": "free_range", "min": low, "max": draw(st.integers(low, low + 10_000))})
    owed = sum(max(0, g["target"] - g["actual"]) for g in guests if g["can_balloon"])
    return scenario(
        guests,
        steps,
        # The growth already owed is free at the start, as every squeeze leaves it.
        host_free_kib=owed + draw(st.integers(0, 20_000)),
        target_host_free_kib=draw(st.one_of(st.just(required), st.integers(0, 15_000))),
        reference_ticks=draw(st.booleans()),
    )


def owed_growth_kib(host: Host) -> int:
    """What the balloonable guests may still grow by: Σ max(0, target − actual)."""
    return sum(max(0, d.target_kib - d.actual_kib) for d in host.domains if d.can_balloon)


class CheckingClock(VirtualClock):
    """Runs `check` after every move of time, so invariants hold at every tick."""

    def __init__(self) -> None:
        super().__init__()
        self.check: Callable[[], None] = lambda: None

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        self.check()


def checked_run(parsed: Scenario) -> tuple[list[dict[str, Any]], World]:
    clock = CheckingClock()
    world = build_world(parsed, clock)
    ranges = {d.domid: (d.dynamic_min, d.dynamic_max) for d in parsed.domains}

    def invariants() -> None:
        snapshot = read_host(world.squeezer.xen, world.squeezer.config)
        ledger = ledger_of(snapshot)
        assert ledger.adds_up()
        assert ledger.xen_kib == world.host.xen_kib
        # squeezed never sets the target of a guest without a balloon driver.
        for domain in (d for d in snapshot.host.domains if d.can_balloon):
            low, high = ranges[domain.domid]
            assert domain.target_kib <= high, domain
            # Below dynamic_min only for a domain that is itself below it and is being
            # given what free memory pays for (never a target that makes it shrink).
            if domain.target_kib < low:
                assert domain.actual_kib <= domain.target_kib + domain.inaccuracy_kib, domain
        # Every KiB a guest may still take (Xen lets it reach its target) is free.
        assert owed_growth_kib(snapshot.host) <= snapshot.host.free_kib, snapshot.host

    clock.check = invariants
    reports = []
    for number, step in enumerate(parsed.steps):
        (report,) = run_scenario(replace(parsed, steps=(step,)), world)["steps"]
        reports.append(report)
        if report["outcome"] != "success":
            break
        if step["op"] == "free_range":
            # The memory service holds the amount as a reservation at once.
            record = record_path("checked", str(number))
            world.host.xenstore.write(record, str(report["params"][0]))
        # Also after a step that did not move time (the fast path), and after the caller
        # took what the previous step freed for it (consume).
        invariants()
    return reports, world


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_fault_targets_in_range_owed_growth_free_and_the_ledger_adds_up_at_every_tick(
    parsed: Scenario,
) -> None:
    steps, world = checked_run(parsed)
    assert all(step["outcome"] != "fault" for step in steps), steps
    assert world.host.faults == []


@st.composite
def trajectories(draw: st.DrawFn) -> list[list[int]]:
    """Per sample (0.1 s apart), each domain's actual; targets are fixed far below."""
    count = draw(st.integers(1, 3))
    samples = draw(st.integers(2, 150))
    moves = st.lists(st.sampled_from([0, 0, 0, -1, -5, 3]), min_size=count, max_size=count)
    steps = draw(st.lists(moves, min_size=samples, max_size=samples))
    actual = [100_000] * count
    result = []
    for step in steps:
        actual = [a + m for a, m in zip(actual, step, strict=True)]
        result.append(actual)
    return result


@settings(deadline=None)
@given(trajectories())
def test_nobody_is_declared_inactive_before_five_seconds_without_progress(
    samples: list[list[int]],
) -> None:
    state = SqueezerState()
    last_progress: dict[int, float] = {}
    previous: list[int] | None = None
    config = SqueezerConfig()
    for index, actuals in enumerate(samples):
        now = index / 10
        for domid, actual in enumerate(actuals):
            if previous is None or actual < previous[domid]:
                last_progress[domid] = now
        host = Host(
            domains=tuple(
                Domain(
                    domid=domid,
                    can_balloon=True,
                    dynamic_min_kib=0,
                    target_kib=0,
                    dynamic_max_kib=10**6,
                    actual_kib=actual,
                    maxmem_kib=10**6,
                )
                for domid, actual in enumerate(actuals)
            ),
            free_kib=0,
        )
        iteration = one_iteration(
            state, host, host_target_kib=10**9, success=lambda _: False, now=now, config=config
        )
        for domid in iteration.state.non_active:
            assert now - last_progress[domid] > 5.0
        for domid in range(len(actuals)):
            if now - last_progress[domid] > 5.0:
                assert domid in iteration.state.non_active
        state = iteration.state
        previous = actuals
