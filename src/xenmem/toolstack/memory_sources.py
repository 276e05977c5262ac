"""The memory data sources xcp-rrdd records (its squeezed plugin, rrdp-squeezed), read
from a host through the hypervisor port.

Host: `memory_total_kib` and `memory_free_kib` (Xen's total and free memory, KiB; free
excludes memory awaiting scrubbing), `memory_reclaimed` (bytes: Σ dynamic_max − target
over the domains that have both keys) and `memory_reclaimed_max` (bytes: Σ target −
dynamic_min, likewise). VM: `memory` (bytes Xen has given the domain), `memory_target`
(bytes, from `memory/target`, when the domain has one) and `memory_internal_free` (KiB,
the guest agent's `data/meminfo_free`, when it has written one). A paused domain reports
nothing (CA-34383: its readings would only make a migration look discontinuous).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from xenmem.memory.units import bytes_of_kib
from xenmem.rrd import SourceSpec
from xenmem.xen import Hypervisor, domain_path

__all__ = [
    "HOST_SOURCES",
    "VM_SOURCES",
    "DomainMemory",
    "HostMemory",
    "SourceInfo",
    "host_readings",
    "read_memory",
    "vm_readings",
]

_INT64 = re.compile(r"-?[0-9]{1,19}")
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, kw_only=True)
class SourceInfo:
    """A data source as `get_data_sources` describes it."""

    spec: SourceSpec
    description: str
    units: str


def _source(name: str, description: str, units: str, *, minimum: float) -> SourceInfo:
    return SourceInfo(
        spec=SourceSpec(name=name, minimum=minimum), description=description, units=units
    )


HOST_SOURCES = {
    info.spec.name: info
    for info in (
        _source("memory_total_kib", "Memory of the host", "KiB", minimum=0.0),
        _source("memory_free_kib", "Memory of the host that Xen has free", "KiB", minimum=0.0),
        _source(
            "memory_reclaimed",
            "Memory squeezed has taken back from guests below their dynamic maximum",
            "B",
            minimum=-math.inf,
        ),
        _source(
            "memory_reclaimed_max",
            "Memory squeezed could take back from guests down to their dynamic minimum",
            "B",
            minimum=-math.inf,
        ),
    )
}
VM_SOURCES = {
    info.spec.name: info
    for info in (
        _source("memory", "Memory the VM's domain has", "B", minimum=0.0),
        _source("memory_target", "Balloon target of the VM's domain", "B", minimum=0.0),
        _source(
            "memory_internal_free", "Free memory reported by the guest agent", "KiB", minimum=0.0
        ),
    )
}


@dataclass(frozen=True, kw_only=True)
class DomainMemory:
    """One domain's size (KiB) and its memory keys as read (None: absent or unreadable)."""

    domid: int
    paused: bool
    tot_kib: int
    target_kib: int | None
    dynamic_min_kib: int | None
    dynamic_max_kib: int | None
    meminfo_free_kib: int | None


@dataclass(frozen=True, kw_only=True)
class HostMemory:
    total_kib: int
    free_kib: int
    domains: tuple[DomainMemory, ...]

    def domain(self, domid: int) -> DomainMemory | None:
        return next((d for d in self.domains if d.domid == domid), None)


def _int64(untrusted_value: str | None) -> int | None:
    """A decimal int64 from the key tree (a guest writes `data/`), or None."""
    if untrusted_value is None or not _INT64.fullmatch(untrusted_value):
        return None
    value = int(untrusted_value)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


def read_memory(xen: Hypervisor) -> HostMemory:
    """Physinfo, the domain list and each domain's memory keys, from one look at Xen."""
    physinfo, infos = xen.sample()
    store = xen.xenstore

    def key(domid: int, name: str) -> int | None:
        return _int64(store.read(domain_path(domid, name)))

    return HostMemory(
        total_kib=physinfo.total_kib,
        free_kib=physinfo.free_kib,
        domains=tuple(
            DomainMemory(
                domid=info.domid,
                paused=info.paused,
                tot_kib=info.tot_kib,
                target_kib=key(info.domid, "memory/target"),
                dynamic_min_kib=key(info.domid, "memory/dynamic-min"),
                dynamic_max_kib=key(info.domid, "memory/dynamic-max"),
                meminfo_free_kib=key(info.domid, "data/meminfo_free"),
            )
            for info in infos
        ),
    )


def host_readings(memory: HostMemory) -> dict[str, float]:
    reclaimed = reclaimable = 0
    for domain in memory.domains:
        if domain.target_kib is None:
            continue
        if domain.dynamic_max_kib is not None:
            reclaimed += domain.dynamic_max_kib - domain.target_kib
        if domain.dynamic_min_kib is not None:
            reclaimable += domain.target_kib - domain.dynamic_min_kib
    return {
        "memory_total_kib": float(memory.total_kib),
        "memory_free_kib": float(memory.free_kib),
        "memory_reclaimed": float(bytes_of_kib(reclaimed)),
        "memory_reclaimed_max": float(bytes_of_kib(reclaimable)),
    }


def vm_readings(domain: DomainMemory) -> dict[str, float]:
    """What the domain reports; nothing for a paused one."""
    if domain.paused:
        return {}
    readings = {"memory": float(bytes_of_kib(domain.tot_kib))}
    if domain.target_kib is not None:
        readings["memory_target"] = float(bytes_of_kib(domain.target_kib))
    if domain.meminfo_free_kib is not None:
        readings["memory_internal_free"] = float(domain.meminfo_free_kib)
    return readings
