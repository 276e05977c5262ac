"""One pool host: its simulated Xen, its squeezed, and xenopsd's part in the domain lifecycle.

The agent speaks to its squeezed only through the reservation interface (squeezer.md §5),
as xenopsd does, so a host agent in its own process later is a transport, not a rewrite.
Domains are named by the VM reference the toolstack gives them. Squeezed's errors are
turned into XenAPI errors here, once (squeezer.md §5.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from xenmem.balloon import (
    BalloonHealth,
    CannotFreeThisMuchMemory,
    DomainsRefusedToCooperate,
    MemoryService,
    Squeezer,
    SqueezerConfig,
)
from xenmem.balloon.policy import has_hit_target
from xenmem.balloon.snapshot import Snapshot, read_host
from xenmem.errors import HOST_NOT_ENOUGH_FREE_MEMORY, INTERNAL_ERROR, VMS_FAILED_TO_COOPERATE
from xenmem.memory import VmMemory
from xenmem.memory.accounting import host_memory_overhead
from xenmem.memory.domain_build import (
    BuildKind,
    ReservationRange,
    initial_target_bytes,
    memory_limit_bytes,
    reservation_range,
    shadow_allocation_mib,
    target_key_kib,
)
from xenmem.memory.units import (
    bytes_of_kib,
    bytes_of_mib,
    kib_of_bytes_free,
    mib_of_kib_free,
)
from xenmem.xen import Clock, XenError, domain_path
from xenmem.xen.simulator import Guest, HostSpec, SimulatedHost

__all__ = ["DomainStat", "HostAgent", "HostBoot"]

_T = TypeVar("_T")

XENOPSD = "xenopsd"
# Keys xenmem's xenopsd keeps in a domain's xenstore directory (as xenopsd keeps the VM
# uuid there): which VM the domain is, and that its build finished.
VM_REF_KEY = "xenmem/vm-ref"
BUILT_KEY = "xenmem/built"
# xenopsd retries a refused reservation every 10 s until 60 s have passed, to ride out
# guests whose balloon drivers have not loaded yet (squeezer.md §5.4).
RESERVE_RETRY_INTERVAL_S = 10.0
RESERVE_RETRY_WINDOW_S = 60.0
# Before a migration xenopsd waits this long for the guest to balloon down (§9.4).
MIGRATION_BALLOON_TIMEOUT_S = 120.0
MIGRATION_BALLOON_POLL_S = 1.0


@dataclass(frozen=True, kw_only=True)
class HostBoot:
    """What a host reports when its toolstack starts (xapi-memory.md §5), in bytes."""

    total_bytes: int
    boot_free_bytes: int
    reserved_kib: int

    @property
    def memory_overhead(self) -> int:
        return host_memory_overhead(self.total_bytes, self.boot_free_bytes, self.reserved_kib)


@dataclass(frozen=True, kw_only=True)
class DomainStat:
    """xenopsd's VM.stat for one running domain, in bytes (squeezer.md §9.2)."""

    domid: int
    target_bytes: int
    actual_bytes: int
    limit_bytes: int
    shadow_bytes: int
    can_balloon: bool
    on_target: bool
    uncooperative: bool
    health: BalloonHealth | None

    @property
    def refused(self) -> bool:
        """A squeeze found it stuck and it has not moved since."""
        return self.health is not None and self.health.refused_at_s is not None

    @property
    def cooperative(self) -> bool:
        """Really co-operating: it can balloon, has reached its target, is not flagged
        uncooperative, and has not refused to move since a squeeze last needed it to."""
        return self.can_balloon and self.on_target and not self.uncooperative and not self.refused


