"""The stuckness monitor (squeezer.md §4.1) and the cooperation table (§4.3)."""

from __future__ import annotations

from xenmem.balloon.health import update_cooperation
from xenmem.balloon.policy import Domain, Host
from xenmem.balloon.stuckness import Progress, update_progress


def host(actual: int, target: int, *, can_balloon: bool = True) -> Host:
    domain = Domain(
        domid=1,
        can_balloon=can_balloon,
        dynamic_min_kib=0,
        target_kib=target,
        dynamic_max_kib=10_000,
        actual_kib=actual,
        maxmem_kib=10_000,
    )
    return Host(domains=(domain,), free_kib=0)


def test_first_sight_is_progress_now() -> None:
    assert update_progress({}, host(900, 500), 3.0, stuck_after_s=5.0) == {
        1: Progress(last_actual_kib=900, last_progress_s=3.0, stuck=False)
    }


def test_moving_toward_the_target_is_progress_moving_away_is_not() -> None:
    start = update_progress({}, host(900, 500), 0.0, stuck_after_s=5.0)
    toward = update_progress(start, host(890, 500), 1.0, stuck_after_s=5.0)
    assert toward[1].last_progress_s == 1.0
    away = update_progress(start, host(910, 500), 1.0, stuck_after_s=5.0)
    assert away[1].last_progress_s == 0.0


def test_only_progress_clears_the_stuck_flag() -> None:
    start = update_progress({}, host(900, 500), 0.0, stuck_after_s=5.0)
    stuck = update_progress(start, host(900, 500), 6.0, stuck_after_s=5.0)
    assert stuck[1].stuck
    # Reaching the target by a retarget (no movement) keeps it stuck...
    on_target = update_progress(stuck, host(900, 900), 7.0, stuck_after_s=5.0)
    assert on_target[1].stuck
    # ...moving toward a target clears it.
    moving = update_progress(stuck, host(880, 500), 7.0, stuck_after_s=5.0)
    assert not moving[1].stuck


def test_on_target_is_never_newly_stuck_and_gone_domains_are_dropped() -> None:
    start = update_progress({}, host(500, 500), 0.0, stuck_after_s=5.0)
    assert not update_progress(start, host(500, 500), 60.0, stuck_after_s=5.0)[1].stuck
    assert update_progress(start, Host(domains=(), free_kib=0), 1.0, stuck_after_s=5.0) == {}


def test_cooperation_is_on_target_or_unable_to_balloon() -> None:
    table = update_cooperation({}, host(900, 500), 0.0)
    assert update_cooperation(table, host(900, 500), 30.0) == {1: 0.0}
    assert update_cooperation(table, host(502, 500), 30.0) == {1: 30.0}
    assert update_cooperation(table, host(900, 500, can_balloon=False), 30.0) == {1: 30.0}


def test_moving_within_the_inaccuracy_band_is_not_progress() -> None:
    start = update_progress({}, host(1010, 1000), 0.0, stuck_after_s=5.0)
    # 1010 → 1003: toward the target, but it ends inside the 4 KiB band: no progress.
    inside = update_progress(start, host(1003, 1000), 1.0, stuck_after_s=5.0)
    assert inside[1].last_progress_s == 0.0
    # 1010 → 1005: still outside the band, so it is progress.
    outside = update_progress(start, host(1005, 1000), 1.0, stuck_after_s=5.0)
    assert outside[1].last_progress_s == 1.0


def test_a_new_domain_starts_cooperative_at_the_time_it_is_first_seen() -> None:
    assert update_cooperation({}, host(900, 500), 100.0) == {1: 100.0}
