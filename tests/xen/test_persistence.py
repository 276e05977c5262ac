"""A simulated host saved and restored goes on exactly as if it had never stopped."""

import json

from xenmem.memory.model import DomainType
from xenmem.xen import VirtualClock, domain_path
from xenmem.xen.simulator import Driver, Floor, Guest, HostSpec, Ideal, Intermittent, SimulatedHost
from xenmem.xen.xenstore import KeyTree

MIB = 1024


def busy_host(clock: VirtualClock) -> SimulatedHost:
    host = SimulatedHost(HostSpec.default(16 * 2**30), clock)
    drivers: list[Driver] = [
        Ideal(rate_kib_s=100 * MIB),
        Floor(rate_kib_s=50 * MIB, floor_kib=900 * MIB),
        Intermittent(rate_kib_s=80 * MIB, interval_s=3.0),
    ]
    for driver in drivers:
        domid = host.create_domain(domain_type=DomainType.HVM, max_kib=4096 * MIB)
        host.build_domain(domid, memory_kib=2048 * MIB, shadow_mib=20)
        host.xenstore.write(domain_path(domid, "memory/target"), str(512 * MIB))
        host.attach_guest(domid, Guest(driver=driver, boot_delay_s=1.0))
        host.unpause_domain(domid)
    host.destroy_domain(2)  # leaves memory to scrub
    clock.advance(4.3)
    return host


def test_a_restored_host_continues_identically() -> None:
    clock = VirtualClock()
    original = busy_host(clock)
    saved = json.loads(json.dumps(original.to_data()))
    twin_clock = VirtualClock(start_s=clock.now())
    restored = SimulatedHost.from_data(original.spec, twin_clock, saved)
    assert restored.to_data() == original.to_data()
    for step in (0.1, 1.0, 7.0):
        clock.advance(step)
        twin_clock.advance(step)
        assert restored.to_data() == original.to_data()
        assert restored.physinfo() == original.physinfo()
        assert restored.domains() == original.domains()


def test_time_that_passed_while_down_is_caught_up() -> None:
    clock = VirtualClock()
    original = busy_host(clock)
    saved = original.to_data()
    later = VirtualClock(start_s=clock.now() + 30.0)
    restored = SimulatedHost.from_data(original.spec, later, saved)
    clock.advance(30.0)
    assert restored.domains() == original.domains()


def test_key_tree_round_trip() -> None:
    tree = KeyTree()
    tree.write("/a/b/c", "1")
    tree.write("/a/d", "x")
    again = KeyTree.load(tree.dump())
    assert again.dump() == tree.dump()
    assert again.directory("/a") == ["b", "d"]
    assert again.read("/a/b/c") == "1"
