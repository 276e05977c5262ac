"""One pool host as the toolstack sees it: its Xen (through the hypervisor port), its
squeezed, xenopsd's domains, and what one look at the host says.

The agent is given its hypervisor, clock and (for a simulated host) lab; it never knows
which backend it runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from xenmem.balloon import MemoryService, Squeezer, SqueezerConfig
from xenmem.balloon.snapshot import Snapshot, read_host
from xenmem.errors import INTERNAL_ERROR
from xenmem.memory.accounting import host_memory_overhead
from xenmem.memory.units import bytes_of_kib, bytes_of_mib, kib_of_mib, mib_of_kib_free
from xenmem.toolstack.domains import Domains
from xenmem.toolstack.host_stats import DomainStat, domain_stats
from xenmem.toolstack.memory_sources import HostMemory, read_memory
from xenmem.xen import Clock, Hypervisor, Lab

__all__ = ["BootMeasures", "HostAgent", "HostBoot"]

# Before a migration xenopsd waits this long for the guest to balloon down (§9.4).
MIGRATION_BALLOON_TIMEOUT_S = 120.0
MIGRATION_BALLOON_POLL_S = 1.0


@dataclass(frozen=True, kw_only=True)
class BootMeasures:
    """What is measured once per host boot (`boot_id`, see `Hypervisor.boot_id`) and kept
    by the toolstack across its restarts, in bytes: the free memory at boot as squeezed
    samples it (xapi-memory.md §5), and Xen's own share (hypervisor, heap, crash kernel:
    what no domain holds and is not free), which does not change while the host runs."""

    boot_id: str
    free_bytes: int
    xen_bytes: int


@dataclass(frozen=True, kw_only=True)
class HostBoot:
    """What a host reports when its toolstack starts (xapi-memory.md §5), in bytes."""

    total_bytes: int
    measures: BootMeasures
    reserved_kib: int
    dom0_bytes: int

    @property
    def memory_overhead(self) -> int:
        return host_memory_overhead(self.total_bytes, self.measures.free_bytes, self.reserved_kib)


class HostAgent:
    """A host with its squeezed; `domains` builds and changes domains as xenopsd does."""

    def __init__(
        self, *, xen: Hypervisor, clock: Clock, config: SqueezerConfig, lab: Lab | None = None
    ) -> None:
        self._xen = xen
        self.config = config
        self.lab = lab
        self._clock = clock
        self._squeezer = Squeezer(xen, clock, config)
        self.memory = MemoryService(self._squeezer)
        self.domains = Domains(xen=xen, clock=clock, memory=self.memory, lab=lab)
        self._balancer: asyncio.Task[None] | None = None
        self.xen_bytes = 0  # Xen's own share, known once booted

    # -- host life --------------------------------------------------------------------

    async def boot(self, previous: BootMeasures | None = None) -> HostBoot:
        """Log in to squeezed and report the host's numbers. What is measured once per
        host boot is measured now, unless `previous` was measured in this boot."""
        boot_id = self._xen.boot_id()
        if previous is not None and previous.boot_id == boot_id:
            measures = previous
        else:
            measures = BootMeasures(
                boot_id=boot_id,
                free_bytes=await self.memory.get_host_initial_free_memory("boot"),
                xen_bytes=self._xen_share_bytes(),
            )
        self.xen_bytes = measures.xen_bytes
        await self.domains.login()
        self.save()
        return HostBoot(
            total_bytes=self.total_bytes,
            measures=measures,
            reserved_kib=self.memory.get_host_reserved_memory("boot"),
            dom0_bytes=self._dom0_bytes(),
        )

    @property
    def total_bytes(self) -> int:
        """The host's memory as xapi records it (host_metrics.memory_total): whole MiB."""
        return bytes_of_mib(mib_of_kib_free(self._xen.physinfo().total_kib))

    def _xen_share_bytes(self) -> int:
        """What of `total_bytes` no domain holds and is not free (Xen's share; the
        fraction of a MiB that memory_total leaves out is not counted)."""
        physinfo, domains = self._xen.sample()
        held = sum(d.tot_kib + kib_of_mib(d.shadow_mib) for d in domains)
        return self.total_bytes - bytes_of_kib(physinfo.free_kib + physinfo.scrub_kib + held)

    def _dom0_bytes(self) -> int:
        for info in self._xen.domains():
            if info.domid == 0:
                return bytes_of_kib(info.tot_kib)
        raise INTERNAL_ERROR("the host has no domain 0")

    def start_balancing(self) -> None:
        """Run squeezed's periodic rebalance (every 10 s) as a task on the running loop."""
        if self._balancer is None:
            self._balancer = asyncio.create_task(self.memory.run_periodic_balance())

    async def stop(self) -> None:
        if self._balancer is not None:
            self._balancer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._balancer
            self._balancer = None
        self.save()

    def save(self) -> None:
        self.domains.save()

    # -- observing --------------------------------------------------------------------

    @property
    def free_bytes(self) -> int:
        """Xen's free memory, scrub pages included (host_metrics.memory_free)."""
        physinfo = self._xen.physinfo()
        return bytes_of_kib(physinfo.free_kib + physinfo.scrub_kib)

    @property
    def reserve_bytes(self) -> int:
        """The memory squeezed keeps free of every domain (its host free target)."""
        return bytes_of_kib(self.config.target_host_free_kib)

    def snapshot(self) -> Snapshot:
        """One look at the host, as squeezed takes it; reads only."""
        return read_host(self._xen, self.config)

    def memory_reading(self) -> HostMemory:
        """What xcp-rrdd's squeezed plugin reads from the host."""
        return read_memory(self._xen)

    def stats(self, snapshot: Snapshot | None = None) -> dict[str, DomainStat]:
        """VM.stat for every domain built here, from one look at the host (or `snapshot`)."""
        seen = self.snapshot() if snapshot is None else snapshot
        return domain_stats(seen, self._squeezer.health(), self.domains.resident)

    def stat(self, vm_ref: str) -> DomainStat:
        stat = self.stats().get(vm_ref)
        if stat is None:
            raise INTERNAL_ERROR(f"{vm_ref} has no domain on this host")
        return stat

    # -- migration --------------------------------------------------------------------

    async def balloon_for_migration(self, vm_ref: str, dynamic_min: int, dynamic_max: int) -> None:
        """Pin the range to dynamic_min and give the guest up to 120 s to get there;
        the timeout is not an error on this path (squeezer.md §9.4)."""
        if dynamic_min == dynamic_max:
            return
        await self.domains.set_dynamic_range(vm_ref, dynamic_min, dynamic_min)
        waited = 0.0
        while waited < MIGRATION_BALLOON_TIMEOUT_S and not self.stat(vm_ref).on_target:
            await self._clock.sleep(MIGRATION_BALLOON_POLL_S)
            waited += MIGRATION_BALLOON_POLL_S
