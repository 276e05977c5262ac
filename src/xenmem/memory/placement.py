"""Host selection for VM.start / resume without a host: categories and scores (xapi-memory.md §4.6).

Pure: the random draw and the per-candidate validation (assert_can_boot_here) are passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from xenmem.memory.constraints import Constraints

__all__ = [
    "Category",
    "GuestLimits",
    "HostSummary",
    "biased_index",
    "div_trunc",
    "score",
    "select_host",
    "summarize_host",
]

H = TypeVar("H", bound=Hashable)

POSSIBLE_FULL_SCORE = 1000


class Category(enum.Enum):
    """Placement categories, tried in this order."""

    AFFINITY = "affinity"
    DEFINITE = "definite"
    PROBABLE = "probable"
    POSSIBLE = "possible"


@dataclass(frozen=True, kw_only=True)
class GuestLimits:
    """A guest counted on a host: its constraints and stored overhead, bytes."""

    constraints: Constraints
    overhead: int


@dataclass(frozen=True, kw_only=True)
class HostSummary:
    """Sums over a host's guests (resident ++ scheduled ++ the VM being placed), bytes."""

    available_sum: int
    static_min_sum: int
    dynamic_min_sum: int
    dynamic_max_sum: int
    static_max_sum: int


def summarize_host(
    memory_total: int, host_overhead: int, guests: Iterable[GuestLimits]
) -> HostSummary:
    guests = list(guests)
    return HostSummary(
        available_sum=memory_total - host_overhead - sum(g.overhead for g in guests),
        static_min_sum=sum(g.constraints.static_min for g in guests),
        dynamic_min_sum=sum(g.constraints.dynamic_min for g in guests),
        dynamic_max_sum=sum(g.constraints.dynamic_max for g in guests),
        static_max_sum=sum(g.constraints.static_max for g in guests),
    )


def div_trunc(numerator: int, denominator: int) -> int:
    """Integer division rounding toward zero (OCaml's `/`), exact for any size."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def _possible_score(summary: HostSummary) -> int:
    if summary.available_sum >= summary.dynamic_max_sum:
        return POSSIBLE_FULL_SCORE
    if summary.available_sum < summary.dynamic_min_sum:
        return -1
    return div_trunc(
        POSSIBLE_FULL_SCORE * (summary.available_sum - summary.dynamic_min_sum),
        summary.dynamic_max_sum - summary.dynamic_min_sum,
    )


def score(
    category: Category,
    summary: HostSummary,
    *,
    is_coordinator: bool = False,
    coordinator_bias: bool = True,
) -> int:
    """A host's score in a category; >= 0 means the host is inside the category.

    For definite and probable the coordinator's score v becomes (v - 1) div 2 under
    coordinator bias, leaving it capacity for its own work.
    """
    if category in (Category.AFFINITY, Category.POSSIBLE):
        return _possible_score(summary)
    if category is Category.DEFINITE:
        value = summary.available_sum - summary.static_max_sum
    else:
        value = summary.available_sum - summary.dynamic_max_sum
    if is_coordinator and coordinator_bias:
        value = div_trunc(value - 1, 2)
    return value


def biased_index(count: int, draw: float) -> int:
    """floor(n * r^2) for r in [0, 1): favours the front of a best-first list."""
    return min(count - 1, int(count * draw * draw))


def select_host(
    hosts: Sequence[H],
    summaries: dict[H, HostSummary],
    *,
    validate: Callable[[H], bool],
    draw: Callable[[], float],
    affinity: H | None = None,
    coordinator: H | None = None,
    coordinator_bias: bool = True,
) -> H | None:
    """The host a VM goes to, or None (NO_HOSTS_AVAILABLE).

    In each category the hosts scoring >= 0 are sorted best first and drawn from with a
    bias to the front until one passes `validate`; hosts that fail are dropped, and the
    hosts outside the category go on to the next one.
    """
    remaining = list(hosts)
    for category in Category:
        if category is Category.AFFINITY:
            considered = [h for h in remaining if h == affinity]
        else:
            considered = remaining
        scored = [
            (
                score(
                    category,
                    summaries[h],
                    is_coordinator=h == coordinator,
                    coordinator_bias=coordinator_bias,
                ),
                h,
            )
            for h in considered
        ]
        inside = [h for value, h in sorted(scored, key=lambda pair: -pair[0]) if value >= 0]
        while inside:
            candidate = inside.pop(biased_index(len(inside), draw()))
            if validate(candidate):
                return candidate
        inside_set = {h for value, h in scored if value >= 0}
        remaining = [h for h in remaining if h not in inside_set]
    return None
