"""The proportional policy (squeezer.md §3.2) and the one-iteration core (§3.4)."""

from __future__ import annotations

from xenmem.balloon.config import SqueezerConfig
from xenmem.balloon.core import (
    Action,
    AdjustTargets,
    Failed,
    Iteration,
    SqueezerState,
    Success,
    inactive_clamp,
    one_iteration,
    split_phases,
)
from xenmem.balloon.policy import (
    Domain,
    Host,
    compute_target_adjustments,
    has_hit_target,
    min_freeable,
)

T = 73728


def dom(
    domid: int,
    dmin: int,
    dmax: int,
    actual: int,
    target: int | None = None,
    *,
    can_balloon: bool = True,
) -> Domain:
    return Domain(
        domid=domid,
        can_balloon=can_balloon,
        dynamic_min_kib=dmin,
        target_kib=actual if target is None else target,
        dynamic_max_kib=dmax,
        actual_kib=actual,
        maxmem_kib=dmax,
    )


D1 = dom(1, 1_000_000, 2_000_000, 1_500_000)
D2 = dom(2, 500_000, 1_000_000, 1_000_000)


def test_worked_example_of_the_spec() -> None:
    targets = compute_target_adjustments([D1, D2], 200_000, T)
    assert [(d.domid, t) for d, t in targets] == [(1, 1_750_837), (2, 875_418)]


def test_min_freeable_withholds_twice_the_inaccuracy_unless_switched_off() -> None:
    assert min_freeable(D1) == 499_992
    assert min_freeable(D1, compensate=False) == 500_000
    assert min_freeable(dom(3, 100, 200, 104)) == 0


def test_gamma_is_clamped_and_zero_ranges_follow_ocaml_division() -> None:
    pinned = dom(3, 5000, 5000, 5000)
    # 0/0 is NaN -> 0; x/0 is +inf -> 1: either way the pinned domain stays put.
    assert compute_target_adjustments([pinned], 0, T)[0][1] == 5000
    assert compute_target_adjustments([pinned], 10**9, T)[0][1] == 5000
    # Plenty of memory: everyone at dynamic_max; none at all: everyone at dynamic_min.
    assert [t for _, t in compute_target_adjustments([D1, D2], 10**9, T)] == [2_000_000, 1_000_000]
    assert [t for _, t in compute_target_adjustments([D1, D2], -(10**9), T)] == [1_000_000, 500_000]


def test_has_hit_target_is_an_absolute_band_of_inaccuracy() -> None:
    assert has_hit_target(dom(1, 0, 10, 104, 100))
    assert has_hit_target(dom(1, 0, 10, 96, 100))
    assert not has_hit_target(dom(1, 0, 10, 105, 100))
    assert not has_hit_target(dom(1, 0, 10, 95, 100))


def iterate(
    host: Host,
    state: SqueezerState | None = None,
    *,
    now: float = 0.0,
    success: bool = True,
    config: SqueezerConfig | None = None,
) -> Iteration:
    return one_iteration(
        state or SqueezerState(),
        host,
        host_target_kib=T,
        success=lambda free: success,
        now=now,
        config=config or SqueezerConfig(),
    )


def test_first_iteration_of_the_worked_example_issues_only_the_freeing_target() -> None:
    result = iterate(Host(domains=(D1, D2), free_kib=200_000))
    assert result.decision == AdjustTargets(actions=(Action(domid=2, target_kib=875_418),))


def test_without_two_phase_every_target_is_issued_at_once() -> None:
    result = iterate(
        Host(domains=(D1, D2), free_kib=200_000), config=SqueezerConfig(two_phase=False)
    )
    assert result.decision == AdjustTargets(
        actions=(Action(domid=1, target_kib=1_750_837), Action(domid=2, target_kib=875_418))
    )


def test_a_move_within_the_inaccuracy_band_is_not_freeing() -> None:
    shrinking = dom(1, 0, 1000, 500)
    assert split_phases(((shrinking, 496),), two_phase=True) == ((shrinking, 496),)
    grower = dom(2, 0, 1000, 100)
    assert split_phases(((shrinking, 495), (grower, 900)), two_phase=True) == ((shrinking, 495),)


def test_success_needs_reached_and_stable_targets_then_the_predicate() -> None:
    settled = Host(domains=(dom(1, 0, 1000, 1000),), free_kib=T + 100)
    assert iterate(settled).decision == Success()
    assert iterate(settled, success=False).decision == Failed(domids=())
    moving = Host(domains=(dom(1, 0, 1000, 900, 1000),), free_kib=T + 100)
    assert isinstance(iterate(moving).decision, AdjustTargets)


def test_failed_blames_stuck_balloonable_domains_in_descending_domid_order() -> None:
    domains = (
        dom(2, 0, 1000, 900, 500),
        dom(9, 0, 1000, 900, 500),
        dom(5, 0, 1000, 900, 900, can_balloon=False),
    )
    host = Host(domains=domains, free_kib=0)
    state = iterate(host).state
    later = iterate(host, state, now=5.5, success=False)
    assert later.declared_inactive == frozenset({2, 9})
    assert later.decision == Failed(domids=(9, 2))


def test_stuck_domains_are_left_out_of_the_targets_and_come_back_on_progress() -> None:
    lazy = dom(1, 0, 1000, 900, 500)
    host = Host(domains=(lazy, dom(2, 0, 1000, 900, 900)), free_kib=0)
    state = iterate(host).state
    stuck = iterate(host, state, now=5.01)
    assert stuck.declared_inactive == frozenset({1})
    assert isinstance(stuck.decision, AdjustTargets)
    assert [a.domid for a in stuck.decision.actions] == [2]
    moved = Host(domains=(dom(1, 0, 1000, 880, 500), host.domains[1]), free_kib=20)
    revived = iterate(moved, stuck.state, now=6.0)
    assert revived.declared_active == frozenset({1})


def test_nobody_is_stuck_at_exactly_the_threshold() -> None:
    host = Host(domains=(dom(1, 0, 1000, 900, 500),), free_kib=0)
    state = iterate(host).state
    assert iterate(host, state, now=5.0).declared_inactive == frozenset()
    assert iterate(host, state, now=5.000001).declared_inactive == frozenset({1})


def test_inactive_clamp_keeps_what_it_has_within_the_dynamic_range() -> None:
    for never_grow in (True, False):
        assert inactive_clamp(dom(1, 1000, 2000, 1500, 1200), never_grow=never_grow) == 1200
        assert inactive_clamp(dom(1, 1000, 2000, 1100, 1800), never_grow=never_grow) == 1100
        assert inactive_clamp(dom(1, 1000, 2000, 3000, 2500), never_grow=never_grow) == 2000


def test_inactive_clamp_of_a_domain_below_its_minimum_never_grows_it() -> None:
    below = dom(1, 1000, 2000, 500, 1800)
    assert inactive_clamp(below, never_grow=True) == 500
    assert inactive_clamp(below, never_grow=False) == 1000  # squeezed's: 500 KiB unfunded
