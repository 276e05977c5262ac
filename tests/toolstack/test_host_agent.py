"""The host agent: a simulated host, its squeezed, and xenopsd's build sequence (squeezer.md §9)."""

from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tests.balloon.books import ledger_of
from tests.support import simulated
from xenmem.balloon import SqueezerConfig
from xenmem.errors import XenAPIError
from xenmem.memory import DomainType, VmMemory
from xenmem.memory.domain_build import BuildKind
from xenmem.toolstack.host_agent import HostAgent
from xenmem.xen import BootConfig, VirtualClock, domain_path, run_virtual
from xenmem.xen.simulator import HostSpec, SimulatedHost, SimulatedLab

T = TypeVar("T")
MIB = 1048576
GIB = 1024 * MIB
KIB_PER_GIB = 1024 * 1024
# Guests by their VM.other_config: the default driver is ideal at 1 GiB/s, loaded 20 s
# after the first unpause.
FAST: dict[str, str] = {}
LOADED = {"xenmem_boot_seconds": "0"}
STUCK = {"xenmem_balloon": "stuck", **LOADED}
NO_DRIVER = {"xenmem_balloon": "none", **LOADED}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return run_virtual(coroutine)


def vm(dynamic_min: int, dynamic_max: int, *, domain_type: DomainType = DomainType.HVM) -> VmMemory:
    return VmMemory(
        domain_type=domain_type,
        static_min=dynamic_min,
        dynamic_min=dynamic_min,
        dynamic_max=dynamic_max,
        static_max=dynamic_max,
        vcpus_max=2,
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def host(clock: VirtualClock) -> SimulatedHost:
    return SimulatedHost(HostSpec.default(16 * GIB), clock)


def new_agent(host: SimulatedHost, clock: VirtualClock) -> HostAgent:
    return HostAgent(xen=host, clock=clock, config=SqueezerConfig(), lab=SimulatedLab(host))


@pytest.fixture
def agent(host: SimulatedHost, clock: VirtualClock) -> HostAgent:
    booted = new_agent(host, clock)
    run(booted.boot())
    return booted


def build(
    agent: HostAgent,
    ref: str,
    shape: VmMemory,
    other_config: dict[str, str],
    kind: BuildKind = BuildKind.START,
    *,
    exact_bytes: int | None = None,
) -> Coroutine[Any, Any, int]:
    boot = BootConfig(uuid=ref, name=ref, vcpus=shape.vcpus_max)
    return agent.domains.build(ref, shape, boot, other_config, kind, exact_bytes=exact_bytes)


def adds_up(agent: HostAgent) -> bool:
    return ledger_of(agent.snapshot()).adds_up()


def test_boot_reports_total_boot_free_and_overhead(
    host: SimulatedHost, clock: VirtualClock
) -> None:
    spec = host.spec
    boot = run(new_agent(host, clock).boot())
    assert boot.total_bytes == 16 * GIB
    # dom0 counts as free at boot: only Xen's own share is missing.
    assert boot.measures.free_bytes == (spec.total_kib - spec.xen_kib) * 1024
    assert boot.memory_overhead == spec.xen_kib * 1024 + 73728 * 1024
    # Ten stable samples, one second apart.
    assert clock.now() == pytest.approx(9.0)


def test_build_reserves_creates_and_releases(agent: HostAgent) -> None:
    domid = run(build(agent, "OpaqueRef:a", vm(GIB, 2 * GIB), FAST, BuildKind.START))
    store = simulated(agent).xenstore
    assert store.read(domain_path(domid, "memory/target")) == str(2 * KIB_PER_GIB)
    assert store.read(domain_path(domid, "memory/dynamic-min")) == str(KIB_PER_GIB)
    assert store.read(domain_path(domid, "memory/dynamic-max")) == str(2 * KIB_PER_GIB)
    # The full range plus xenopsd's overhead was reserved and handed over: for 2 GiB and
    # 2 vCPUs, 1 + 1 + shadow ceil((512 + 4096) / 256) = 18 + 1 = 21 MiB.
    assert store.read(domain_path(domid, "memory/initial-reservation")) == str((2048 + 21) * 1024)
    assert store.directory("/squeezed/state/xenopsd") == []
    stat = agent.stat("OpaqueRef:a")
    assert (stat.target_bytes, stat.actual_bytes, stat.shadow_bytes) == (2 * GIB, 2 * GIB, 18 * MIB)
    assert agent.domains.resident == {"OpaqueRef:a": domid}
    assert adds_up(agent)


def test_a_host_that_cannot_free_enough_says_so_in_bytes(
    agent: HostAgent, clock: VirtualClock
) -> None:
    started = clock.now()
    with pytest.raises(XenAPIError) as caught:
        run(build(agent, "OpaqueRef:big", vm(15 * GIB, 15 * GIB), FAST, BuildKind.START))
    error = caught.value
    assert error.code == "HOST_NOT_ENOUGH_FREE_MEMORY"
    needed, available = (int(p) for p in error.params)
    assert needed % 1024 == 0 and available % 1024 == 0 and needed > available
    # xenopsd kept retrying for a minute before giving up.
    assert clock.now() - started > 60
    assert agent.domains.resident == {}
    assert adds_up(agent)


def test_a_stuck_guest_is_named_by_its_vm(agent: HostAgent, clock: VirtualClock) -> None:
    run(
        build(
            agent,
            "OpaqueRef:stuck",
            vm(GIB, 12 * GIB),
            STUCK,
            BuildKind.START,
        )
    )
    clock.advance(1)
    with pytest.raises(XenAPIError) as caught:
        run(build(agent, "OpaqueRef:new", vm(4 * GIB, 4 * GIB), FAST, BuildKind.START))
    assert caught.value.description == ["VMS_FAILED_TO_COOPERATE", "OpaqueRef:stuck"]
    assert not agent.stat("OpaqueRef:stuck").cooperative


def test_a_cooperative_guest_makes_room(agent: HostAgent, clock: VirtualClock) -> None:
    run(build(agent, "OpaqueRef:big", vm(GIB, 12 * GIB), LOADED, BuildKind.START))
    clock.advance(1)
    run(build(agent, "OpaqueRef:new", vm(4 * GIB, 4 * GIB), FAST, BuildKind.START))
    assert agent.stat("OpaqueRef:big").actual_bytes < 12 * GIB
    assert agent.stat("OpaqueRef:new").actual_bytes == 4 * GIB
    assert simulated(agent).faults == []
    assert adds_up(agent)


def test_live_range_change_retargets_and_the_guest_follows(
    agent: HostAgent, clock: VirtualClock
) -> None:
    run(build(agent, "OpaqueRef:a", vm(GIB, 4 * GIB), LOADED, BuildKind.START))
    clock.advance(1)
    before = clock.now()
    run(agent.domains.set_dynamic_range("OpaqueRef:a", 2 * GIB, 2 * GIB))
    # xenopsd's rebalance is synchronous: it returns once the guest has given back 2 GiB,
    # which takes it at least 2 s at 1 GiB/s.
    assert clock.now() - before >= 2
    stat = agent.stat("OpaqueRef:a")
    assert stat.target_bytes == 2 * GIB
    assert stat.on_target and stat.cooperative
    assert abs(stat.actual_bytes - 2 * GIB) <= 4096


def test_a_guest_without_balloon_driver_is_not_cooperative(
    agent: HostAgent, clock: VirtualClock
) -> None:
    run(build(agent, "OpaqueRef:a", vm(GIB, GIB), NO_DRIVER, BuildKind.START))
    clock.advance(30)
    stat = agent.stat("OpaqueRef:a")
    assert stat.on_target and not stat.can_balloon and not stat.cooperative


def test_suspend_and_resume_keep_the_memory(agent: HostAgent, clock: VirtualClock) -> None:
    shape = vm(GIB, 2 * GIB)
    run(build(agent, "OpaqueRef:a", shape, LOADED, BuildKind.START))
    saved = agent.domains.suspend("OpaqueRef:a")
    assert saved == 2 * GIB
    assert agent.domains.resident == {}
    run(build(agent, "OpaqueRef:a", shape, FAST, BuildKind.RESUME, exact_bytes=saved))
    assert agent.stat("OpaqueRef:a").actual_bytes == saved
    # A resumed guest's driver is already loaded.
    assert agent.stat("OpaqueRef:a").can_balloon


def test_migration_ballooning_pins_to_dynamic_min(agent: HostAgent, clock: VirtualClock) -> None:
    run(build(agent, "OpaqueRef:a", vm(GIB, 4 * GIB), LOADED, BuildKind.START))
    clock.advance(1)
    run(agent.balloon_for_migration("OpaqueRef:a", GIB, 4 * GIB))
    stat = agent.stat("OpaqueRef:a")
    assert stat.target_bytes == GIB and stat.on_target
    assert stat.limit_bytes >= stat.actual_bytes


def test_destroy_returns_the_memory(agent: HostAgent) -> None:
    free_before = agent.free_bytes
    run(build(agent, "OpaqueRef:a", vm(GIB, GIB), FAST, BuildKind.START))
    assert agent.free_bytes < free_before
    agent.domains.destroy("OpaqueRef:a")
    assert agent.free_bytes == free_before
    with pytest.raises(XenAPIError):
        agent.stat("OpaqueRef:a")


def test_a_refusal_is_remembered_until_the_guest_moves(
    agent: HostAgent, clock: VirtualClock
) -> None:
    run(build(agent, "OpaqueRef:stuck", vm(GIB, 12 * GIB), STUCK, BuildKind.START))
    clock.advance(1)
    with pytest.raises(XenAPIError):
        run(build(agent, "OpaqueRef:new", vm(4 * GIB, 4 * GIB), FAST, BuildKind.START))
    # The next periodic balance gives the stuck guest its old target back: it is on
    # target again, but it is the guest that refused, and stays reported as such.
    clock.advance(10)
    run(agent.memory.periodic_check())
    stat = agent.stat("OpaqueRef:stuck")
    assert stat.on_target
    assert stat.refused and not stat.cooperative


def test_an_intermittent_guest_is_forgiven_once_it_moves(
    agent: HostAgent, clock: VirtualClock
) -> None:
    # Works during [0, 30), [60, 90) ... and is stuck in between.
    flaky = {"xenmem_balloon": "intermittent:30", **LOADED}
    run(build(agent, "OpaqueRef:flaky", vm(GIB, 12 * GIB), flaky, BuildKind.START))
    clock.advance(40 - clock.now())
    # The rebalance fails (squeezed logs and swallows that); the guest is found stuck.
    run(agent.domains.set_dynamic_range("OpaqueRef:flaky", GIB, GIB))
    assert agent.stat("OpaqueRef:flaky").refused
    # From t = 60 it works again and shrinks toward its target (11 GiB at 1 GiB/s); the
    # squeezer's next periodic look sees the progress.
    clock.advance(75 - clock.now())
    run(agent.memory.periodic_check())
    stat = agent.stat("OpaqueRef:flaky")
    assert not stat.refused
    assert stat.cooperative
