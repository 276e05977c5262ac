"""xenopsd's VM.stat: what one look at a host says about each domain the toolstack built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xenmem.balloon import BalloonHealth
from xenmem.balloon.policy import has_hit_target
from xenmem.balloon.snapshot import Snapshot
from xenmem.memory.domain_build import memory_limit_bytes
from xenmem.memory.units import bytes_of_kib, bytes_of_mib

__all__ = ["DomainStat", "domain_stats"]


@dataclass(frozen=True, kw_only=True)
class DomainStat:
    """xenopsd's VM.stat for one running domain, in bytes (squeezer.md §9.2)."""

    domid: int
    target_bytes: int
    actual_bytes: int
    limit_bytes: int
    shadow_bytes: int
    can_balloon: bool
    on_target: bool
    uncooperative: bool
    health: BalloonHealth | None

    @property
    def refused(self) -> bool:
        """A squeeze found it stuck and it has not moved since."""
        return self.health is not None and self.health.refused_at_s is not None

    @property
    def cooperative(self) -> bool:
        """Really co-operating: it can balloon, has reached its target, is not flagged
        uncooperative, and has not refused to move since a squeeze last needed it to."""
        return self.can_balloon and self.on_target and not self.uncooperative and not self.refused


def domain_stats(
    snapshot: Snapshot, health: Mapping[int, BalloonHealth], domids: Mapping[str, int]
) -> dict[str, DomainStat]:
    """VM ref → stat, for each of `domids` (VM ref → domid) that the snapshot saw booted
    or being built."""
    infos = {info.domid: info for info in snapshot.xen_domains}
    domains = {domain.domid: domain for domain in snapshot.host.domains}
    stats: dict[str, DomainStat] = {}
    for vm_ref, domid in domids.items():
        info, view = infos.get(domid), snapshot.views.get(domid)
        if info is None or view is None:
            continue
        actual = bytes_of_kib(info.tot_kib)
        target_kib = view.target_kib if view.target_kib is not None else info.tot_kib
        domain = domains.get(domid)
        stats[vm_ref] = DomainStat(
            domid=domid,
            target_bytes=bytes_of_kib(target_kib),
            actual_bytes=actual,
            limit_bytes=memory_limit_bytes(
                info.domain_type, actual_bytes=actual, maxmem_bytes=bytes_of_kib(info.max_kib)
            ),
            shadow_bytes=bytes_of_mib(info.shadow_mib),
            can_balloon=view.can_balloon,
            on_target=domain is not None and has_hit_target(domain),
            uncooperative=view.uncooperative_flag,
            health=health.get(domid),
        )
    return stats
