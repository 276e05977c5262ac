"""The simulated Xen host: implements the `Hypervisor` port and moves balloons as time passes.

Time is read from the clock port lazily: every port call first catches the host up to
`clock.now()` in whole ticks of 0.1 s, moving every guest once per tick in creation order
(squeezer.md §7.2). On a virtual clock nothing moves until the clock is advanced; on a real
clock the host follows wall time without a task of its own.

Memory is conserved by construction: every KiB a guest takes comes out of the free (then
the scrub) counter and every KiB it gives back goes into it, so
`Xen + Σ domains (tot + shadow) + free + scrub = total` at every instant.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xenmem.memory.model import DomainType
from xenmem.memory.units import kib_of_mib
from xenmem.xen.clock import Clock
from xenmem.xen.port import (
    BootConfig,
    DomainInfo,
    PhysInfo,
    XenError,
    domain_path,
    xenstore_domain_type,
)
from xenmem.xen.simulator.drivers import Driver, Motion
from xenmem.xen.simulator.spec import HostSpec
from xenmem.xen.simulator.state import (
    HostDataError,
    built,
    count,
    driver_to_data,
    flag,
    guest_fields,
    seconds,
    table,
    text,
)
from xenmem.xen.xenstore import KeyTree, is_key

__all__ = ["TICKS_PER_SECOND", "Fault", "Guest", "GuestFault", "SimulatedHost"]

TICKS_PER_SECOND = 10
# Tolerates float noise in `now() * 10` so that time 0.3 s is tick 3, not tick 2.
_TICK_EPSILON = 1e-6


@dataclass(frozen=True, kw_only=True)
class Guest:
    """The operating system inside a domain, as far as ballooning is concerned.

    `offset_kib` is the guest's true constant `totpages − target` once its driver is done
    (the memory-offset squeezed calibrates, §2.3); `boot_delay_s` is how long after the
    first unpause the driver announces itself (estimate: ≈ 20 s for Linux).
    """

    driver: Driver
    boot_delay_s: float = 20.0
    inaccuracy_kib: int = 4
    offset_kib: int = 0


@dataclass(frozen=True, kw_only=True)
class Fault:
    """An allocation the host refused: a guest (or `consume`) wanted more than was free.

    With two-phase target setting intact this never happens (squeezer.md §7.2).
    """

    time_s: float
    domid: int | None
    wanted_kib: int
    available_kib: int


class GuestFault(Exception):
    """A guest's allocation was refused on a host built to stop there (`stop_at_fault`):
    the run is invalid from this point on, as the reference simulator's abort (§7.2)."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(
            f"domain {fault.domid} tried to allocate {fault.wanted_kib} KiB "
            f"with {fault.available_kib} KiB free at {fault.time_s} s"
        )
        self.fault = fault


@dataclass(kw_only=True, slots=True)
class _Domain:
    # Mutable on purpose: the simulator's own state, advanced in place every tick for
    # thousands of domains; only frozen `DomainInfo` snapshots leave this module.
    domid: int
    domain_type: DomainType
    tot_kib: int = 0
    max_kib: int
    shadow_mib: int = 0
    paused: bool = True
    guest: Guest | None = None
    started_s: float | None = None
    booted: bool = False

    def info(self) -> DomainInfo:
        return DomainInfo(
            domid=self.domid,
            domain_type=self.domain_type,
            tot_kib=self.tot_kib,
            max_kib=self.max_kib,
            shadow_mib=self.shadow_mib,
            paused=self.paused,
            shutdown=False,  # a simulated guest never shuts itself down
        )


