"""The hypervisor and clock ports; `xen.simulator` is the default backend.

Everything above this package talks to Xen only through `Hypervisor` and `Xenstore` (and a
simulated host's extras through `Lab`), so a real-Xen backend is a new class implementing
`Hypervisor`, not a rewrite.
"""

from xenmem.xen.clock import Clock, RealClock, VirtualClock, run_virtual
from xenmem.xen.port import (
    BALLOON_KEY,
    BOOT_SECONDS_KEY,
    BootConfig,
    DomainInfo,
    GuestConfigError,
    Hypervisor,
    Lab,
    PhysInfo,
    Watch,
    WatchCallback,
    XenError,
    Xenstore,
    domain_path,
    domain_type_of_xenstore,
    xenstore_domain_type,
)

__all__ = [
    "BALLOON_KEY",
    "BOOT_SECONDS_KEY",
    "BootConfig",
    "Clock",
    "DomainInfo",
    "GuestConfigError",
    "Hypervisor",
    "Lab",
    "PhysInfo",
    "RealClock",
    "VirtualClock",
    "Watch",
    "WatchCallback",
    "XenError",
    "Xenstore",
    "domain_path",
    "domain_type_of_xenstore",
    "run_virtual",
    "xenstore_domain_type",
]
