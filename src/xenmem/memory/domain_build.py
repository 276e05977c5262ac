"""xenopsd's memory arithmetic at domain build (squeezer.md §9.1, xapi-memory.md §2.3, §4.7).

What xenopsd asks squeezed to reserve, the balloon target it starts the guest at, and the
limits it reports; all pure, bytes in and bytes or KiB out as named.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from xenmem.memory.model import DEFAULT_SHADOW_MULTIPLIER, DomainType, model_for
from xenmem.memory.units import (
    bytes_of_kib,
    bytes_of_mib,
    kib_of_bytes_free,
    kib_of_bytes_used,
    kib_of_mib,
    mib_of_bytes_used,
    mib_of_kib_used,
)
from xenmem.memory.vm import VmMemory, overhead_bytes

__all__ = [
    "BuildKind",
    "ReservationRange",
    "initial_target_bytes",
    "memory_limit_bytes",
    "reservation_range",
    "shadow_allocation_mib",
    "target_key_kib",
    "xenopsd_overhead_bytes",
]


class BuildKind(enum.Enum):
    """Why a domain is being built: the reservation differs for each (squeezer.md §9.1)."""

    START = "start"
    RESUME = "resume"
    MIGRATION = "migration"


@dataclass(frozen=True, kw_only=True)
class ReservationRange:
    """What xenopsd asks squeezed for (reserve_memory_range), in KiB."""

    min_kib: int
    max_kib: int


def _xenopsd_multiplier(vm: VmMemory) -> float:
    # xenopsd applies the VM's shadow multiplier to HVM domains only (§2.3).
    return vm.shadow_multiplier if vm.domain_type is DomainType.HVM else DEFAULT_SHADOW_MULTIPLIER


def xenopsd_overhead_bytes(vm: VmMemory) -> int:
    """The overhead xenopsd reserves: the VM's multiplier only for HVM, 1.0 for every other type.

    This differs from xapi's stored overhead (PVH uses its multiplier there, §2.3).
    """
    return overhead_bytes(vm, _xenopsd_multiplier(vm))


def shadow_allocation_mib(vm: VmMemory) -> int:
    """The shadow memory Xen gives the domain at build: none for PV, which runs without
    shadow paging outside migration; the model's shadow at xenopsd's multiplier otherwise."""
    if vm.domain_type is DomainType.PV:
        return 0
    return model_for(vm.domain_type).shadow_mib(
        mib_of_bytes_used(vm.static_max), vm.vcpus_max, _xenopsd_multiplier(vm)
    )


def reservation_range(
    vm: VmMemory, kind: BuildKind, *, exact_bytes: int | None = None
) -> ReservationRange:
    """The range to reserve: [dynamic_min, dynamic_max] for a fresh start; exactly
    `exact_bytes` (the suspend image's memory, or the sender's memory limit) otherwise;
    each plus the overhead, rounded up to KiB.
    """
    if kind is BuildKind.START:
        low, high = vm.dynamic_min, vm.dynamic_max
    else:
        if exact_bytes is None:
            raise ValueError(f"a {kind.value} reserves an exact amount; none given")
        low = high = exact_bytes
    overhead = xenopsd_overhead_bytes(vm)
    return ReservationRange(
        min_kib=kib_of_bytes_used(low + overhead), max_kib=kib_of_bytes_used(high + overhead)
    )


def initial_target_bytes(vm: VmMemory, reserved_kib: int) -> int:
    """The guest's first balloon target: what the reservation leaves after the overhead,
    never above dynamic_max."""
    return min(vm.dynamic_max, bytes_of_kib(reserved_kib) - xenopsd_overhead_bytes(vm))


def target_key_kib(target_bytes: int) -> int:
    """`memory/target` as written at build: the target rounded up to a whole MiB, in KiB."""
    return kib_of_mib(mib_of_kib_used(kib_of_bytes_free(target_bytes)))


def memory_limit_bytes(domain_type: DomainType, *, actual_bytes: int, maxmem_bytes: int) -> int:
    """xenopsd's memory_limit: what a migration must reserve on the receiving host."""
    offset = bytes_of_mib(model_for(domain_type).xen_max_offset_mib)
    return max(actual_bytes, maxmem_bytes - offset)
