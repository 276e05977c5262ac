"""The simulated host, its drivers, the key tree and the clocks (squeezer.md §6, §7)."""

from __future__ import annotations

import types
from collections.abc import Generator

import pytest

from xenmem.memory.model import DomainType
from xenmem.xen import RealClock, VirtualClock, XenError, domain_path, run_virtual
from xenmem.xen.simulator import (
    Cap,
    Driver,
    Fault,
    Floor,
    Greedy,
    Guest,
    GuestFault,
    HostSpec,
    Ideal,
    Intermittent,
    Motion,
    NoDriver,
    SimulatedHost,
    Stuck,
    default_dom0_kib,
)
from xenmem.xen.simulator.drivers import base_delta
from xenmem.xen.xenstore import KeyTree

GIB_KIB = 1024 * 1024


def motion(actual: int, target: int, start: float = 0.0, end: float = 0.1) -> Motion:
    return Motion(start_s=start, end_s=end, actual_kib=actual, target_kib=target, inaccuracy_kib=4)


def test_base_rule_stops_inaccuracy_short_and_keeps_the_float_caveat() -> None:
    assert base_delta(motion(1000, 0), 100) == -10
    assert base_delta(motion(0, 6), 100) == 2
    assert base_delta(motion(0, 4), 100) == 0
    # 0.3 - 0.2 = 0.09999999999999998: trunc(9.99…) = 9, as the reference simulator.
    assert base_delta(motion(1000, 0, 0.2, 0.3), 100) == -9


def test_hidden_limits_and_odd_drivers() -> None:
    assert Floor(rate_kib_s=100, floor_kib=995).delta(motion(1000, 0)) == -5
    assert Floor(rate_kib_s=100, floor_kib=1200).delta(motion(1000, 0)) == 200
    assert Cap(rate_kib_s=100, cap_kib=1005).delta(motion(1000, 2000)) == 5
    assert Cap(rate_kib_s=100, cap_kib=2000).delta(motion(1000, 2000)) == 10
    # Beyond a hidden limit the guest is brought back to it, even with no move to make.
    assert Floor(rate_kib_s=100, floor_kib=1200).delta(motion(1000, 1000)) == 200
    assert Cap(rate_kib_s=100, cap_kib=1500).delta(motion(1600, 0)) == -100
    assert Stuck().delta(motion(1000, 0)) == 0
    assert NoDriver().delta(motion(1000, 0)) == 0 and not NoDriver().announces
    assert Greedy(rate_kib_s=100).delta(motion(1000, 0)) == 10
    works = Intermittent(rate_kib_s=100, interval_s=1.0)
    assert works.delta(motion(1000, 0, 0.5, 0.6)) == base_delta(motion(1000, 0, 0.5, 0.6), 100)
    assert works.delta(motion(1000, 0, 0.9, 1.0)) == 0
    # Both ends of the tick must be in working windows: ending in one is not enough.
    assert works.delta(motion(1000, 0, 1.9, 2.0)) == 0
    assert works.delta(motion(1000, 0, 1.5, 1.6)) == 0
    assert works.delta(motion(1000, 0, 2.0, 2.1)) == -10


def test_default_host_sizes_follow_the_installer() -> None:
    assert default_dom0_kib(16 * GIB_KIB) == 1856 * 1024
    assert default_dom0_kib(64 * GIB_KIB) == 4304 * 1024
    assert default_dom0_kib(256 * GIB_KIB) == 8192 * 1024
    spec = HostSpec.default(16 * GIB_KIB * 1024)
    assert spec.total_kib == 16 * GIB_KIB and spec.dom0_kib == 1856 * 1024
    with pytest.raises(ValueError, match="do not fit"):
        HostSpec(total_kib=10, xen_kib=8, dom0_kib=8)


