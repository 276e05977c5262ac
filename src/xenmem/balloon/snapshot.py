"""The squeezer's view of the host, read through the hypervisor port (squeezer.md §2.3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xenmem.balloon.config import SqueezerConfig
from xenmem.balloon.policy import Domain, Host
from xenmem.balloon.reservations import parse_kib, total_reservations
from xenmem.memory.model import DomainType, model_for
from xenmem.memory.units import kib_of_mib
from xenmem.xen.port import (
    DomainInfo,
    Hypervisor,
    PhysInfo,
    Xenstore,
    domain_path,
    domain_type_of_xenstore,
)

__all__ = ["DomainView", "Snapshot", "read_host", "xen_max_offset_kib"]


def xen_max_offset_kib(domain_type: DomainType) -> int:
    """Xen's extra maxmem beyond the guest's own memory: 1 MiB for hvm/pvh/pv-in-pvh, 0 for pv."""
    return kib_of_mib(model_for(domain_type).xen_max_offset_mib)


@dataclass(frozen=True, kw_only=True)
class DomainView:
    """The Xen-side facts needed to set one domain's target and maxmem (§2.3, §3.8)."""

    domid: int
    domain_type: DomainType
    max_kib: int
    memory_offset_kib: int
    can_balloon: bool
    target_kib: int | None
    uncooperative_flag: bool

    def maxmem_for(self, target_kib: int) -> int:
        """Xen maxmem that lets the domain reach `target_kib` (offsets added, §2.3)."""
        return xen_max_offset_kib(self.domain_type) + target_kib + self.memory_offset_kib

    @property
    def current_maxmem_target_kib(self) -> int:
        return self.max_kib - xen_max_offset_kib(self.domain_type) - self.memory_offset_kib


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One consistent reading: the algorithm's `Host` plus what the ledger and actions need.

    `calibrated` holds the memory-offsets measured for newly booted domains (domid → KiB):
    reading never writes, so the squeezer records them (`memory/memory-offset`, §2.3).
    """

    host: Host
    views: Mapping[int, DomainView]
    physinfo: PhysInfo
    xen_domains: tuple[DomainInfo, ...]
    unaccounted_kib: int
    reserved_kib: int
    calibrated: Mapping[int, int]


def _calibrate_offset(xen: Hypervisor, domid: int, target_kib: int) -> int | None:
    # Re-read the size now rather than trusting the list read earlier, so a driver that
    # moved in between cannot skew the constant (§2.3).
    fresh = next((d for d in xen.domains() if d.domid == domid), None)
    return None if fresh is None else fresh.tot_kib - target_kib


def _booted_domain(
    xen: Hypervisor,
    info: DomainInfo,
    domain_type: DomainType,
    config: SqueezerConfig,
    calibrated: dict[int, int],
) -> tuple[Domain, DomainView] | None:
    store = xen.xenstore
    domid = info.domid

    def key(name: str) -> str | None:
        return store.read(domain_path(domid, name))

    target = parse_kib(key("memory/target"))
    if target is None:
        return None
    untrusted_offset = key("memory/memory-offset")
    if untrusted_offset is None:
        offset = _calibrate_offset(xen, domid, target)
        if offset is not None:
            calibrated[domid] = offset
    else:
        offset = parse_kib(untrusted_offset)
    if offset is None:
        return None
    dynamic_min = parse_kib(key("memory/dynamic-min"))
    dynamic_max = parse_kib(key("memory/dynamic-max"))
    if dynamic_min is None or dynamic_max is None:
        dynamic_min = dynamic_max = target
    can_balloon = key("control/feature-balloon") is not None
    view = DomainView(
        domid=domid,
        domain_type=domain_type,
        max_kib=info.max_kib,
        memory_offset_kib=offset,
        can_balloon=can_balloon,
        target_kib=target,
        uncooperative_flag=key("memory/uncooperative") is not None,
    )
    domain = Domain(
        domid=domid,
        can_balloon=can_balloon,
        dynamic_min_kib=dynamic_min,
        target_kib=target,
        dynamic_max_kib=dynamic_max,
        actual_kib=info.tot_kib - offset,
        maxmem_kib=_memory_max_kib(info, domain_type),
        inaccuracy_kib=config.domain_inaccuracy_kib,
    )
    return domain, view


def _memory_max_kib(info: DomainInfo, domain_type: DomainType) -> int:
    if info.domid == 0:
        return 0
    return max(0, info.max_kib - xen_max_offset_kib(domain_type))


def _unbooted_domain(
    info: DomainInfo, domain_type: DomainType, store: Xenstore, config: SqueezerConfig
) -> tuple[Domain, DomainView, int] | None:
    """A domain being built: pinned at its maxmem, never asked to balloon; returns the part
    of its reservation it has not allocated yet (§2.3, "unaccounted")."""
    reservation = parse_kib(store.read(domain_path(info.domid, "memory/initial-reservation")))
    if reservation is None:
        return None
    shadow_kib = 0 if domain_type is DomainType.PV else kib_of_mib(info.shadow_mib)
    unaccounted = max(0, reservation - info.tot_kib - shadow_kib)
    pinned = _memory_max_kib(info, domain_type)
    domain = Domain(
        domid=info.domid,
        can_balloon=False,
        dynamic_min_kib=pinned,
        target_kib=pinned,
        dynamic_max_kib=pinned,
        actual_kib=pinned,
        maxmem_kib=pinned,
        inaccuracy_kib=config.domain_inaccuracy_kib,
    )
    view = DomainView(
        domid=info.domid,
        domain_type=domain_type,
        max_kib=info.max_kib,
        memory_offset_kib=0,
        can_balloon=False,
        target_kib=None,
        uncooperative_flag=False,
    )
    return domain, view, unaccounted


def read_host(xen: Hypervisor, config: SqueezerConfig) -> Snapshot:
    """Snapshot the host; reads only (newly measured offsets are in `calibrated`)."""
    store = xen.xenstore
    physinfo, listed = xen.sample()
    xen_domains = tuple(listed)
    domains: list[Domain] = []
    views: dict[int, DomainView] = {}
    calibrated: dict[int, int] = {}
    unaccounted = 0
    for info in xen_domains:
        if info.domid == 0 and not config.manage_domain_zero:
            continue
        domain_type = (
            domain_type_of_xenstore(store.read(domain_path(info.domid, "domain-type")))
            or info.domain_type
        )
        booted = (
            store.read(domain_path(info.domid, "control/feature-balloon")) is not None
            or store.read(domain_path(info.domid, "data/updated")) is not None
        )
        if booted:
            seen = _booted_domain(xen, info, domain_type, config, calibrated)
        else:
            unbooted = _unbooted_domain(info, domain_type, store, config)
            seen = None if unbooted is None else unbooted[:2]
            unaccounted += 0 if unbooted is None else unbooted[2]
        if seen is not None:
            domains.append(seen[0])
            views[info.domid] = seen[1]
    reserved = total_reservations(store, {d.domid for d in xen_domains})
    free = physinfo.free_kib + physinfo.scrub_kib - unaccounted - reserved
    return Snapshot(
        host=Host(domains=tuple(domains), free_kib=free),
        views=views,
        physinfo=physinfo,
        xen_domains=xen_domains,
        unaccounted_kib=unaccounted,
        reserved_kib=reserved,
        calibrated=calibrated,
    )
