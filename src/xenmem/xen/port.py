"""The hypervisor port: what squeezed and xenopsd need from Xen, and nothing more.

Amounts are KiB, named `*_kib`: squeezed works in KiB throughout (squeezer.md §2) and a real
backend converts Xen's page counts with `memory.units.kib_of_pages`. Keeping KiB (rather
than pages) at this port lets the simulator move balloons by the reference simulator's
KiB-sized steps (squeezer.md §7.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from xenmem.memory.model import DomainType

__all__ = [
    "BALLOON_KEY",
    "BOOT_SECONDS_KEY",
    "BootConfig",
    "DomainInfo",
    "GuestConfigError",
    "Hypervisor",
    "Lab",
    "PhysInfo",
    "Watch",
    "WatchCallback",
    "XenError",
    "Xenstore",
    "domain_path",
    "domain_type_of_xenstore",
    "xenstore_domain_type",
]


class XenError(Exception):
    """A failed hypercall or xenstore operation, translated once at the port edge."""


@dataclass(frozen=True, kw_only=True)
class PhysInfo:
    """Xen's physinfo in KiB: total host memory, free memory, memory awaiting scrubbing."""

    total_kib: int
    free_kib: int
    scrub_kib: int


@dataclass(frozen=True, kw_only=True)
class DomainInfo:
    """One entry of Xen's domain list (domain_getinfolist), amounts in KiB."""

    domid: int
    domain_type: DomainType
    tot_kib: int
    max_kib: int
    shadow_mib: int
    paused: bool
    shutdown: bool


@dataclass(frozen=True, kw_only=True)
class BootConfig:
    """What a real host needs to boot a new domain, besides its memory: the VM's identity
    and, for PV guests, the kernel, ramdisk and command line (VM.PV_kernel, ...)."""

    uuid: str
    name: str
    vcpus: int
    kernel: str = ""
    ramdisk: str = ""
    cmdline: str = ""


WatchCallback = Callable[[str], None]
"""Called with the path that changed (or the special `@introduceDomain` / `@releaseDomain`)."""


@dataclass(frozen=True, kw_only=True)
class Watch:
    """A registered watch: `callback` fires for writes and removals at or under `path`."""

    path: str
    callback: WatchCallback
    token: int


class Xenstore(Protocol):
    """A xenstore-like key tree: absolute paths, string values, watches."""

    def read(self, path: str) -> str | None:
        """The value at `path`, or None if the key does not exist."""
        ...

    def write(self, path: str, value: str) -> None: ...

    def remove(self, path: str) -> None:
        """Remove `path` and everything under it; a missing path is not an error."""
        ...

    def directory(self, path: str) -> list[str]:
        """The names of the children of `path` (empty if none or missing)."""
        ...

    def watch(self, path: str, callback: WatchCallback) -> Watch: ...

    def unwatch(self, watch: Watch) -> None: ...


class Hypervisor(Protocol):
    """The hypercalls squeezed and xenopsd use. Unknown domids raise `XenError`."""

    @property
    def xenstore(self) -> Xenstore: ...

    def physinfo(self) -> PhysInfo: ...

    def boot_id(self) -> str:
        """An identifier that changes whenever the host reboots (and only then)."""
        ...

    def domains(self) -> list[DomainInfo]:
        """Every existing domain, in creation order."""
        ...

    def sample(self) -> tuple[PhysInfo, list[DomainInfo]]:
        """Physinfo and the domain list from one look at the host, so that memory moving
        between two calls is not seen both in a domain and as free."""
        ...

    def create_domain(
        self, *, domain_type: DomainType, max_kib: int, boot: BootConfig | None = None
    ) -> int:
        """A new, paused, empty domain; returns its domid and fires `@introduceDomain`.

        `boot` says what the domain will run; a host that cannot boot a domain without it
        raises `XenError` when it is missing.
        """
        ...

    def build_domain(self, domid: int, *, memory_kib: int, shadow_mib: int) -> None:
        """Allocate the domain's initial memory and shadow (the domain builder's job).

        Raises `XenError` if the host has not that much free memory.
        """
        ...

    def destroy_domain(self, domid: int) -> None:
        """Release the domain's memory (to be scrubbed) and fire `@releaseDomain`."""
        ...

    def pause_domain(self, domid: int) -> None: ...

    def unpause_domain(self, domid: int) -> None: ...

    def set_maxmem(self, domid: int, max_kib: int) -> None:
        """Xen's hard cap on the domain's allocation; may be set below its current size."""
        ...

    def set_shadow_allocation(self, domid: int, shadow_mib: int) -> None:
        """Resize the domain's shadow memory; growing it takes free memory, else `XenError`."""
        ...


BALLOON_KEY = "xenmem_balloon"
"""VM.other_config key: how a simulated guest's balloon driver behaves (see `Lab`)."""
BOOT_SECONDS_KEY = "xenmem_boot_seconds"
"""VM.other_config key: how long a simulated guest takes to load its balloon driver."""


class GuestConfigError(ValueError):
    """A lab guest setting in a VM's other_config that cannot be understood."""

    def __init__(self, key: str, untrusted_value: str) -> None:
        super().__init__(f"other_config:{key} = {untrusted_value!r}")
        self.key = key
        self.value = untrusted_value


class Lab(Protocol):
    """What only a simulated host has: guests that behave as their VM's other_config says
    (`BALLOON_KEY`, `BOOT_SECONDS_KEY`), and a state kept on disk so that the guests
    outlive the toolstack. A real host has no lab: its guests are real."""

    def check_guest(self, other_config: Mapping[str, str]) -> None:
        """Raise `GuestConfigError` for a lab setting that cannot be understood."""
        ...

    def attach_guest(self, domid: int, other_config: Mapping[str, str], *, booted: bool) -> None:
        """Run the guest `other_config` describes in the domain; `booted`: its balloon
        driver is loaded already (a resumed or migrated guest)."""
        ...

    def save(self) -> None:
        """Keep the host's state on disk if it changed since it was last kept."""
        ...


def domain_path(domid: int, key: str = "") -> str:
    """`/local/domain/<domid>[/<key>]` (squeezer.md §6)."""
    base = f"/local/domain/{domid}"
    return f"{base}/{key}" if key else base


_XENSTORE_TYPES = {
    DomainType.HVM: "hvm",
    DomainType.PV: "pv",
    DomainType.PVH: "pvh",
    DomainType.PV_IN_PVH: "pv-in-pvh",
}
_TYPES_OF_XENSTORE = {text: domain_type for domain_type, text in _XENSTORE_TYPES.items()}


def xenstore_domain_type(domain_type: DomainType) -> str:
    """The `domain-type` key's spelling (xenopsd writes `pv-in-pvh`, the API `pv_in_pvh`)."""
    return _XENSTORE_TYPES[domain_type]


def domain_type_of_xenstore(untrusted_text: str | None) -> DomainType | None:
    """The domain type a `domain-type` value names, or None if it names none."""
    return _TYPES_OF_XENSTORE.get(untrusted_text) if untrusted_text is not None else None
