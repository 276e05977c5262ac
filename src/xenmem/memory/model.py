"""The per-VM overhead and footprint model (xapi-memory.md §2.1-2.2).

All formulas here work in whole MiB, as xapi's `Memory_model` does; callers convert
bytes with the round-up ("used") conversion first (§2.3, see `xenmem.memory.vm`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from xenmem.errors import INTERNAL_ERROR
from xenmem.memory.units import PAGES_PER_MIB, divide_rounding_up, pages_of_mib

__all__ = [
    "DEFAULT_SHADOW_MULTIPLIER",
    "MODELS",
    "DomainType",
    "MemoryModel",
    "model_for",
]

DEFAULT_SHADOW_MULTIPLIER = 1.0

# Xen's per-vCPU allowance: 38 pages per vCPU, rounded up to whole MiB (CA-423172).
_XEN_PAGES_PER_VCPU = 38
# Shadow sizing: 256 pages per vCPU, plus one page per MiB for the p2m map and one for
# shadow-resident pages.
_SHADOW_PAGES_PER_VCPU = 256


class DomainType(enum.StrEnum):
    """VM.domain_type as on the wire."""

    HVM = "hvm"
    PV = "pv"
    PVH = "pvh"
    PV_IN_PVH = "pv_in_pvh"
    UNSPECIFIED = "unspecified"


def _no_shim(static_max_mib: int) -> int:
    return 0


def _pvh_shim_mib(static_max_mib: int) -> int:
    return 23 + static_max_mib // 90


@dataclass(frozen=True, kw_only=True)
class MemoryModel:
    """One of xapi's three memory models; every method takes and returns MiB."""

    name: str
    extra_internal_mib: int
    extra_external_mib: int
    shim_mib: Callable[[int], int]
    can_start_ballooned_down: bool = True

    @staticmethod
    def shadow_base_mib(static_max_mib: int, vcpus: int) -> int:
        """The shadow memory at multiplier 1.0."""
        pages = _SHADOW_PAGES_PER_VCPU * vcpus + 2 * static_max_mib
        return divide_rounding_up(pages, PAGES_PER_MIB)

    def shadow_mib(self, static_max_mib: int, vcpus: int, multiplier: float) -> int:
        shadow = self.shadow_base_mib(static_max_mib, vcpus) * multiplier
        # Below 1 (-inf included) xapi's `max 1L` gives 1; int() truncates toward zero,
        # as OCaml's Int64.of_float does (17 x 1.5 -> 25).
        return int(shadow) if shadow >= 1 else 1

    @staticmethod
    def vcpu_xen_mib(vcpus: int) -> int:
        return divide_rounding_up(_XEN_PAGES_PER_VCPU * vcpus, PAGES_PER_MIB)

    def overhead_mib(self, static_max_mib: int, vcpus: int, multiplier: float) -> int:
        return (
            self.extra_internal_mib
            + self.extra_external_mib
            + self.shadow_mib(static_max_mib, vcpus, multiplier)
            + self.vcpu_xen_mib(vcpus)
            + self.shim_mib(static_max_mib)
        )

    def footprint_mib(
        self, target_mib: int, static_max_mib: int, vcpus: int, multiplier: float
    ) -> int:
        """Host memory needed to run the domain at `target_mib` (required_host_free_mib)."""
        return target_mib + self.overhead_mib(static_max_mib, vcpus, multiplier)

    def xen_max_mib(self, static_max_mib: int) -> int:
        """Xen's maxmem for the domain."""
        return static_max_mib + self.extra_internal_mib + self.shim_mib(static_max_mib)

    @property
    def xen_max_offset_mib(self) -> int:
        return self.extra_internal_mib

    def build_max_mib(self, static_max_mib: int, video_mib: int) -> int:
        return static_max_mib - video_mib + self.shim_mib(static_max_mib)

    def build_start_mib(self, target_mib: int, video_mib: int) -> int:
        # The shim is sized on the target here, not on static_max (reference behaviour).
        return target_mib - video_mib + self.shim_mib(target_mib)

    def build_claim_pages(self, target_mib: int, video_mib: int) -> int:
        return pages_of_mib(self.build_start_mib(target_mib, video_mib))


HVM_MODEL = MemoryModel(name="HVM", extra_internal_mib=1, extra_external_mib=1, shim_mib=_no_shim)
LINUX_MODEL = MemoryModel(
    name="Linux", extra_internal_mib=0, extra_external_mib=1, shim_mib=_no_shim
)
PV_IN_PVH_MODEL = MemoryModel(
    name="PVinPVH", extra_internal_mib=1, extra_external_mib=1, shim_mib=_pvh_shim_mib
)

MODELS = (HVM_MODEL, LINUX_MODEL, PV_IN_PVH_MODEL)
"""Every model, one per family of domain types."""

_MODELS = {
    DomainType.HVM: HVM_MODEL,
    DomainType.PVH: HVM_MODEL,
    DomainType.PV: LINUX_MODEL,
    DomainType.PV_IN_PVH: PV_IN_PVH_MODEL,
}


def model_for(domain_type: DomainType) -> MemoryModel:
    """The model xapi uses for a domain type; `unspecified` is xapi's INTERNAL_ERROR."""
    try:
        return _MODELS[domain_type]
    except KeyError:
        raise INTERNAL_ERROR("unspecified domain type") from None
