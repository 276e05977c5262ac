"""The proportional ballooning policy (squeezer.md §2.1, §3.2). Pure: KiB in, targets out."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Domain",
    "Host",
    "compute_target_adjustments",
    "has_hit_target",
    "min_freeable",
    "needs_to_grow",
    "owed_growth_kib",
]


@dataclass(frozen=True, kw_only=True)
class Domain:
    """What the algorithm knows of one domain, in KiB (§2.1).

    `actual_kib` is offset-corrected (`totpages − memory-offset`); `maxmem_kib` is
    informational only.
    """

    domid: int
    can_balloon: bool
    dynamic_min_kib: int
    target_kib: int
    dynamic_max_kib: int
    actual_kib: int
    maxmem_kib: int
    inaccuracy_kib: int = 4


@dataclass(frozen=True, kw_only=True)
class Host:
    """A snapshot of the host: the domains squeezed manages and the free memory it sees (KiB)."""

    domains: tuple[Domain, ...]
    free_kib: int


def has_hit_target(domain: Domain) -> bool:
    """|actual − target| ≤ inaccuracy (§2.3; not squeezer.md's floor(x/4) comparison, §10.2)."""
    return abs(domain.actual_kib - domain.target_kib) <= domain.inaccuracy_kib


def needs_to_grow(domain: Domain) -> bool:
    """Outside its band, a domain below its target must grow; otherwise it must shrink."""
    return domain.target_kib > domain.actual_kib


def owed_growth_kib(domains: Iterable[Domain]) -> int:
    """KiB the balloonable domains may still grow by: Σ max(0, target − actual). Their
    maxmem lets them reach their targets, so this memory is spoken for though free."""
    return sum(max(0, d.target_kib - d.actual_kib) for d in domains if d.can_balloon)


def min_freeable(domain: Domain, *, compensate: bool = True, count_deficit: bool = True) -> int:
    """What the domain surely frees by going to dynamic_min (§3.2 step 1).

    The 2 × inaccuracy allowance covers a driver stopping `inaccuracy` short both of the
    current target and of the new one; without it the freed total can fall short.

    A domain below its dynamic_min (its minimum was just raised) frees nothing and will
    take the difference: with `count_deficit` that is negative, so the targets never hand
    out more than is free. squeezed counts 0 there (§3.2), and such a domain then grows
    into the host's emergency reserve.
    """
    below_min = domain.actual_kib - domain.dynamic_min_kib
    if count_deficit and below_min < 0:
        return below_min
    allowance = 2 * domain.inaccuracy_kib if compensate else 0
    return max(0, below_min - allowance)


def _fraction(surplus_kib: int, total_range_kib: int) -> float:
    # OCaml's float division gives NaN for 0/0 (clamped to 0) and +inf for x/0 (to 1).
    if total_range_kib == 0:
        return 1.0 if surplus_kib > 0 else 0.0
    return min(1.0, max(0.0, surplus_kib / total_range_kib))


def compute_target_adjustments(
    domains: Iterable[Domain],
    free_kib: int,
    host_target_kib: int,
    *,
    compensate: bool = True,
    count_deficit: bool = True,
) -> tuple[tuple[Domain, int], ...]:
    """Every domain's proportional target so that the host keeps `host_target_kib` free (§3.2).

    Each domain gets `dynamic_min + trunc(γ × (dynamic_max − dynamic_min))` with the same
    γ ∈ [0, 1] for all; truncation may leave a few KiB unallocated.
    """
    domains = tuple(domains)
    max_free = free_kib + sum(
        min_freeable(d, compensate=compensate, count_deficit=count_deficit) for d in domains
    )
    surplus = max(0, max_free - host_target_kib)
    ranges = [max(0, d.dynamic_max_kib - d.dynamic_min_kib) for d in domains]
    gamma = _fraction(surplus, sum(ranges))
    return tuple(
        (domain, domain.dynamic_min_kib + math.trunc(gamma * span))
        for domain, span in zip(domains, ranges, strict=True)
    )
