"""The memory interface (squeezer.md §5): calls, errors and units."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable

import pytest

from tests.balloon.books import adds_up
from xenmem.balloon import (
    AutoBalloon,
    CannotFreeThisMuchMemory,
    DomainsRefusedToCooperate,
    FixedSize,
    InvalidMemoryValue,
    MemoryService,
    NoReservation,
    Squeezer,
    SqueezerConfig,
    UnknownReservation,
)
from xenmem.balloon.service import DIAGNOSTICS
from xenmem.memory.model import DomainType
from xenmem.xen import Clock, PhysInfo, RealClock, VirtualClock, domain_path, run_virtual
from xenmem.xen.simulator import Greedy, Guest, HostSpec, Ideal, SimulatedHost, Stuck

GIB_KIB = 1024 * 1024
T = 73728


def service(
    memory_gib: int = 16, config: SqueezerConfig | None = None
) -> tuple[MemoryService, SimulatedHost]:
    clock = VirtualClock()
    host = SimulatedHost(HostSpec.default(memory_gib * GIB_KIB * 1024), clock)
    ids = (f"r{n}" for n in itertools.count())
    squeezer = Squeezer(host, clock, config or SqueezerConfig())
    return MemoryService(squeezer, new_reservation_id=lambda: next(ids)), host


def free_kib(svc: MemoryService) -> int:
    return run_virtual(svc.squeezer.snapshot()).host.free_kib


def test_reservations_are_counted_until_transferred_to_a_live_domain() -> None:
    svc, host = service()
    before = free_kib(svc)
    session = run_virtual(svc.login("dbg", "xenopsd"))
    assert session == "xenopsd"
    rid = run_virtual(svc.reserve_memory("dbg", session, 100_000))
    assert host.xenstore.read(f"/squeezed/state/xenopsd/{rid}") == "100000"
    assert free_kib(svc) == before - 100_000
    domid = host.create_domain(domain_type=DomainType.HVM, max_kib=0)
    run_virtual(svc.transfer_reservation_to_domain("dbg", session, rid, domid))
    assert host.xenstore.read(domain_path(domid, "memory/initial-reservation")) == "100000"
    assert host.xenstore.read(f"/squeezed/state/xenopsd/{rid}/in-transfer") == str(domid)
    assert next(d.max_kib for d in host.domains() if d.domid == domid) == 100_000 + 1024
    # Now held as the domain's unaccounted reservation, not twice.
    assert free_kib(svc) == before - 100_000
    assert run_virtual(svc.query_reservation_of_domain("dbg", session, domid)) == rid
    run_virtual(svc.delete_reservation("dbg", session, rid))
    assert free_kib(svc) == before - 100_000
    host.destroy_domain(domid)
    assert free_kib(svc) == before


def test_a_transferred_record_whose_domain_died_counts_again() -> None:
    svc, host = service()
    before = free_kib(svc)
    rid = run_virtual(svc.reserve_memory("dbg", "s", 5000))
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=0)
    run_virtual(svc.transfer_reservation_to_domain("dbg", "s", rid, domid))
    host.destroy_domain(domid)
    assert free_kib(svc) == before - 5000


def test_login_drops_every_record_of_the_session() -> None:
    svc, _ = service()
    before = free_kib(svc)
    run_virtual(svc.reserve_memory("dbg", "xenopsd", 1000))
    run_virtual(svc.reserve_memory("dbg", "other", 2000))
    run_virtual(svc.login("dbg", "xenopsd"))
    assert free_kib(svc) == before - 2000


def test_errors_and_their_payloads() -> None:
    svc, _ = service()
    with pytest.raises(InvalidMemoryValue) as invalid:
        run_virtual(svc.reserve_memory("dbg", "s", -1))
    assert invalid.value.params == ("-1",)
    with pytest.raises(InvalidMemoryValue):
        run_virtual(svc.reserve_memory_range("dbg", "s", 0, -5))
    with pytest.raises(UnknownReservation) as unknown:
        run_virtual(svc.transfer_reservation_to_domain("dbg", "s", "nope", 0))
    assert unknown.value.name == "Unknown_reservation"
    with pytest.raises(NoReservation):
        run_virtual(svc.query_reservation_of_domain("dbg", "s", 0))
    free = free_kib(svc)
    with pytest.raises(CannotFreeThisMuchMemory) as cannot:
        run_virtual(svc.reserve_memory("dbg", "s", 10**9))
    # T comes off both numbers (ms.ml wrap).
    assert (cannot.value.needed_kib, cannot.value.free_kib) == (10**9, free - T)
    assert cannot.value.params == (str(10**9), str(free - T))


def test_reserve_memory_range_squeezes_guests_and_stays_within_range() -> None:
    svc, host = service(memory_gib=4)
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=GIB_KIB)
    free = host.physinfo().free_kib
    host.build_domain(domid, memory_kib=free - 1000, shadow_mib=0)
    for key, value in (("target", free - 1000), ("dynamic-min", 100_000), ("dynamic-max", free)):
        host.xenstore.write(domain_path(domid, f"memory/{key}"), str(value))
    host.attach_guest(domid, Guest(driver=Ideal(rate_kib_s=GIB_KIB)), booted=True)
    host.unpause_domain(domid)
    rid, amount = run_virtual(svc.reserve_memory_range("dbg", "s", 200_000, 400_000))
    assert 200_000 <= amount <= 400_000
    assert host.xenstore.read(f"/squeezed/state/s/{rid}") == str(amount)
    assert host.faults == []
    assert adds_up(svc.squeezer.xen, svc.squeezer.config)


def test_host_level_facts_and_their_units() -> None:
    svc, host = service()
    assert svc.get_host_reserved_memory("dbg") == 73728
    assert svc.get_diagnostics("dbg") == DIAGNOSTICS
    dom0_kib = next(d.tot_kib for d in host.domains() if d.domid == 0)
    assert dom0_kib == 1856 * 1024
    assert svc.get_domain_zero_policy("dbg") == FixedSize(size_bytes=dom0_kib * 1024)
    boot_free = run_virtual(svc.get_host_initial_free_memory("dbg"))
    assert boot_free == (host.spec.total_kib - host.spec.xen_kib) * 1024
    # Ten samples one second apart, the first included.
    assert svc.squeezer.clock.now() == 9.0


def test_boot_time_sampling_waits_for_stability() -> None:
    svc, host = service()
    grower = host.create_domain(domain_type=DomainType.PV, max_kib=3 * GIB_KIB)
    host.xenstore.write(domain_path(grower, "memory/target"), "0")
    host.attach_guest(grower, Guest(driver=Greedy(rate_kib_s=GIB_KIB), boot_delay_s=0.0))
    host.unpause_domain(grower)
    run_virtual(svc.get_host_initial_free_memory("dbg"))
    # A guest takes 1 GiB/s from t = 0.1 s to 3.1 s: the readings at 0 s..4 s all differ,
    # so the ten stable ones are those at 4 s..13 s.
    assert svc.squeezer.clock.now() == 13.0


def test_managed_domain_zero_gets_policy_keys_and_auto_balloon() -> None:
    svc, host = service(config=SqueezerConfig(manage_domain_zero=True))
    dom0_kib = 1856 * 1024
    assert host.xenstore.read(domain_path(0, "memory/dynamic-min")) == str(GIB_KIB)
    assert host.xenstore.read(domain_path(0, "memory/dynamic-max")) == str(dom0_kib)
    assert host.xenstore.read(domain_path(0, "control/feature-balloon")) == "1"
    assert svc.get_domain_zero_policy("dbg") == AutoBalloon(
        low_bytes=GIB_KIB * 1024, high_bytes=dom0_kib * 1024
    )


def _stuck_guest_below_its_max(host: SimulatedHost) -> None:
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=GIB_KIB)
    host.build_domain(domid, memory_kib=GIB_KIB // 2, shadow_mib=0)
    for key, value in (("target", GIB_KIB // 2), ("dynamic-min", 1024), ("dynamic-max", GIB_KIB)):
        host.xenstore.write(domain_path(domid, f"memory/{key}"), str(value))
    host.attach_guest(domid, Guest(driver=Stuck()), booted=True)
    host.unpause_domain(domid)


@pytest.mark.parametrize(
    ("setup", "failure"),
    [
        # Nothing can take the free memory above the target (§3.6).
        (lambda host: None, CannotFreeThisMuchMemory),
        # The one guest that could take it never moves its balloon.
        (_stuck_guest_below_its_max, DomainsRefusedToCooperate),
    ],
    ids=["no-taker", "stuck-guest"],
)
def test_balance_memory_swallows_failures(
    setup: Callable[[SimulatedHost], None],
    failure: type[Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc, host = service(memory_gib=4)
    setup(host)
    squeezer = svc.squeezer
    with pytest.raises(failure):
        run_virtual(squeezer.change_host_free_memory(T, squeezer.is_balanced))
    with caplog.at_level("WARNING", logger="xenmem.balloon.squeezer"):
        run_virtual(svc.balance_memory("dbg"))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert messages[0].startswith(f"balance_memory failed: {failure.__name__}: ")
    # The failure released the service's lock: the next call runs.
    rid = run_virtual(svc.reserve_memory("dbg", "s", 1000))
    assert host.xenstore.read(f"/squeezed/state/s/{rid}") == "1000"


def test_the_service_runs_as_an_asyncio_task_on_a_real_clock() -> None:
    async def scenario() -> str:
        clock = RealClock(scale=1000.0)
        host = SimulatedHost(HostSpec.default(16 * GIB_KIB * 1024), clock)
        svc = MemoryService(Squeezer(host, clock, SqueezerConfig()))
        return await asyncio.wait_for(svc.reserve_memory("dbg", "s", 1000), timeout=30)

    assert len(asyncio.run(scenario())) == 36


def test_periodic_balance_hands_back_a_deleted_reservation_within_ten_seconds() -> None:
    svc, host = service(memory_gib=4)
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=GIB_KIB)
    host.build_domain(domid, memory_kib=GIB_KIB // 2, shadow_mib=0)
    for key, value in (("target", GIB_KIB // 2), ("dynamic-min", 1024), ("dynamic-max", GIB_KIB)):
        host.xenstore.write(domain_path(domid, f"memory/{key}"), str(value))
    host.attach_guest(domid, Guest(driver=Ideal(rate_kib_s=GIB_KIB)), booted=True)
    host.unpause_domain(domid)
    rid = run_virtual(svc.reserve_memory("dbg", "s", 2 * GIB_KIB))
    assert int(host.xenstore.read(domain_path(domid, "memory/target")) or 0) < GIB_KIB // 2
    squeezed_target = host.xenstore.read(domain_path(domid, "memory/target"))
    run_virtual(svc.delete_reservation("dbg", "s", rid))
    # Deleting does not rebalance (§5.2): the periodic check does, within 10 s.
    assert host.xenstore.read(domain_path(domid, "memory/target")) == squeezed_target
    run_virtual(svc.run_periodic_balance(until_s=svc.squeezer.clock.now() + 10.0))
    assert host.xenstore.read(domain_path(domid, "memory/target")) == str(GIB_KIB)
    assert adds_up(svc.squeezer.xen, svc.squeezer.config)


def test_transfer_sets_maxmem_with_the_memory_offset() -> None:
    svc, host = service()
    rid = run_virtual(svc.reserve_memory("dbg", "s", 5000))
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=0)
    host.xenstore.write(domain_path(domid, "memory/memory-offset"), "300")
    run_virtual(svc.transfer_reservation_to_domain("dbg", "s", rid, domid))
    # PV: no Xen offset; amount + memory-offset (§2.3, §5.2).
    assert next(d.max_kib for d in host.domains() if d.domid == domid) == 5300


def test_transfer_to_a_domain_without_a_xenstore_directory_is_unknown() -> None:
    svc, host = service()
    rid = run_virtual(svc.reserve_memory("dbg", "s", 5000))
    with pytest.raises(UnknownReservation):
        run_virtual(svc.transfer_reservation_to_domain("dbg", "s", rid, 42))
    assert host.xenstore.read("/squeezed/state/s/r0/in-transfer") is None


def test_a_failing_maxmem_step_of_a_transfer_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc, host = service()
    rid = run_virtual(svc.reserve_memory("dbg", "s", 5000))
    # A xenstore directory but no Xen domain: set_maxmem cannot succeed.
    host.xenstore.write(domain_path(42, "memory/static-max"), "1")
    # A Xen domain whose maxmem would be negative: Xen refuses it.
    rid2 = run_virtual(svc.reserve_memory("dbg", "s", 6000))
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=77)
    host.xenstore.write(domain_path(domid, "memory/memory-offset"), "-7000")
    with caplog.at_level("WARNING", logger="xenmem.balloon.service"):
        run_virtual(svc.transfer_reservation_to_domain("dbg", "s", rid, 42))
        run_virtual(svc.transfer_reservation_to_domain("dbg", "s", rid2, domid))
    assert host.xenstore.read(domain_path(42, "memory/initial-reservation")) == "5000"
    assert host.xenstore.read(f"/squeezed/state/s/{rid}/in-transfer") == "42"
    assert host.xenstore.read(domain_path(domid, "memory/reservation-id")) == rid2
    assert next(d.max_kib for d in host.domains() if d.domid == domid) == 77
    assert len([r for r in caplog.records if "setmaxmem" in r.getMessage()]) == 2


class _CountedHost(SimulatedHost):
    """Counts physinfo readings; the first `drift_calls` readings each show `drift_kib`
    more free memory than the one before."""

    def __init__(self, spec: HostSpec, clock: Clock, *, drift_kib: int = 0, drift_calls: int = 0):
        super().__init__(spec, clock)
        self.calls = 0
        self.drift_kib = drift_kib
        self.drift_calls = drift_calls

    def physinfo(self) -> PhysInfo:
        self.calls += 1
        info = super().physinfo()
        drift = self.drift_kib * min(self.calls, self.drift_calls)
        return dataclasses.replace(info, free_kib=info.free_kib + drift)


def test_concurrent_first_callers_share_one_boot_time_measurement() -> None:
    async def scenario() -> tuple[list[int], int]:
        clock = RealClock(scale=1000.0)
        host = _CountedHost(HostSpec.default(16 * GIB_KIB * 1024), clock)
        svc = MemoryService(Squeezer(host, clock, SqueezerConfig()))
        calls = [svc.get_host_initial_free_memory(f"dbg{n}") for n in range(3)]
        results = await asyncio.wait_for(asyncio.gather(*calls), timeout=30)
        later = await svc.get_host_initial_free_memory("late")
        return [*results, later], host.calls

    results, readings = asyncio.run(scenario())
    assert len(set(results)) == 1 and results[0] > 0
    assert readings == 10


def test_boot_time_samples_within_exactly_the_tolerance_are_stable() -> None:
    clock = VirtualClock()
    # Each of the first five readings shows exactly 1 MiB (the tolerance) more free.
    host = _CountedHost(HostSpec.default(16 * GIB_KIB * 1024), clock, drift_kib=1024, drift_calls=5)
    svc = MemoryService(Squeezer(host, clock, SqueezerConfig()))
    run_virtual(svc.get_host_initial_free_memory("dbg"))
    # "Within" is inclusive: the first ten readings already count as stable.
    assert clock.now() == 9.0


def test_initial_free_memory_is_zero_when_it_cannot_be_measured() -> None:
    clock = VirtualClock()
    # Without a domain 0 there is no dom0 total memory to add: the measurement fails.
    host = SimulatedHost(HostSpec(total_kib=GIB_KIB, xen_kib=0, dom0_kib=None), clock)
    svc = MemoryService(Squeezer(host, clock, SqueezerConfig()))
    assert run_virtual(svc.get_host_initial_free_memory("dbg")) == 0
    assert run_virtual(svc.get_host_initial_free_memory("dbg")) == 0


def test_login_drops_transferred_records_too() -> None:
    svc, host = service()
    rid = run_virtual(svc.reserve_memory("dbg", "xenopsd", 1000))
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=0)
    run_virtual(svc.transfer_reservation_to_domain("dbg", "xenopsd", rid, domid))
    run_virtual(svc.login("dbg", "xenopsd"))
    assert host.xenstore.read(f"/squeezed/state/xenopsd/{rid}") is None
    assert host.xenstore.directory("/squeezed/state/xenopsd") == []


def test_reserve_memory_range_does_not_check_min_against_max() -> None:
    svc, host = service()
    rid, amount = run_virtual(svc.reserve_memory_range("dbg", "s", 5000, 1000))
    # max(min, min(usable, max)) with plenty free: min wins (§3.7, §5.2).
    assert amount == 5000
    assert host.xenstore.read(f"/squeezed/state/s/{rid}") == "5000"


def test_the_periodic_check_rebalances_only_an_unbalanced_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svc, _ = service()
    balances: list[float] = []

    async def balance() -> None:
        balances.append(svc.squeezer.clock.now())

    monkeypatch.setattr(svc.squeezer, "balance_memory", balance)
    for unbalanced in (False, True):

        async def answer(value: bool = unbalanced) -> bool:
            return value

        monkeypatch.setattr(svc.squeezer, "is_host_memory_unbalanced", answer)
        run_virtual(svc.run_periodic_balance(until_s=svc.squeezer.clock.now() + 10.0))
    assert balances == [20.0]


def _service_on(
    host_setup: Callable[[SimulatedHost], None], config: SqueezerConfig
) -> MemoryService:
    clock = VirtualClock()
    host = SimulatedHost(HostSpec.default(16 * GIB_KIB * 1024), clock)
    host_setup(host)
    return MemoryService(Squeezer(host, clock, config))


def test_managing_domain_zero_keeps_what_is_already_there() -> None:
    def existing(host: SimulatedHost) -> None:
        host.xenstore.write(domain_path(0, "memory/dynamic-max"), "1500000")
        host.xenstore.write(domain_path(0, "memory/target"), "1400000")

    config = SqueezerConfig(
        manage_domain_zero=True, domain_zero_dynamic_min_bytes=GIB_KIB * 1024 + 1
    )
    svc = _service_on(existing, config)
    store = svc.squeezer.xen.xenstore
    # dynamic-min rounded up to whole KiB; dynamic-max and target as they were (§5.2).
    assert store.read(domain_path(0, "memory/dynamic-min")) == str(GIB_KIB + 1)
    assert store.read(domain_path(0, "memory/dynamic-max")) == "1500000"
    assert store.read(domain_path(0, "memory/target")) == "1400000"


def test_managing_domain_zero_with_a_configured_max_and_no_target() -> None:
    def no_target(host: SimulatedHost) -> None:
        host.xenstore.write(domain_path(0, "memory/dynamic-max"), "1500000")
        host.xenstore.remove(domain_path(0, "memory/target"))

    high = 1700 * 1024 * 1024
    config = SqueezerConfig(manage_domain_zero=True, domain_zero_dynamic_max_bytes=high)
    svc = _service_on(no_target, config)
    store = svc.squeezer.xen.xenstore
    assert store.read(domain_path(0, "memory/dynamic-max")) == str(1700 * 1024)
    assert store.read(domain_path(0, "memory/target")) == str(1700 * 1024)
    assert svc.get_domain_zero_policy("dbg") == AutoBalloon(
        low_bytes=GIB_KIB * 1024, high_bytes=high
    )
