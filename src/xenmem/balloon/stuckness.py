"""The stuckness monitor (squeezer.md §4.1): who has made no progress for too long. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xenmem.balloon.policy import Host, has_hit_target, needs_to_grow

__all__ = ["Progress", "update_progress"]


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Per domain: the last sampled actual (KiB), when it last moved toward its target, stuck."""

    last_actual_kib: int
    last_progress_s: float
    stuck: bool


def update_progress(
    previous: Mapping[int, Progress], host: Host, now: float, *, stuck_after_s: float
) -> dict[int, Progress]:
    """The monitor after sampling `host` at `now`; domains absent from `host` are dropped.

    A domain is stuck when it has outstanding work and has made no progress for strictly
    more than `stuck_after_s`; only progress clears the flag.
    """
    updated: dict[int, Progress] = {}
    for domain in host.domains:
        before = previous.get(domain.domid)
        if before is None:
            updated[domain.domid] = Progress(
                last_actual_kib=domain.actual_kib, last_progress_s=now, stuck=False
            )
            continue
        delta = domain.actual_kib - before.last_actual_kib
        on_target = has_hit_target(domain)
        moved_toward = delta > 0 if needs_to_grow(domain) else delta < 0
        if moved_toward and not on_target:
            updated[domain.domid] = Progress(
                last_actual_kib=domain.actual_kib, last_progress_s=now, stuck=False
            )
            continue
        overdue = now - before.last_progress_s > stuck_after_s
        updated[domain.domid] = Progress(
            last_actual_kib=domain.actual_kib,
            last_progress_s=before.last_progress_s,
            stuck=before.stuck or (overdue and not on_target),
        )
    return updated
