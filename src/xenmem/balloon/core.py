"""One iteration of the squeezer (squeezer.md §3.3-3.4). Pure: the decision is a value.

The driver (`squeezer.py`) performs the decision's effects and calls again; time comes in
as `now`, never read here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from xenmem.balloon.config import SqueezerConfig
from xenmem.balloon.policy import Domain, Host, compute_target_adjustments, has_hit_target
from xenmem.balloon.stuckness import Progress, update_progress

__all__ = [
    "Action",
    "AdjustTargets",
    "Decision",
    "Failed",
    "Iteration",
    "SqueezerState",
    "Success",
    "active_domains",
    "inactive_clamp",
    "one_iteration",
    "split_phases",
]


@dataclass(frozen=True, kw_only=True)
class Action:
    """Set the domain's balloon target to `target_kib`."""

    domid: int
    target_kib: int


@dataclass(frozen=True, kw_only=True)
class Success:
    pass


@dataclass(frozen=True, kw_only=True)
class Failed:
    """Targets are reached and stable, yet the goal is not met; `domids` are to blame."""

    domids: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class AdjustTargets:
    actions: tuple[Action, ...]


Decision = Success | Failed | AdjustTargets


@dataclass(frozen=True, kw_only=True)
class SqueezerState:
    """Kept between the iterations of one request; a new request starts from `SqueezerState()`,
    so every domain is innocent until proven guilty again (§3.3)."""

    progress: Mapping[int, Progress] = field(default_factory=dict)
    non_active: frozenset[int] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Iteration:
    state: SqueezerState
    decision: Decision
    declared_active: frozenset[int]
    declared_inactive: frozenset[int]


def active_domains(host: Host, progress: Mapping[int, Progress]) -> tuple[Domain, ...]:
    """Balloonable domains the monitor knows and does not consider stuck (§3.4 step 2)."""
    return tuple(
        d
        for d in host.domains
        if d.can_balloon and d.domid in progress and not progress[d.domid].stuck
    )


def split_phases(
    ideal: tuple[tuple[Domain, int], ...], *, two_phase: bool
) -> tuple[tuple[Domain, int], ...]:
    """The two-phase filter (§3.4 step 4): while any domain must free memory, only those
    targets are issued, so nobody grows into memory that is not yet free."""
    if not two_phase:
        return ideal
    freeing = tuple(
        (d, t) for d, t in ideal if t < d.actual_kib and abs(d.actual_kib - t) > d.inaccuracy_kib
    )
    return freeing or ideal


def fund_growth(
    issued: tuple[tuple[Domain, int], ...], budget_kib: int
) -> tuple[tuple[Domain, int], ...]:
    """Issue growth only as far as free memory above the host target pays for it.

    The proportional targets already fit when every domain is within its range; a domain
    below a dynamic_min that was just raised does not fit when memory is short (its
    minimum is owed, whatever is free), and squeezed would let it grow into memory that
    is reserved for a domain being built, or into the host's reserve. Such a domain's
    target stops at what is free: at or above its size, possibly below its minimum,
    until later iterations find the rest.
    """
    remaining = max(0, budget_kib)
    funded = []
    for domain, ideal in issued:
        target = ideal
        if ideal > domain.actual_kib:
            target = domain.actual_kib + min(ideal - domain.actual_kib, remaining)
            remaining -= target - domain.actual_kib
        funded.append((domain, target))
    return tuple(funded)


def inactive_clamp(domain: Domain, *, never_grow: bool) -> int:
    """Target and maxmem of a newly inactive domain: it may shrink but never grow back, and
    never above dynamic_max or below dynamic_min (§3.5 step 2, CA-41832).

    squeezed raises a domain below its dynamic_min to that minimum, though nobody freed
    the memory for it (the domain is excluded from the targets that pay for growth) and a
    driver that resumes takes it from what others were promised; `never_grow` keeps such
    a domain at its size.
    """
    ideal = min(domain.target_kib, domain.actual_kib)
    clamped = min(domain.dynamic_max_kib, max(domain.dynamic_min_kib, ideal))
    return min(clamped, domain.actual_kib) if never_grow else clamped


def one_iteration(
    state: SqueezerState,
    host: Host,
    *,
    host_target_kib: int,
    success: Callable[[int], bool],
    now: float,
    config: SqueezerConfig,
) -> Iteration:
    """Observe `host` at `now` and decide: adjust targets, succeed or fail (§3.4)."""
    progress = update_progress(state.progress, host, now, stuck_after_s=config.stuck_after_s)
    active = active_domains(host, progress)
    active_ids = {d.domid for d in active}
    non_active = frozenset(d.domid for d in host.domains if d.domid not in active_ids)
    ideal = compute_target_adjustments(
        active,
        host.free_kib,
        host_target_kib,
        compensate=config.inaccuracy_compensation,
        count_deficit=config.deficit_compensation,
    )
    issued = split_phases(ideal, two_phase=config.two_phase)
    if config.two_phase and config.deficit_compensation:
        # Part of the allocation phase: nothing is being freed, so what is free is exact.
        issued = fund_growth(issued, host.free_kib - host_target_kib)
    all_reached = all(has_hit_target(d) for d in active)
    unchanged = all(t == d.target_kib for d, t in issued)
    decision: Decision
    if not (all_reached and unchanged):
        decision = AdjustTargets(
            actions=tuple(Action(domid=d.domid, target_kib=t) for d, t in issued)
        )
    elif success(host.free_kib):
        decision = Success()
    else:
        blamed = (d.domid for d in host.domains if d.domid in non_active and d.can_balloon)
        decision = Failed(domids=tuple(sorted(blamed, reverse=True)))
    return Iteration(
        state=SqueezerState(progress=progress, non_active=non_active),
        decision=decision,
        declared_active=state.non_active - non_active,
        declared_inactive=non_active - state.non_active,
    )
