"""The embedded default hypervisor: a simulated Xen host with realistic balloon drivers."""

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
from xenmem.xen.simulator.host import TICKS_PER_SECOND, Fault, Guest, GuestFault, SimulatedHost
from xenmem.xen.simulator.spec import HostSpec, default_dom0_kib, default_xen_kib

__all__ = [
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
    "Motion",
    "NoDriver",
    "SimulatedHost",
    "Stuck",
    "default_dom0_kib",
    "default_xen_kib",
]
