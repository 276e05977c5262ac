"""The embedded default hypervisor: a simulated Xen host with realistic balloon drivers.

Only the composition root that starts a pool (`xenmem.cli.pool`), the `simulate` command
and tests use this package; the toolstack sees a simulated host through the `Hypervisor`
and `Lab` ports alone.
"""

from xenmem.xen.simulator.drivers import (
    Cap,
    Driver,
    Floor,
    Greedy,
    Ideal,
    Intermittent,
    Motion,
    NoDriver,
    Stuck,
)
from xenmem.xen.simulator.guests import DEFAULT_BOOT_SECONDS, guest_of
from xenmem.xen.simulator.host import TICKS_PER_SECOND, Fault, Guest, GuestFault, SimulatedHost
from xenmem.xen.simulator.lab import KeptHostError, SimulatedLab, load_host, resume_time
from xenmem.xen.simulator.spec import HostSpec, default_dom0_kib, default_xen_kib

__all__ = [
    "DEFAULT_BOOT_SECONDS",
    "TICKS_PER_SECOND",
    "Cap",
    "Driver",
    "Fault",
    "Floor",
    "Greedy",
    "Guest",
    "GuestFault",
    "HostSpec",
    "Ideal",
    "Intermittent",
    "KeptHostError",
    "Motion",
    "NoDriver",
    "SimulatedHost",
    "SimulatedLab",
    "Stuck",
    "default_dom0_kib",
    "default_xen_kib",
    "guest_of",
    "load_host",
    "resume_time",
]
