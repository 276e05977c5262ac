"""The shape of a simulated host: total memory, Xen's own share and dom0 (simulator-defaults.md)."""

from __future__ import annotations

from dataclasses import dataclass

from xenmem.memory.units import KIB_PER_MIB, kib_of_bytes_free, mib_of_kib_free

__all__ = ["HostSpec", "default_dom0_kib", "default_xen_kib"]

_GIB_MIB = 1024
# Confirmed: the installer's dom0_mem is 1 GiB + 5 % of (RAM + 256 MiB), rounded down to
# 16 MiB, capped at 8 GiB.
_DOM0_BASE_MIB = 1024
_DOM0_EXTRA_MIB = 256
_DOM0_QUANTUM_MIB = 16
_DOM0_CAP_MIB = 8 * _GIB_MIB
# Confirmed: the crash kernel's reservation.
_CRASH_KERNEL_MIB = 256
# Estimate (not published): Xen itself takes about 20-40 MiB plus ~1.07 % of RAM.
_XEN_FIXED_MIB = 32
_XEN_PER_MILLE_OF_RAM = 10.7


def default_dom0_kib(total_kib: int) -> int:
    ram_mib = mib_of_kib_free(total_kib)
    mib = _DOM0_BASE_MIB + (ram_mib + _DOM0_EXTRA_MIB) * 5 // 100
    mib = min(mib // _DOM0_QUANTUM_MIB * _DOM0_QUANTUM_MIB, _DOM0_CAP_MIB)
    return mib * KIB_PER_MIB


def default_xen_kib(total_kib: int) -> int:
    """Hypervisor + heap + crash kernel; the hypervisor part is an estimate."""
    hypervisor_kib = _XEN_FIXED_MIB * KIB_PER_MIB + int(total_kib * _XEN_PER_MILLE_OF_RAM / 1000)
    return hypervisor_kib + _CRASH_KERNEL_MIB * KIB_PER_MIB


@dataclass(frozen=True, kw_only=True)
class HostSpec:
    """Fixed facts of a simulated host, in KiB.

    `dom0_kib` None builds a bare host without a domain 0 (the reference simulator's
    scenarios, where domid 0 is an ordinary guest). Scrubbing returns freed memory at
    `scrub_rate_kib_s` (an estimate: 1 GiB/s).
    """

    total_kib: int
    xen_kib: int
    dom0_kib: int | None
    scrub_rate_kib_s: int = 1024 * 1024

    def __post_init__(self) -> None:
        dom0 = self.dom0_kib or 0
        if min(self.total_kib, self.xen_kib, dom0, self.scrub_rate_kib_s) < 0:
            raise ValueError("host amounts must not be negative")
        if self.xen_kib + dom0 > self.total_kib:
            raise ValueError("Xen and dom0 do not fit in the host's memory")

    @classmethod
    def default(cls, memory_bytes: int) -> HostSpec:
        """A XenServer-like host with `memory_bytes` of RAM and the installer's dom0."""
        total_kib = kib_of_bytes_free(memory_bytes)
        return cls(
            total_kib=total_kib,
            xen_kib=default_xen_kib(total_kib),
            dom0_kib=default_dom0_kib(total_kib),
        )
