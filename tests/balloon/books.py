"""The books of a simulated host: where every KiB of it is at one instant, for tests that
check that memory is conserved."""

from __future__ import annotations

from dataclasses import dataclass

from xenmem.balloon import SqueezerConfig
from xenmem.balloon.snapshot import Snapshot, read_host
from xenmem.memory.units import kib_of_mib
from xenmem.xen import Hypervisor

__all__ = ["Ledger", "adds_up", "ledger_of"]


@dataclass(frozen=True, kw_only=True)
class Ledger:
    """KiB. `free_kib` is the free memory the squeezer works with (Xen free + scrub, less
    the unaccounted reservations of domains being built and the counted reservation
    records); `xen_kib` is what no domain holds and is not free: hypervisor, heap, crash
    kernel (derived: Xen does not report its own share)."""

    total_kib: int
    xen_kib: int
    dom0_kib: int
    domains_kib: int
    unaccounted_kib: int
    reserved_kib: int
    free_kib: int

    def adds_up(self) -> bool:
        parts = (
            self.xen_kib,
            self.dom0_kib,
            self.domains_kib,
            self.unaccounted_kib,
            self.reserved_kib,
            self.free_kib,
        )
        return sum(parts) == self.total_kib


def ledger_of(snapshot: Snapshot) -> Ledger:
    footprints = {d.domid: d.tot_kib + kib_of_mib(d.shadow_mib) for d in snapshot.xen_domains}
    dom0 = footprints.pop(0, 0)
    physinfo = snapshot.physinfo
    held = physinfo.free_kib + physinfo.scrub_kib + dom0 + sum(footprints.values())
    return Ledger(
        total_kib=physinfo.total_kib,
        xen_kib=physinfo.total_kib - held,
        dom0_kib=dom0,
        domains_kib=sum(footprints.values()),
        unaccounted_kib=snapshot.unaccounted_kib,
        reserved_kib=snapshot.reserved_kib,
        free_kib=snapshot.host.free_kib,
    )


def adds_up(xen: Hypervisor, config: SqueezerConfig) -> bool:
    """Whether the host's parts, as squeezed reads them now, add up to its total."""
    return ledger_of(read_host(xen, config)).adds_up()