class SimulatedHost:
    """A Xen host in memory. Implements `xenmem.xen.Hypervisor`.

    A refused guest allocation is recorded in `faults` and the guest does not move; with
    `stop_at_fault` the host also stops there: the port call that caught up raises
    `GuestFault`, and the guests after the faulty one do not move in that tick.

    `revision` counts the changes of the host's state (not the mere passing of time), so
    that its keeper saves it only when something changed.
    """

    def __init__(self, spec: HostSpec, clock: Clock, *, stop_at_fault: bool = False) -> None:
        self.spec = spec
        self._stop_at_fault = stop_at_fault
        self._clock = clock
        self._boot_id = str(uuid.uuid4())
        self.revision = 0
        self._store = self._watched(KeyTree())
        self._domains: dict[int, _Domain] = {}
        self._free_kib = spec.total_kib - spec.xen_kib
        self._scrub_kib = 0
        self._consumed_kib = 0
        self._tick = self._clock_tick()
        self.faults: list[Fault] = []
        if spec.dom0_kib is not None:
            self._add_dom0(spec.dom0_kib)

    def _watched(self, store: KeyTree) -> KeyTree:
        store.watch("/", self._changed)
        return store

    def _changed(self, _: str = "") -> None:
        self.revision += 1

    def _add_dom0(self, dom0_kib: int) -> None:
        self._free_kib -= dom0_kib
        self._domains[0] = _Domain(
            domid=0, domain_type=DomainType.PV, tot_kib=dom0_kib, max_kib=dom0_kib, paused=False
        )
        self._store.write(domain_path(0, "domain-type"), "pv")
        self._store.write(domain_path(0, "memory/target"), str(dom0_kib))

    # -- the Hypervisor port --------------------------------------------------------------

    @property
    def xenstore(self) -> KeyTree:
        self.catch_up()
        return self._store

    def physinfo(self) -> PhysInfo:
        return self.sample()[0]

    def boot_id(self) -> str:
        return self._boot_id

    def domains(self) -> list[DomainInfo]:
        return self.sample()[1]

    def sample(self) -> tuple[PhysInfo, list[DomainInfo]]:
        self.catch_up()
        physinfo = PhysInfo(
            total_kib=self.spec.total_kib, free_kib=self._free_kib, scrub_kib=self._scrub_kib
        )
        return physinfo, [domain.info() for domain in self._domains.values()]

    def create_domain(
        self,
        *,
        domain_type: DomainType,
        max_kib: int,
        boot: BootConfig | None = None,
        domid: int | None = None,
    ) -> int:
        """A new paused, empty domain; `domid` (simulator only) picks its id. A simulated
        guest boots from nothing: `boot` is not needed."""
        self.catch_up()
        self._changed()
        if domid is None:
            domid = next(d for d in range(1, len(self._domains) + 2) if d not in self._domains)
        elif domid in self._domains or domid < 0:
            raise XenError(f"domid {domid} is not available")
        self._domains[domid] = _Domain(domid=domid, domain_type=domain_type, max_kib=max_kib)
        self._store.write(domain_path(domid, "domain-type"), xenstore_domain_type(domain_type))
        self._store.fire("@introduceDomain")
        return domid

    def build_domain(self, domid: int, *, memory_kib: int, shadow_mib: int) -> None:
        domain = self._domain(domid)
        wanted = memory_kib + kib_of_mib(shadow_mib)
        if memory_kib < 0 or shadow_mib < 0 or not self._allocate(wanted, domid=domid):
            raise XenError(f"cannot build domain {domid}: {wanted} KiB wanted")
        domain.tot_kib += memory_kib
        domain.shadow_mib += shadow_mib
        self._changed()

    def destroy_domain(self, domid: int) -> None:
        domain = self._domain(domid)
        self._changed()
        del self._domains[domid]
        self._scrub_kib += domain.tot_kib + kib_of_mib(domain.shadow_mib)
        self._store.remove(domain_path(domid))
        self._store.fire("@releaseDomain")

    def pause_domain(self, domid: int) -> None:
        self._domain(domid).paused = True
        self._changed()

    def unpause_domain(self, domid: int) -> None:
        domain = self._domain(domid)
        domain.paused = False
        if domain.started_s is None:
            domain.started_s = self._tick / TICKS_PER_SECOND
        self._changed()

    def set_maxmem(self, domid: int, max_kib: int) -> None:
        if max_kib < 0:
            raise XenError(f"negative maxmem {max_kib} for domain {domid}")
        self._domain(domid).max_kib = max_kib
        self._changed()

    def set_shadow_allocation(self, domid: int, shadow_mib: int) -> None:
        domain = self._domain(domid)
        if shadow_mib < 0:
            raise XenError(f"negative shadow allocation {shadow_mib} for domain {domid}")
        self.catch_up()
        grow_kib = kib_of_mib(shadow_mib - domain.shadow_mib)
        # A refused request is the toolstack's error to report, not a guest's fault.
        if grow_kib > self._free_kib + self._scrub_kib:
            raise XenError(f"cannot grow domain {domid}'s shadow: {grow_kib} KiB wanted")
        if grow_kib > 0:
            self._allocate(grow_kib, domid=domid)
        else:
            self._scrub_kib -= grow_kib
        domain.shadow_mib = shadow_mib
        self._changed()

    # -- persistence ------------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """The host's state now, as JSON-able data (see `xen.simulator.state`)."""
        self.catch_up()
        return {
            "boot_id": self._boot_id,
            "time_s": self._tick / TICKS_PER_SECOND,
            "tick": self._tick,
            "free_kib": self._free_kib,
            "scrub_kib": self._scrub_kib,
            "consumed_kib": self._consumed_kib,
            "domains": [_domain_to_data(domain) for domain in self._domains.values()],
            "xenstore": self._store.dump(),
        }

    @classmethod
    def from_data(cls, spec: HostSpec, clock: Clock, data: Mapping[str, Any]) -> SimulatedHost:
        """The host `to_data` described, resumed on `clock` (at or after its time): the
        guests catch up with the time that passed meanwhile. Raises `HostDataError` when
        `data` is malformed or its memory does not add up to `spec`'s total."""
        host = cls(HostSpec(total_kib=spec.total_kib, xen_kib=spec.xen_kib, dom0_kib=None), clock)
        host.spec = spec
        host._boot_id = text(data, "boot_id")
        host._store = host._watched(KeyTree.load(_key_values(table(data, "xenstore"))))
        host._domains = _domains_from_data(data.get("domains"))
        host._free_kib = count(data, "free_kib")
        host._scrub_kib = count(data, "scrub_kib")
        host._consumed_kib = count(data, "consumed_kib")
        host._tick = count(data, "tick")
        accounted_kib = host.xen_kib + host._domains_kib() + host._free_kib + host._scrub_kib
        if accounted_kib != spec.total_kib:
            # Memory is conserved (see the module's docstring): a host whose parts do not
            # make its total would hand out memory it does not have.
            raise HostDataError(
                f"Xen {host.xen_kib} + domains {host._domains_kib()} + free {host._free_kib} "
                f"+ scrub {host._scrub_kib} KiB = {accounted_kib} KiB, "
                f"not the host's {spec.total_kib} KiB"
            )
        return host

    def _domains_kib(self) -> int:
        return sum(d.tot_kib + kib_of_mib(d.shadow_mib) for d in self._domains.values())

    # -- simulator-only controls ----------------------------------------------------------

    def attach_guest(self, domid: int, guest: Guest, *, booted: bool = False) -> None:
        """Run `guest` in the domain; `booted` skips the boot delay (driver already loaded)."""
        domain = self._domain(domid)
        domain.guest = guest
        self._changed()
        if booted:
            self._announce(domain)

    def consume(self, kib: int) -> bool:
        """Take `kib` of free memory for Xen itself; a refused attempt is recorded as a fault."""
        self.catch_up()
        if kib < 0 or not self._allocate(kib, domid=None):
            return False
        self._consumed_kib += kib
        self._changed()
        return True

    @property
    def xen_kib(self) -> int:
        """Xen's own share now: hypervisor, heap, crash kernel and anything `consume`d."""
        return self.spec.xen_kib + self._consumed_kib

    def catch_up(self) -> None:
        """Advance every guest and the scrubber to the clock's current tick."""
        target = self._clock_tick()
        while self._tick < target:
            # Counted before the step, so that a fault stopping it never replays the tick.
            self._tick += 1
            self._step(self._tick - 1)

    # -- internals ------------------------------------------------------------------------

    def _clock_tick(self) -> int:
        return math.floor(self._clock.now() * TICKS_PER_SECOND + _TICK_EPSILON)

    def _domain(self, domid: int) -> _Domain:
        self.catch_up()
        try:
            return self._domains[domid]
        except KeyError:
            raise XenError(f"no such domain {domid}") from None

    def _allocate(self, kib: int, *, domid: int | None = None) -> bool:
        """Take `kib` from free, then scrub memory (Xen scrubs dirty pages on demand)."""
        available = self._free_kib + self._scrub_kib
        if kib > available:
            self.faults.append(
                Fault(
                    time_s=self._tick / TICKS_PER_SECOND,
                    domid=domid,
                    wanted_kib=kib,
                    available_kib=available,
                )
            )
            return False
        from_free = min(kib, self._free_kib)
        self._free_kib -= from_free
        self._scrub_kib -= kib - from_free
        return True

    def _announce(self, domain: _Domain) -> None:
        domain.booted = True
        self._changed()
        if domain.guest is not None and domain.guest.driver.announces:
            self._store.write(domain_path(domain.domid, "control/feature-balloon"), "1")
            self._store.write(domain_path(domain.domid, "data/updated"), "1")

    def _step(self, tick: int) -> None:
        start_s = tick / TICKS_PER_SECOND
        end_s = (tick + 1) / TICKS_PER_SECOND
        scrubbed = min(self._scrub_kib, int((end_s - start_s) * self.spec.scrub_rate_kib_s))
        if scrubbed:
            self._scrub_kib -= scrubbed
            self._free_kib += scrubbed
            self._changed()
        for domain in list(self._domains.values()):
            self._move(domain, start_s, end_s)

    def _move(self, domain: _Domain, start_s: float, end_s: float) -> None:
        guest = domain.guest
        if guest is None or domain.paused or domain.started_s is None:
            return
        if not domain.booted:
            if end_s >= domain.started_s + guest.boot_delay_s:
                self._announce(domain)
            return
        if not guest.driver.announces:
            # No balloon driver has announced itself: nothing in the guest watches its
            # target, so it never moves toward one (squeezer.md §3.8, §7).
            return
        target = _parse_kib(self._store.read(domain_path(domain.domid, "memory/target")))
        if target is None:
            return
        motion = Motion(
            start_s=start_s,
            end_s=end_s,
            actual_kib=domain.tot_kib - guest.offset_kib,
            target_kib=target,
            inaccuracy_kib=guest.inaccuracy_kib,
        )
        delta = guest.driver.delta(motion)
        if delta > 0:
            # Xen never lets a domain grow past maxmem (which may be below its size).
            delta = max(0, min(delta, domain.max_kib - domain.tot_kib))
            if not self._allocate(delta, domid=domain.domid):
                if self._stop_at_fault:
                    raise GuestFault(self.faults[-1])
                return
        else:
            self._free_kib -= delta
        if delta:
            domain.tot_kib += delta
            self._changed()