class HostAgent:
    """A simulated host with its squeezed; domains are built as xenopsd builds them."""

    def __init__(
        self,
        *,
        spec: HostSpec,
        clock: Clock,
        config: SqueezerConfig,
        save_path: Path | None = None,
        saved: Mapping[str, Any] | None = None,
    ) -> None:
        """A freshly booted host, or with `saved` (from `save`) the host as it was."""
        self.clock = clock
        if saved is None:
            self.xen = SimulatedHost(spec, clock)
            self._boot_free_bytes: int | None = None
        else:
            self.xen = SimulatedHost.from_data(spec, clock, saved["host"])
            self._boot_free_bytes = int(saved["boot_free_bytes"])
        self.squeezer = Squeezer(self.xen, clock, config)
        self.memory = MemoryService(self.squeezer)
        self._session = XENOPSD
        self._domids = self._vms_in_xenstore()
        self._balancer: asyncio.Task[None] | None = None
        self._save_path = save_path

    def _vms_in_xenstore(self) -> dict[str, int]:
        store = self.xen.xenstore
        found = {}
        for info in self.xen.domains():
            vm_ref = store.read(domain_path(info.domid, VM_REF_KEY))
            if vm_ref:
                found[vm_ref] = info.domid
        return found

    @staticmethod
    def load_saved(path: Path) -> dict[str, Any] | None:
        """What `save` wrote at `path`, or None if the host has never been saved."""
        try:
            saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return saved

    def save(self) -> None:
        """Write the host's state beside the database, atomically, readable by the owner only.

        Its simulated time and the wall time go with it, so that a restart resumes the
        host with the time that passed meanwhile.
        """
        if self._save_path is None:
            return
        data = {
            "host": self.xen.to_data(),
            "boot_free_bytes": self._boot_free_bytes,
            "saved_at": time.time(),
        }
        partial = self._save_path.with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(data, file)
        os.replace(partial, self._save_path)

    # -- host life --------------------------------------------------------------------

    async def boot(self) -> HostBoot:
        """Sample boot-time free memory, and log in (dropping any stale reservations)."""
        total_mib = mib_of_kib_free(self.xen.physinfo().total_kib)
        # Sampled once per host boot: a restarted toolstack keeps the value (§5).
        if self._boot_free_bytes is None:
            self._boot_free_bytes = await self.memory.get_host_initial_free_memory("boot")
        boot_free = self._boot_free_bytes
        # A new login drops whatever reservations a previous toolstack left (§5.2).
        self._session = await self.memory.login("boot", XENOPSD)
        self.save()
        return HostBoot(
            total_bytes=bytes_of_mib(total_mib),
            boot_free_bytes=boot_free,
            reserved_kib=self.memory.get_host_reserved_memory("boot"),
        )

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

    @property
    def free_bytes(self) -> int:
        """Xen's free memory, scrub pages included (host_metrics.memory_free)."""
        physinfo = self.xen.physinfo()
        return bytes_of_kib(physinfo.free_kib + physinfo.scrub_kib)

    # -- errors -----------------------------------------------------------------------

    async def _translated(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Squeezed's errors as xapi reports them: bytes, and VM refs for domids."""
        try:
            return await call()
        except CannotFreeThisMuchMemory as error:
            raise HOST_NOT_ENOUGH_FREE_MEMORY(
                bytes_of_kib(error.needed_kib), bytes_of_kib(error.free_kib)
            ) from error
        except DomainsRefusedToCooperate as error:
            by_domid = {domid: ref for ref, domid in self._domids.items()}
            refs = [by_domid[d] for d in error.domids if d in by_domid]
            raise VMS_FAILED_TO_COOPERATE(*refs) from error
        except XenError as error:
            raise INTERNAL_ERROR(str(error)) from error

    async def _reserve(self, wanted: ReservationRange) -> tuple[str, int]:
        first_attempt = self.clock.now()
        while True:
            try:
                return await self.memory.reserve_memory_range(
                    "reserve", self._session, wanted.min_kib, wanted.max_kib
                )
            except (CannotFreeThisMuchMemory, DomainsRefusedToCooperate):
                if self.clock.now() - first_attempt > RESERVE_RETRY_WINDOW_S:
                    raise
                await self.clock.sleep(RESERVE_RETRY_INTERVAL_S)

    # -- domains ----------------------------------------------------------------------

    def domid_of(self, vm_ref: str) -> int | None:
        return self._domids.get(vm_ref)

    @property
    def resident(self) -> Mapping[str, int]:
        """VM ref → domid of every domain this agent built."""
        return dict(self._domids)

    async def build(
        self,
        vm_ref: str,
        vm: VmMemory,
        guest: Guest,
        kind: BuildKind,
        *,
        exact_bytes: int | None = None,
        paused: bool = False,
    ) -> int:
        """Reserve, create and build the VM's domain (squeezer.md §9.1), then unpause it
        unless `paused`; its domid."""
        if vm_ref in self._domids:
            raise INTERNAL_ERROR(f"{vm_ref} already has a domain on this host")
        wanted = reservation_range(vm, kind, exact_bytes=exact_bytes)
        reservation_id, amount_kib = await self._translated(lambda: self._reserve(wanted))
        try:
            domid = self.xen.create_domain(domain_type=vm.domain_type, max_kib=amount_kib)
            self.xen.xenstore.write(domain_path(domid, VM_REF_KEY), vm_ref)
            try:
                await self._translated(
                    lambda: self.memory.transfer_reservation_to_domain(
                        "build", self._session, reservation_id, domid
                    )
                )
                booted = kind is not BuildKind.START
                self._build_domain(domid, vm, guest, amount_kib, booted=booted, paused=paused)
            except BaseException:
                self.xen.destroy_domain(domid)
                raise
        finally:
            # Built or not, the record goes: the domain keeps memory/initial-reservation
            # until it boots (clean_memory_reservation).
            await self.memory.delete_reservation("build", self._session, reservation_id)
        self._domids[vm_ref] = domid
        self.save()
        return domid

    def _build_domain(
        self, domid: int, vm: VmMemory, guest: Guest, amount_kib: int, *, booted: bool, paused: bool
    ) -> None:
        store = self.xen.xenstore
        target_bytes = initial_target_bytes(vm, amount_kib)
        target_kib = target_key_kib(target_bytes)
        store.write(
            domain_path(domid, "memory/initial-target"), str(kib_of_bytes_free(target_bytes))
        )
        try:
            self.xen.build_domain(
                domid,
                memory_kib=target_kib + guest.offset_kib,
                shadow_mib=shadow_allocation_mib(vm),
            )
        except XenError as error:
            raise INTERNAL_ERROR(str(error)) from error
        store.write(domain_path(domid, "memory/static-max"), str(kib_of_bytes_free(vm.static_max)))
        store.write(domain_path(domid, "memory/target"), str(target_kib))
        self._write_range(domid, vm.dynamic_min, vm.dynamic_max)
        self.xen.attach_guest(domid, guest, booted=booted)
        if not paused:
            self.xen.unpause_domain(domid)
        store.write(domain_path(domid, BUILT_KEY), "1")

    def restore_range(self, vm_ref: str, minimum: int, maximum: int) -> None:
        """Put the VM's recorded range back in xenstore (a change cut short by a crash);
        squeezed's next periodic balance acts on it."""
        self._write_range(self._domid(vm_ref), minimum, maximum)

    def _write_range(self, domid: int, minimum: int, maximum: int) -> None:
        store = self.xen.xenstore
        store.write(domain_path(domid, "memory/dynamic-min"), str(kib_of_bytes_free(minimum)))
        store.write(domain_path(domid, "memory/dynamic-max"), str(kib_of_bytes_free(maximum)))

    def _domid(self, vm_ref: str) -> int:
        domid = self._domids.get(vm_ref)
        if domid is None:
            raise INTERNAL_ERROR(f"{vm_ref} has no domain on this host")
        return domid

    def destroy(self, vm_ref: str) -> None:
        domid = self._domids.pop(vm_ref, None)
        if domid is not None:
            self.xen.destroy_domain(domid)
            self.save()

    def pause(self, vm_ref: str) -> None:
        self.xen.pause_domain(self._domid(vm_ref))
        self.save()

    def unpause(self, vm_ref: str) -> None:
        self.xen.unpause_domain(self._domid(vm_ref))
        self.save()

    def is_built(self, vm_ref: str) -> bool:
        """The VM's domain exists and its build finished."""
        domid = self._domids.get(vm_ref)
        return domid is not None and self.xen.xenstore.read(domain_path(domid, BUILT_KEY)) == "1"

    def is_paused(self, vm_ref: str) -> bool:
        domid = self._domid(vm_ref)
        return next(d.paused for d in self.xen.domains() if d.domid == domid)

    def suspend(self, vm_ref: str) -> int:
        """Save and destroy the domain; the suspend image's memory, in bytes."""
        domid = self._domid(vm_ref)
        info = next(d for d in self.xen.domains() if d.domid == domid)
        self.destroy(vm_ref)
        return bytes_of_kib(info.tot_kib)

    def resize_shadow(self, vm_ref: str, shadow_mib: int) -> int | None:
        """Give the domain `shadow_mib` of shadow memory; None when done, else the bytes
        that growing it needs and Xen does not have free."""
        domid = self._domid(vm_ref)
        current = next(d.shadow_mib for d in self.xen.domains() if d.domid == domid)
        try:
            self.xen.set_shadow_allocation(domid, shadow_mib)
        except XenError:
            return bytes_of_mib(shadow_mib - current)
        self.save()
        return None

    async def set_dynamic_range(self, vm_ref: str, minimum: int, maximum: int) -> None:
        """Write the new range and rebalance at once, as xenopsd does (squeezer.md §9.2)."""
        self._write_range(self._domid(vm_ref), minimum, maximum)
        self.save()
        await self._translated(lambda: self.memory.balance_memory("set_memory_dynamic_range"))
        self.save()

    async def balloon_for_migration(self, vm_ref: str, dynamic_min: int, dynamic_max: int) -> None:
        """Pin the range to dynamic_min and give the guest up to 120 s to get there;
        the timeout is not an error on this path (squeezer.md §9.4)."""
        if dynamic_min == dynamic_max:
            return
        await self.set_dynamic_range(vm_ref, dynamic_min, dynamic_min)
        waited = 0.0
        while waited < MIGRATION_BALLOON_TIMEOUT_S and not self.stat(vm_ref).on_target:
            await self.clock.sleep(MIGRATION_BALLOON_POLL_S)
            waited += MIGRATION_BALLOON_POLL_S

    # -- observing --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return read_host(self.xen, self.squeezer.config)

    def stats(self) -> dict[str, DomainStat]:
        """VM.stat for every domain this agent built, from one look at the host."""
        snapshot = self.snapshot()
        infos = {info.domid: info for info in snapshot.xen_domains}
        domains = {domain.domid: domain for domain in snapshot.host.domains}
        health = self.squeezer.health()
        stats: dict[str, DomainStat] = {}
        for vm_ref, domid in self._domids.items():
            info, view = infos.get(domid), snapshot.views.get(domid)
            if info is None or view is None:
                continue
            actual = bytes_of_kib(info.tot_kib)
            target_kib = view.target_kib if view.target_kib is not None else info.tot_kib
            domain = domains.get(domid)
            stats[vm_ref] = DomainStat(
                domid=domid,
                target_bytes=bytes_of_kib(target_kib),
                actual_bytes=actual,
                limit_bytes=memory_limit_bytes(
                    info.domain_type, actual_bytes=actual, maxmem_bytes=bytes_of_kib(info.max_kib)
                ),
                shadow_bytes=bytes_of_mib(info.shadow_mib),
                can_balloon=view.can_balloon,
                on_target=domain is not None and has_hit_target(domain),
                uncooperative=view.uncooperative_flag,
                health=health.get(domid),
            )
        return stats

    def stat(self, vm_ref: str) -> DomainStat:
        stat = self.stats().get(vm_ref)
        if stat is None:
            raise INTERNAL_ERROR(f"{vm_ref} has no domain on this host")
        return stat
