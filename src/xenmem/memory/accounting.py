"""Host free memory, admission, maximise_memory and host overhead (xapi-memory.md §2.5, §4, §5)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from xenmem.errors import HOST_NOT_ENOUGH_FREE_MEMORY, INVALID_VALUE
from xenmem.memory.units import bytes_of_kib, round_down_to_mib
from xenmem.memory.vm import AccountingPolicy, VmMemory, required_memory, start_requirement

__all__ = [
    "APPROXIMATE_VCPUS",
    "HOST_RESERVED_KIB",
    "assert_enough_memory",
    "bisect",
    "host_free_memory",
    "host_memory_overhead",
    "maximise_memory",
]

# squeezed's target_host_free_mem_kib: 64 MiB low-memory emergency pool + 8 MiB (§5).
HOST_RESERVED_KIB = 65536 + 8192
# maximise_memory(approximate=true) sizes for this many vCPUs, tolerating later growth (§2.5).
APPROXIMATE_VCPUS = 64


def host_free_memory(memory_total: int, host_overhead: int, guest_costs: Iterable[int]) -> int:
    """Host.compute_free_memory in bytes, never negative (§4.2).

    `guest_costs` holds one `used_memory` term per VM in resident_on ++ scheduled_to_be_resident_on,
    concatenated without de-duplication: a VM in both lists is counted twice, as in xapi.
    """
    return max(0, memory_total - host_overhead - sum(guest_costs))


def assert_enough_memory(vm: VmMemory, available: int) -> None:
    """Admission (§4.3): HOST_NOT_ENOUGH_FREE_MEMORY [needed; available] in bytes; equality fits."""
    needed = start_requirement(vm)
    if available < needed:
        raise HOST_NOT_ENOUGH_FREE_MEMORY(needed, available)


def bisect(fits: Callable[[int], bool], lower: int, upper: int) -> int:
    """xapi's integer bisection: the largest x in (lower, upper] with fits(x), else `lower`.

    `fits(lower)` is never evaluated; `fits` must be monotone (true then false).
    """
    while upper - lower >= 2:
        middle = (upper + lower) // 2
        if fits(middle):
            lower = middle
        else:
            upper = middle
    return upper if fits(upper) else lower


def maximise_memory(vm: VmMemory, total: int, *, approximate: bool) -> int:
    """VM.maximise_memory: the largest static_max (bytes, whole MiB) that fits in `total` (§2.5).

    A negative total is INVALID_VALUE ["total", total] (xapi's bisection fails an
    assertion: INTERNAL_ERROR).
    """
    if total < 0:
        raise INVALID_VALUE("total", total)
    if approximate:
        vm = replace(vm, vcpus_max=APPROXIMATE_VCPUS)

    def fits(static_max: int) -> bool:
        candidate = replace(vm, static_max=static_max)
        return required_memory(candidate, AccountingPolicy.STATIC_MAX) <= total

    return round_down_to_mib(bisect(fits, 0, total))


def host_memory_overhead(
    total_bytes: int, boot_free_bytes: int, reserved_kib: int = HOST_RESERVED_KIB
) -> int:
    """host.memory_overhead: what Xen, the crash kernel and squeezed's reserve take (§5)."""
    return (total_bytes - boot_free_bytes) + bytes_of_kib(reserved_kib)