def guest_host(
    driver: Driver, *, free: int = 10_000, actual: int = 1000, boot_delay: float = 0.0
) -> tuple[VirtualClock, SimulatedHost, int]:
    clock = VirtualClock()
    host = SimulatedHost(HostSpec(total_kib=free + actual, xen_kib=0, dom0_kib=None), clock)
    domid = host.create_domain(domain_type=DomainType.PV, max_kib=actual)
    host.build_domain(domid, memory_kib=actual, shadow_mib=0)
    host.xenstore.write(domain_path(domid, "memory/target"), str(actual))
    host.attach_guest(domid, Guest(driver=driver, boot_delay_s=boot_delay))
    return clock, host, domid


def test_driver_announces_itself_after_the_boot_delay_and_only_when_running() -> None:
    clock, host, domid = guest_host(Ideal(rate_kib_s=100), boot_delay=20.0)
    clock.advance(30.0)
    assert host.xenstore.read(domain_path(domid, "control/feature-balloon")) is None
    host.unpause_domain(domid)
    clock.advance(19.9)
    assert host.xenstore.read(domain_path(domid, "control/feature-balloon")) is None
    clock.advance(0.1)
    assert host.xenstore.read(domain_path(domid, "control/feature-balloon")) == "1"
    assert host.xenstore.read(domain_path(domid, "data/updated")) == "1"


def test_a_guest_moves_toward_its_target_only_once_its_driver_has_announced_itself() -> None:
    clock, host, domid = guest_host(Ideal(rate_kib_s=100), boot_delay=2.0)
    host.xenstore.write(domain_path(domid, "memory/target"), "0")
    host.unpause_domain(domid)
    clock.advance(2.0)
    # Announced at the end of the tick reaching 2.0 s; no movement before or during it.
    assert host.xenstore.read(domain_path(domid, "control/feature-balloon")) == "1"
    assert host.domains()[0].tot_kib == 1000
    clock.advance(0.1)
    assert host.domains()[0].tot_kib == 990


def test_a_guest_without_a_balloon_driver_never_moves_toward_its_target() -> None:
    for driver in (NoDriver(), Ideal(rate_kib_s=100, announces=False)):
        clock, host, domid = guest_host(driver)
        host.xenstore.write(domain_path(domid, "memory/target"), "0")
        host.unpause_domain(domid)
        clock.advance(10.0)
        assert host.xenstore.read(domain_path(domid, "control/feature-balloon")) is None
        assert host.domains()[0].tot_kib == 1000


def test_growth_is_capped_by_maxmem_and_refused_beyond_free_memory() -> None:
    clock, host, domid = guest_host(Greedy(rate_kib_s=1000), free=150)
    host.unpause_domain(domid)
    host.set_maxmem(domid, 1050)
    clock.advance(1.0)
    assert host.domains()[0].tot_kib == 1050
    assert host.faults == []
    host.set_maxmem(domid, 5000)
    clock.advance(1.0)
    assert host.domains()[0].tot_kib == 1150
    assert host.faults[0].domid == domid
    assert host.faults[0].available_kib == 0
    assert host.physinfo().free_kib == 0


