"""xenopsd's part on one host: building, destroying and resizing the toolstack's domains.

Domains are named by the VM reference the toolstack gives them. Memory for a new domain
comes from the host's squeezed through the reservation interface only (squeezer.md §5,
§9.1), as xenopsd gets it, so a squeezed in another process later is a transport, not a
rewrite. Squeezed's errors become XenAPI errors here, once (§5.4).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from xenmem.balloon import CannotFreeThisMuchMemory, DomainsRefusedToCooperate, MemoryService
from xenmem.errors import (
    HOST_NOT_ENOUGH_FREE_MEMORY,
    INTERNAL_ERROR,
    INVALID_VALUE,
    VMS_FAILED_TO_COOPERATE,
    XenAPIError,
)
from xenmem.memory import VmMemory
from xenmem.memory.domain_build import (
    BuildKind,
    ReservationRange,
    initial_target_bytes,
    reservation_range,
    shadow_allocation_mib,
    target_key_kib,
)
from xenmem.memory.units import bytes_of_kib, bytes_of_mib, kib_of_bytes_free
from xenmem.xen import BootConfig, Clock, DomainInfo, GuestConfigError, Hypervisor, Lab, XenError
from xenmem.xen import domain_path as path

__all__ = ["BUILT_KEY", "VM_REF_KEY", "Domains", "Reserved", "guest_config_error"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

XENOPSD = "xenopsd"
# Keys xenmem's xenopsd keeps in a domain's xenstore directory (as xenopsd keeps the VM
# uuid there): which VM the domain is, and that its build finished.
VM_REF_KEY = "xenmem/vm-ref"
BUILT_KEY = "xenmem/built"
# xenopsd retries a refused reservation every 10 s until 60 s have passed, to ride out
# guests whose balloon drivers have not loaded yet (squeezer.md §5.4).
RESERVE_RETRY_INTERVAL_S = 10.0
RESERVE_RETRY_WINDOW_S = 60.0


@dataclass(frozen=True, kw_only=True)
class Reserved:
    """Memory squeezed holds for a domain about to be built: its reservation, in KiB."""

    reservation_id: str
    amount_kib: int


def guest_config_error(error: GuestConfigError) -> XenAPIError:
    """A lab guest setting that cannot be understood, as the XenAPI reports a bad value."""
    return INVALID_VALUE(f"other_config:{error.key}", error.value)


class Domains:
    """The domains the toolstack built on one host, and xenopsd's operations on them."""

    def __init__(
        self, *, xen: Hypervisor, clock: Clock, memory: MemoryService, lab: Lab | None
    ) -> None:
        self._xen = xen
        self._clock = clock
        self._memory = memory
        self._lab = lab
        self._session = XENOPSD
        self._domids = self._found_in_xenstore()
        self._building: set[int] = set()

    def _found_in_xenstore(self) -> dict[str, int]:
        """Every domain a toolstack built here, found again after a restart."""
        store = self._xen.xenstore
        found = {}
        for info in self._xen.domains():
            vm_ref = store.read(path(info.domid, VM_REF_KEY))
            if vm_ref:
                found[vm_ref] = info.domid
        return found

    async def login(self) -> None:
        """Log in to squeezed; that drops what reservations a previous toolstack left (§5.2)."""
        self._session = await self._memory.login("boot", XENOPSD)

    def save(self) -> None:
        """Keep a simulated host's state on disk, if it changed (a real host keeps itself).

        A failure to write is not the operation's that changed it: the host is written
        again at its next look (the monitor looks twice a second), so it is logged, not
        raised."""
        if self._lab is None:
            return
        try:
            self._lab.save()
        except OSError as error:
            _log.error("could not keep the simulated host's state: %s", error)

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
        first_attempt = self._clock.now()
        while True:
            try:
                return await self._memory.reserve_memory_range(
                    "reserve", self._session, wanted.min_kib, wanted.max_kib
                )
            except (CannotFreeThisMuchMemory, DomainsRefusedToCooperate):
                if self._clock.now() - first_attempt > RESERVE_RETRY_WINDOW_S:
                    raise
                await self._clock.sleep(RESERVE_RETRY_INTERVAL_S)

    # -- which domains ------------------------------------------------------------------

    def domid_of(self, vm_ref: str) -> int | None:
        return self._domids.get(vm_ref)

    @property
    def resident(self) -> Mapping[str, int]:
        """VM ref → domid of every domain built here."""
        return dict(self._domids)

    @property
    def building(self) -> frozenset[int]:
        """The domids of domains being built (created, not yet resident)."""
        return frozenset(self._building)

    def _domid(self, vm_ref: str) -> int:
        domid = self._domids.get(vm_ref)
        if domid is None:
            raise INTERNAL_ERROR(f"{vm_ref} has no domain on this host")
        return domid

    def info(self, vm_ref: str) -> DomainInfo:
        """Xen's entry for the VM's domain."""
        domid = self._domid(vm_ref)
        for info in self._xen.domains():
            if info.domid == domid:
                return info
        raise INTERNAL_ERROR(f"{vm_ref}'s domain {domid} is gone")

    def is_built(self, vm_ref: str) -> bool:
        """The VM's domain exists and its build finished."""
        domid = self._domids.get(vm_ref)
        return domid is not None and self._xen.xenstore.read(path(domid, BUILT_KEY)) == "1"

    # -- building -----------------------------------------------------------------------

    async def reserve(
        self, vm: VmMemory, kind: BuildKind, *, exact_bytes: int | None = None
    ) -> Reserved:
        """Have squeezed free and reserve the VM's memory (squeezer.md §9.1). Cancelling
        this leaves nothing behind: the record is written when the reservation succeeds,
        with no wait after it."""
        wanted = reservation_range(vm, kind, exact_bytes=exact_bytes)
        reservation_id, amount_kib = await self._translated(lambda: self._reserve(wanted))
        return Reserved(reservation_id=reservation_id, amount_kib=amount_kib)

    async def build_reserved(
        self,
        vm_ref: str,
        vm: VmMemory,
        boot: BootConfig,
        other_config: Mapping[str, str],
        kind: BuildKind,
        *,
        reserved: Reserved,
        paused: bool = False,
    ) -> int:
        """Create and build the VM's domain in `reserved` memory, then unpause it unless
        `paused`; its domid. The reservation record is dropped whatever happens; a caller
        that may be cancelled must let this finish (`run_to_completion`)."""
        try:
            if vm_ref in self._domids:
                raise INTERNAL_ERROR(f"{vm_ref} already has a domain on this host")
            domid = self._create(vm, boot, reserved.amount_kib)
            self._building.add(domid)
            try:
                self._xen.xenstore.write(path(domid, VM_REF_KEY), vm_ref)
                await self._translated(
                    lambda: self._memory.transfer_reservation_to_domain(
                        "build", self._session, reserved.reservation_id, domid
                    )
                )
                booted = kind is not BuildKind.START
                self._build(
                    domid, vm, other_config, reserved.amount_kib, booted=booted, paused=paused
                )
            except BaseException:
                self._xen.destroy_domain(domid)
                raise
            finally:
                self._building.discard(domid)
            self._domids[vm_ref] = domid
        finally:
            # Built or not, the record goes: the domain keeps memory/initial-reservation
            # until it boots (clean_memory_reservation).
            await self._memory.delete_reservation("build", self._session, reserved.reservation_id)
        self.save()
        return domid

    async def build(
        self,
        vm_ref: str,
        vm: VmMemory,
        boot: BootConfig,
        other_config: Mapping[str, str],
        kind: BuildKind,
        *,
        exact_bytes: int | None = None,
        paused: bool = False,
    ) -> int:
        """Reserve, then build (for callers that are not cancelled midway)."""
        reserved = await self.reserve(vm, kind, exact_bytes=exact_bytes)
        return await self.build_reserved(
            vm_ref, vm, boot, other_config, kind, reserved=reserved, paused=paused
        )

    def _create(self, vm: VmMemory, boot: BootConfig, amount_kib: int) -> int:
        try:
            return self._xen.create_domain(
                domain_type=vm.domain_type, max_kib=amount_kib, boot=boot
            )
        except XenError as error:
            raise INTERNAL_ERROR(str(error)) from error

    def _build(
        self,
        domid: int,
        vm: VmMemory,
        other_config: Mapping[str, str],
        amount_kib: int,
        *,
        booted: bool,
        paused: bool,
    ) -> None:
        store = self._xen.xenstore
        target_bytes = initial_target_bytes(vm, amount_kib)
        target_kib = target_key_kib(target_bytes)
        store.write(path(domid, "memory/initial-target"), str(kib_of_bytes_free(target_bytes)))
        try:
            self._xen.build_domain(
                domid, memory_kib=target_kib, shadow_mib=shadow_allocation_mib(vm)
            )
        except XenError as error:
            raise INTERNAL_ERROR(str(error)) from error
        store.write(path(domid, "memory/static-max"), str(kib_of_bytes_free(vm.static_max)))
        store.write(path(domid, "memory/target"), str(target_kib))
        self._write_range(domid, vm.dynamic_min, vm.dynamic_max)
        if self._lab is not None:
            try:
                self._lab.attach_guest(domid, other_config, booted=booted)
            except GuestConfigError as error:
                raise guest_config_error(error) from error
        if not paused:
            self._xen.unpause_domain(domid)
        store.write(path(domid, BUILT_KEY), "1")

    # -- changing -----------------------------------------------------------------------

    def restore_range(self, vm_ref: str, minimum: int, maximum: int) -> None:
        """Put the VM's recorded range back in xenstore (a change cut short by a crash);
        squeezed's next periodic balance acts on it."""
        self._write_range(self._domid(vm_ref), minimum, maximum)
        self.save()

    def _write_range(self, domid: int, minimum: int, maximum: int) -> None:
        store = self._xen.xenstore
        store.write(path(domid, "memory/dynamic-min"), str(kib_of_bytes_free(minimum)))
        store.write(path(domid, "memory/dynamic-max"), str(kib_of_bytes_free(maximum)))

    async def set_dynamic_range(self, vm_ref: str, minimum: int, maximum: int) -> None:
        """Write the new range and rebalance at once, as xenopsd does (squeezer.md §9.2)."""
        self._write_range(self._domid(vm_ref), minimum, maximum)
        self.save()
        await self._translated(lambda: self._memory.balance_memory("set_memory_dynamic_range"))
        self.save()

    def destroy(self, vm_ref: str) -> None:
        domid = self._domids.pop(vm_ref, None)
        if domid is not None:
            self._xen.destroy_domain(domid)
            self.save()

    def pause(self, vm_ref: str) -> None:
        self._xen.pause_domain(self._domid(vm_ref))
        self.save()

    def unpause(self, vm_ref: str) -> None:
        self._xen.unpause_domain(self._domid(vm_ref))
        self.save()

    def suspend(self, vm_ref: str) -> int:
        """Save and destroy the domain; the suspend image's memory, in bytes."""
        image_bytes = bytes_of_kib(self.info(vm_ref).tot_kib)
        self.destroy(vm_ref)
        return image_bytes

    def resize_shadow(self, vm_ref: str, shadow_mib: int) -> int | None:
        """Give the domain `shadow_mib` of shadow memory; None when done, else the bytes
        that growing it needs and Xen does not have free."""
        info = self.info(vm_ref)
        try:
            self._xen.set_shadow_allocation(info.domid, shadow_mib)
        except XenError:
            return bytes_of_mib(shadow_mib - info.shadow_mib)
        self.save()
        return None