def _domain_to_data(domain: _Domain) -> dict[str, Any]:
    guest = domain.guest
    return {
        "domid": domain.domid,
        "domain_type": domain.domain_type.value,
        "tot_kib": domain.tot_kib,
        "max_kib": domain.max_kib,
        "shadow_mib": domain.shadow_mib,
        "paused": domain.paused,
        "started_s": domain.started_s,
        "booted": domain.booted,
        "guest": None
        if guest is None
        else {**dataclasses.asdict(guest), "driver": driver_to_data(guest.driver)},
    }


def _domains_from_data(untrusted: object) -> dict[int, _Domain]:
    if not isinstance(untrusted, list):
        raise HostDataError("domains is not a list")
    domains: dict[int, _Domain] = {}
    for data in untrusted:
        if not isinstance(data, Mapping):
            raise HostDataError("a domain is not an object")
        domid = count(data, "domid")
        if domid in domains:
            raise HostDataError(f"domain {domid} is there twice")
        try:
            domains[domid] = _domain_from_data(domid, data)
        except HostDataError as error:
            raise HostDataError(f"domain {domid}: {error}") from None
    return domains


def _domain_from_data(domid: int, data: Mapping[str, Any]) -> _Domain:
    stored_type = text(data, "domain_type")
    try:
        domain_type = DomainType(stored_type)
    except ValueError:
        raise HostDataError(f"domain_type is {stored_type!r}") from None
    guest = data.get("guest")
    return _Domain(
        domid=domid,
        domain_type=domain_type,
        tot_kib=count(data, "tot_kib"),
        max_kib=count(data, "max_kib"),
        shadow_mib=count(data, "shadow_mib"),
        paused=flag(data, "paused"),
        started_s=None if data.get("started_s") is None else seconds(data, "started_s"),
        booted=flag(data, "booted"),
        guest=None if guest is None else built(Guest, guest_fields(table(data, "guest"))),
    )


def _key_values(untrusted: Mapping[str, Any]) -> dict[str, str]:
    for key, value in untrusted.items():
        if not (isinstance(key, str) and is_key(key) and isinstance(value, str)):
            raise HostDataError(f"xenstore key {key!r} is not a key with a string value")
    return dict(untrusted)


def _parse_kib(untrusted_value: str | None) -> int | None:
    if untrusted_value is None:
        return None
    try:
        return int(untrusted_value)
    except ValueError:
        return None
