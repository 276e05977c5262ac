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
from xenmem.memory.units import bytes_of_kib, bytes_of_mib, mib_of_kib_free
from xenmem.toolstack.domains import Domains
from xenmem.toolstack.host_stats import DomainStat, domain_stats
from xenmem.toolstack.memory_sources import HostMemory, read_memory
from xenmem.xen import Clock, Hypervisor, Lab

__all__ = ["BootFree", "HostAgent", "HostBoot"]

# Before a migration xenopsd waits this long for the guest to balloon down (§9.4).
MIGRATION_BALLOON_TIMEOUT_S = 120.0
MIGRATION_BALLOON_POLL_S = 1.0


@dataclass(frozen=True, kw_only=True)
class BootFree:
    """The host's free memory at boot, in bytes: squeezed measures it once per host boot
    (`boot_id`, see `Hypervisor.boot_id`), and the toolstack keeps it across its restarts."""

    boot_id: str
    free_bytes: int


@dataclass(frozen=True, kw_only=True)
class HostBoot:
    """What a host reports when its toolstack starts (xapi-memory.md §5), in bytes."""

    total_bytes: int
    boot_free: BootFree
    reserved_kib: int
    dom0_bytes: int

    @property
    def memory_overhead(self) -> int:
        return host_memory_overhead(self.total_bytes, self.boot_free.free_bytes, self.reserved_kib)


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

    # -- host life --------------------------------------------------------------------

    async def boot(self, previous: BootFree | None = None) -> HostBoot:
        """Log in to squeezed and report the host's numbers. The boot-time free memory is
        sampled once per host boot (§5): `previous`, if measured in this boot, is kept."""
        boot_id = self._xen.boot_id()
        if previous is not None and previous.boot_id == boot_id:
            boot_free = previous
        else:
            measured = await self.memory.get_host_initial_free_memory("boot")
            boot_free = BootFree(boot_id=boot_id, free_bytes=measured)
        await self.domains.login()
        self.save()
        return HostBoot(
            total_bytes=bytes_of_mib(mib_of_kib_free(self._xen.physinfo().total_kib)),
            boot_free=boot_free,
            reserved_kib=self.memory.get_host_reserved_memory("boot"),
            dom0_bytes=self._dom0_bytes(),
        )

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
        """Keep a simulated host's state on disk, if it changed (a real host keeps itself)."""
        if self.lab is not None:
            self.lab.save()

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
