"""Balloon health: the uncooperative rule (squeezer.md §4.3) and the per-domain record. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xenmem.balloon.policy import Domain, Host, has_hit_target

__all__ = ["BalloonHealth", "shortfall_kib", "update_cooperation"]


@dataclass(frozen=True, kw_only=True)
class BalloonHealth:
    """What the toolstack may show about one domain's balloon driver (times in clock seconds).

    - `active`: not excluded by the squeezer (can balloon, and not declared stuck during
      the latest squeeze);
    - `inactive_since_s`: when the latest squeeze declared it stuck, else None;
    - `uncooperative_since_s`: when the `memory/uncooperative` flag was raised, else None;
    - `refused_at_s`: when a squeeze found it stuck, as long as its size has not changed
      since by more than its inaccuracy (kept across squeezes, unlike
      `inactive_since_s`), else None;
    - `last_progress_s`: the last time it was seen moving toward its target (or first seen);
    - `shortfall_kib`: how far it still is from its target beyond the inaccuracy allowance.
    """

    domid: int
    active: bool
    inactive_since_s: float | None
    uncooperative_since_s: float | None
    refused_at_s: float | None
    last_progress_s: float | None
    shortfall_kib: int


def shortfall_kib(domain: Domain) -> int:
    return max(0, abs(domain.actual_kib - domain.target_kib) - domain.inaccuracy_kib)


def update_cooperation(
    last_cooperative: Mapping[int, float], host: Host, now: float
) -> dict[int, float]:
    """The last time each domain was cooperative: it cannot balloon, or it is on target.

    New domains start cooperative now; domains gone from `host` are forgotten.
    """
    updated: dict[int, float] = {}
    for domain in host.domains:
        cooperative = not domain.can_balloon or has_hit_target(domain)
        previous = last_cooperative.get(domain.domid)
        updated[domain.domid] = now if cooperative or previous is None else previous
    return updated
