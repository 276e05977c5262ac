"""squeezed's memory interface (squeezer.md §5): reservations and host-level facts.

Every call that squeezes or touches reservations runs under one lock, as squeezed's
`big_server_mutex` (§1); the negative-size checks run before it, and the read-only host
queries do not take it. Sizes are KiB except where a name says bytes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from xenmem.balloon.errors import (
    CannotFreeThisMuchMemory,
    InternalError,
    InvalidMemoryValue,
    NoReservation,
    UnknownReservation,
)
from xenmem.balloon.reservations import read_amount, record_path
from xenmem.balloon.snapshot import xen_max_offset_kib
from xenmem.balloon.squeezer import Squeezer
from xenmem.memory.units import bytes_of_kib, kib_of_bytes_used
from xenmem.xen.port import XenError, Xenstore, domain_path, domain_type_of_xenstore

__all__ = ["DIAGNOSTICS", "AutoBalloon", "DomainZeroPolicy", "FixedSize", "MemoryService"]

DIAGNOSTICS = "diagnostics not yet available"

_log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class FixedSize:
    """dom0 is not ballooned; its size in bytes."""

    size_bytes: int


@dataclass(frozen=True, kw_only=True)
class AutoBalloon:
    """dom0 is ballooned between these bounds, in bytes."""

    low_bytes: int
    high_bytes: int


DomainZeroPolicy = FixedSize | AutoBalloon


def _new_reservation_id() -> str:
    return str(uuid.uuid4())


class MemoryService:
    """The `memory` service of one host. `dbg` arguments are opaque, as in squeezed."""

    def __init__(
        self, squeezer: Squeezer, *, new_reservation_id: Callable[[], str] = _new_reservation_id
    ) -> None:
        self.squeezer = squeezer
        self.lock = asyncio.Lock()
        self._new_id = new_reservation_id
        self._boot_free_bytes: int | None = None
        # Uncontended, an asyncio lock needs no event loop: run_virtual can drive this too.
        self._boot_free_lock = asyncio.Lock()
        if squeezer.config.manage_domain_zero:
            self._configure_domain_zero()

    @property
    def _store(self) -> Xenstore:
        return self.squeezer.xen.xenstore

    async def _locked(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Serialise like squeezed's `wrap`: T comes off both Cannot_free numbers, and any
        hypervisor failure becomes Internal_error."""
        async with self.lock:
            try:
                return await call()
            except CannotFreeThisMuchMemory as error:
                reserve = self.squeezer.config.target_host_free_kib
                raise CannotFreeThisMuchMemory(
                    error.needed_kib - reserve, error.free_kib - reserve
                ) from error
            except XenError as error:
                raise InternalError(str(error)) from error

    async def login(self, dbg: str, service_name: str) -> str:
        """The session id is the service name; its old reservation records are dropped."""

        async def drop_old_records() -> str:
            self._store.remove(record_path(service_name))
            return service_name

        return await self._locked(drop_old_records)

    async def reserve_memory(self, dbg: str, session_id: str, kib: int) -> str:
        if kib < 0:
            raise InvalidMemoryValue(kib)

        async def reserve() -> str:
            await self.squeezer.free_memory(kib)
            reservation_id = self._new_id()
            self._store.write(record_path(session_id, reservation_id), str(kib))
            return reservation_id

        return await self._locked(reserve)

    async def reserve_memory_range(
        self, dbg: str, session_id: str, min_kib: int, max_kib: int
    ) -> tuple[str, int]:
        """Returns (reservation id, amount in KiB). min ≤ max is not checked (§5.2)."""
        for value in (min_kib, max_kib):
            if value < 0:
                raise InvalidMemoryValue(value)

        async def reserve() -> tuple[str, int]:
            amount = await self.squeezer.free_memory_range(min_kib, max_kib)
            reservation_id = self._new_id()
            self._store.write(record_path(session_id, reservation_id), str(amount))
            return reservation_id, amount

        return await self._locked(reserve)

    async def delete_reservation(self, dbg: str, session_id: str, reservation_id: str) -> None:
        """Drop the record; no rebalance (the periodic check redistributes later)."""

        async def delete() -> None:
            self._store.remove(record_path(session_id, reservation_id))

        await self._locked(delete)

    async def transfer_reservation_to_domain(
        self, dbg: str, session_id: str, reservation_id: str, domid: int
    ) -> None:
        """The domain now carries the reservation; the record is kept (CA-155888).

        Unknown_reservation if the record cannot be read or the domain has no xenstore
        directory (squeezed's writes there would fail with ENOENT, §5.1). The maxmem
        step is squeezed's `set_maxmem_noexn`: a failure is logged, never raised (§2.3).
        """

        async def transfer() -> None:
            amount = read_amount(self._store, session_id, reservation_id)
            if amount is None or self._store.read(domain_path(domid)) is None:
                raise UnknownReservation(reservation_id)
            self._store.write(domain_path(domid, "memory/initial-reservation"), str(amount))
            self._store.write(domain_path(domid, "memory/reservation-id"), reservation_id)
            path = record_path(session_id, reservation_id)
            self._store.write(f"{path}/in-transfer", str(domid))
            try:
                self.squeezer.xen.set_maxmem(domid, amount + self._maxmem_offsets_kib(domid))
            except XenError as error:
                _log.warning("setmaxmem of domain %d failed: %s", domid, error)

        await self._locked(transfer)

    def _maxmem_offsets_kib(self, domid: int) -> int:
        """Raises XenError if Xen does not know the domain."""
        info = next((d for d in self.squeezer.xen.domains() if d.domid == domid), None)
        if info is None:
            raise XenError(f"no such domain {domid}")
        untrusted_type = self._store.read(domain_path(domid, "domain-type"))
        domain_type = domain_type_of_xenstore(untrusted_type) or info.domain_type
        untrusted_offset = self._store.read(domain_path(domid, "memory/memory-offset"))
        try:
            memory_offset = int(untrusted_offset) if untrusted_offset is not None else 0
        except ValueError:
            memory_offset = 0
        return xen_max_offset_kib(domain_type) + memory_offset

    async def query_reservation_of_domain(self, dbg: str, session_id: str, domid: int) -> str:
        async def query() -> str:
            reservation_id = self._store.read(domain_path(domid, "memory/reservation-id"))
            if reservation_id is None:
                raise NoReservation()
            return reservation_id

        return await self._locked(query)

    async def balance_memory(self, dbg: str) -> None:
        await self._locked(self.squeezer.balance_memory)

    async def run_periodic_balance(self, *, until_s: float | None = None) -> None:
        """Every balance interval (10 s), rebalance if one iteration would change a target
        (§1, §3.10). Runs forever (an asyncio task) unless stopped at clock time `until_s`."""
        clock = self.squeezer.clock
        interval = self.squeezer.config.balance_interval_s
        while until_s is None or clock.now() + interval <= until_s:
            await clock.sleep(interval)
            await self.periodic_check()

    async def periodic_check(self) -> None:
        """One tick of the periodic balance: rebalance if an iteration would move a target."""
        async with self.lock:
            if await self.squeezer.is_host_memory_unbalanced():
                await self.squeezer.balance_memory()

    def get_host_reserved_memory(self, dbg: str) -> int:
        """KiB kept free of any domain or reservation (73728 by default)."""
        return self.squeezer.config.target_host_free_kib

    async def get_host_initial_free_memory(self, dbg: str) -> int:
        """Bytes free at boot (total less Xen's share), 0 if it could not be measured.

        Measured once, by the first caller; callers arriving meanwhile wait for that one
        measurement, as squeezed's callers wait for its boot-time thread (§5.2). Not under
        the big lock.
        """
        async with self._boot_free_lock:
            if self._boot_free_bytes is None:
                try:
                    self._boot_free_bytes = await self._measure_boot_free_bytes()
                except Exception as error:  # any failure reads as 0, as squeezed's (§5.2)
                    _log.warning("boot-time free memory not measured: %s", error)
                    self._boot_free_bytes = 0
            return self._boot_free_bytes

    async def _measure_boot_free_bytes(self) -> int:
        """Sample every interval until `boot_free_samples` consecutive readings (the first
        included) are each within the tolerance of the one before (§5.2)."""
        config = self.squeezer.config
        previous = self._boot_free_sample()
        stable = 1
        while stable < config.boot_free_samples:
            await self.squeezer.clock.sleep(config.boot_free_interval_s)
            sample = self._boot_free_sample()
            stable = stable + 1 if abs(sample - previous) <= config.boot_free_tolerance_bytes else 1
            previous = sample
        return previous

    def _boot_free_sample(self) -> int:
        physinfo = self.squeezer.xen.physinfo()
        return bytes_of_kib(physinfo.free_kib + physinfo.scrub_kib + self._dom0_kib())

    def _dom0_kib(self) -> int:
        dom0 = next((d for d in self.squeezer.xen.domains() if d.domid == 0), None)
        if dom0 is None:
            raise XenError("Failed to obtain total memory")
        return dom0.tot_kib

    def get_domain_zero_policy(self, dbg: str) -> DomainZeroPolicy:
        config = self.squeezer.config
        try:
            total_bytes = bytes_of_kib(self._dom0_kib())
        except XenError as error:
            raise InternalError(str(error)) from error
        if not config.manage_domain_zero:
            return FixedSize(size_bytes=total_bytes)
        high = config.domain_zero_dynamic_max_bytes
        return AutoBalloon(
            low_bytes=config.domain_zero_dynamic_min_bytes,
            high_bytes=total_bytes if high is None else high,
        )

    def get_diagnostics(self, dbg: str) -> str:
        return DIAGNOSTICS

    def _configure_domain_zero(self) -> None:
        """Write dom0's policy keys and announce its balloon driver (§5.2, managing dom0)."""
        config = self.squeezer.config
        store = self._store

        def key(name: str) -> str:
            return domain_path(0, name)

        store.write(
            key("memory/dynamic-min"), str(kib_of_bytes_used(config.domain_zero_dynamic_min_bytes))
        )
        configured = config.domain_zero_dynamic_max_bytes
        existing = store.read(key("memory/dynamic-max"))
        if configured is not None:
            dynamic_max = str(kib_of_bytes_used(configured))
        else:
            dynamic_max = existing if existing is not None else str(self._dom0_kib())
        store.write(key("memory/dynamic-max"), dynamic_max)
        if store.read(key("memory/target")) is None:
            store.write(key("memory/target"), dynamic_max)
        store.write(key("control/feature-balloon"), "1")