def test_memory_is_conserved_through_build_destroy_and_scrub() -> None:
    clock = VirtualClock()
    host = SimulatedHost(HostSpec.default(4 * GIB_KIB * 1024), clock)

    def accounted() -> int:
        info = host.physinfo()
        held = sum(d.tot_kib + d.shadow_mib * 1024 for d in host.domains())
        return host.xen_kib + held + info.free_kib + info.scrub_kib

    domid = host.create_domain(domain_type=DomainType.HVM, max_kib=GIB_KIB)
    host.build_domain(domid, memory_kib=GIB_KIB // 2, shadow_mib=5)
    assert accounted() == host.spec.total_kib
    with pytest.raises(XenError):
        host.build_domain(domid, memory_kib=100 * GIB_KIB, shadow_mib=0)
    host.destroy_domain(domid)
    assert host.physinfo().scrub_kib == GIB_KIB // 2 + 5 * 1024
    assert accounted() == host.spec.total_kib
    clock.advance(1.0)
    assert host.physinfo().scrub_kib == 0
    assert accounted() == host.spec.total_kib
    assert not host.consume(100 * GIB_KIB)
    assert host.faults[-1].domid is None


def test_domain_lifecycle_and_watches() -> None:
    clock = VirtualClock()
    host = SimulatedHost(HostSpec.default(4 * GIB_KIB * 1024), clock)
    seen: list[str] = []
    host.xenstore.watch("@introduceDomain", seen.append)
    host.xenstore.watch("@releaseDomain", seen.append)
    domid = host.create_domain(domain_type=DomainType.PV_IN_PVH, max_kib=0)
    assert domid == 1
    assert host.xenstore.read(domain_path(domid, "domain-type")) == "pv-in-pvh"
    host.unpause_domain(domid)
    host.pause_domain(domid)
    assert host.domains()[1].paused
    host.destroy_domain(domid)
    assert seen == ["@introduceDomain", "@releaseDomain"]
    for call in (host.pause_domain, host.unpause_domain, host.destroy_domain):
        with pytest.raises(XenError):
            call(domid)
    with pytest.raises(XenError):
        host.set_maxmem(0, -1)


def test_key_tree_semantics() -> None:
    tree = KeyTree()
    events: list[str] = []
    watch = tree.watch("/local/domain/1", events.append)
    tree.write("/local/domain/1/memory/target", "5")
    tree.write("/local/domain/2/memory/target", "6")
    assert tree.read("/local/domain/1/memory") == ""
    assert tree.directory("/local/domain") == ["1", "2"]
    tree.remove("/local/domain/1")
    assert tree.read("/local/domain/1/memory/target") is None
    tree.remove("/nowhere")
    assert events == ["/local/domain/1/memory/target", "/local/domain/1"]
    tree.unwatch(watch)
    tree.write("/local/domain/1/x", "1")
    assert len(events) == 2
    with pytest.raises(ValueError, match="absolute"):
        tree.write("relative/key", "1")


def test_virtual_clock_moves_only_when_asked_and_never_backwards() -> None:
    clock = VirtualClock()
    for _ in range(3):
        clock.advance(0.1)
    assert clock.now() == 0.3
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)

    async def sleepy() -> float:
        await clock.sleep(60.0)
        return clock.now()

    assert run_virtual(sleepy()) == 60.3


def test_run_virtual_refuses_a_coroutine_that_really_suspends() -> None:
    @types.coroutine
    def suspend() -> Generator[None, None, None]:
        yield

    async def real() -> None:
        await suspend()

    with pytest.raises(RuntimeError, match="suspended"):
        run_virtual(real())
    with pytest.raises(ValueError, match="positive"):
        RealClock(scale=0)


def test_a_host_built_to_stop_at_a_fault_stops_at_the_first_refused_allocation() -> None:
    clock = VirtualClock()
    host = SimulatedHost(
        HostSpec(total_kib=2015, xen_kib=0, dom0_kib=None), clock, stop_at_fault=True
    )
    for _ in range(2):
        domid = host.create_domain(domain_type=DomainType.PV, max_kib=5000)
        host.build_domain(domid, memory_kib=1000, shadow_mib=0)
        host.xenstore.write(domain_path(domid, "memory/target"), "5000")
        host.attach_guest(domid, Guest(driver=Ideal(rate_kib_s=100)), booted=True)
        host.unpause_domain(domid)
    clock.advance(0.1)
    # In the tick ending at 0.1 s the first guest takes 10 of the 15 free KiB and the
    # second is refused 10; the host stops there.
    with pytest.raises(GuestFault) as stopped:
        host.domains()
    assert stopped.value.fault == Fault(time_s=0.1, domid=2, wanted_kib=10, available_kib=5)
    # The faulty tick is not replayed: the sizes stay as the fault left them.
    assert [d.tot_kib for d in host.domains()] == [1010, 1000]
