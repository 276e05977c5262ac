"""Cancelled and failed operations leave Xen, squeezed and the records agreeing.

The pool runs in process on a virtual clock whose sleeps yield to the event loop, so a
call can be cancelled at an exact point of its progress: a start whose domain is built
while it waits to drop its reservation, a migration while its guest balloons down, a
range change while the guest follows it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from tests.support import simulated
from tests.toolstack.harness import GIB, MIB
from xenmem.balloon.reservations import record_path
from xenmem.cli.pool import start_simulated_pool
from xenmem.db import NULL_REF, Store
from xenmem.toolstack import MESSAGES, Context
from xenmem.toolstack.host_agent import HostAgent
from xenmem.toolstack.pool import PoolHost, PoolSpec
from xenmem.toolstack.records import PowerState, read_vm
from xenmem.toolstack.runtime import PoolRuntime
from xenmem.xen import VirtualClock, domain_path
from xenmem.xenapi.model import INDEXES, RELATIONS, SUMS, decode_record, schemas


class YieldingClock(VirtualClock):
    """Virtual time whose sleeps let other tasks run, as a real clock's do."""

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class Rig:
    def __init__(self, runtime: PoolRuntime, clock: YieldingClock) -> None:
        self.runtime = runtime
        self.clock = clock
        self.store = runtime.store
        self.ctx = Context(store=runtime.store, runtime=runtime)
        self.hosts = sorted(runtime.agents, key=lambda h: str(self.ctx.host(h).name_label))

    def agent(self, host: str) -> HostAgent:
        return self.runtime.agent(host)

    def vm(self, dmin: int, dmax: int, balloon: str = "ideal") -> str:
        record = decode_record(
            "VM",
            {
                "name_label": "vm",
                "HVM_boot_policy": "BIOS order",
                "memory_static_min": 256 * MIB,
                "memory_dynamic_min": dmin,
                "memory_dynamic_max": dmax,
                "memory_static_max": dmax,
                "VCPUs_max": 1,
                "VCPUs_at_startup": 1,
                "other_config": {"xenmem_boot_seconds": "0", "xenmem_balloon": balloon},
            },
        )
        return str(MESSAGES["VM.create"](self.ctx, record))

    def call(self, name: str, *args: Any) -> Coroutine[Any, Any, Any]:
        result = MESSAGES[name](self.ctx, *args)
        assert asyncio.iscoroutine(result)
        return result

    def range_in_xenstore(self, host: str, vm: str) -> tuple[int, int]:
        domid = self.agent(host).domains.domid_of(vm)
        assert domid is not None
        store = simulated(self.agent(host)).xenstore
        values = (store.read(domain_path(domid, f"memory/dynamic-{k}")) for k in ("min", "max"))
        low, high = (int(v or "-1") * 1024 for v in values)
        return low, high

    def assert_agreeing(self) -> None:
        """Every domain is a resident VM's, every resident VM has its domain, no reservation
        record, scheduling or operation is left, and every ledger accounts for every byte."""
        vms = {ref: read_vm(self.store, ref) for ref in self.store.records("VM")}
        for host in self.hosts:
            agent = self.agent(host)
            resident = {
                ref
                for ref, vm in vms.items()
                if vm.resident_on == host and not vm.is_control_domain
            }
            assert set(agent.domains.resident) == resident
            domids = {d.domid for d in simulated(agent).domains()}
            assert domids == {0, *agent.domains.resident.values()}
            ledger = MESSAGES["host.get_memory_ledger"](self.ctx, host)
            assert isinstance(ledger, dict)
            assert ledger["unaccounted"] == ledger["other_domains"] == 0
            assert simulated(agent).xenstore.directory(record_path("xenopsd")) == []
        for vm in vms.values():
            assert vm.scheduled_to_be_resident_on == NULL_REF
            assert vm.current_operations == {}
            running = vm.power_state in (PowerState.RUNNING, PowerState.PAUSED)
            assert running == (vm.resident_on != NULL_REF)


def run_rig(scenario: Callable[[Rig], Awaitable[None]], *, hosts: int = 1) -> None:
    async def main() -> None:
        clock = YieldingClock()
        store = Store(schemas(), relations=RELATIONS, indexes=INDEXES, sums=SUMS)
        spec = PoolSpec(
            name="cancel",
            dmc=True,
            hosts=tuple(
                PoolHost(
                    name=f"h{i}",
                    memory=4 * GIB,
                    cpus=4,
                    dom0_memory=512 * MIB,
                    xen_memory=256 * MIB,
                )
                for i in range(1, hosts + 1)
            ),
        )
        runtime = await start_simulated_pool(store, spec, clock, draw=random.Random(1).random)
        try:
            await scenario(Rig(runtime, clock))
        finally:
            await runtime.stop()

    asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until `condition` holds (the clock only moves with them)."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def test_a_start_cancelled_after_its_build_ends_with_the_vm_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario(rig: Rig) -> None:
        host = rig.hosts[0]
        vm = rig.vm(GIB, GIB)
        memory = rig.agent(host).memory
        deleting, go_on = asyncio.Event(), asyncio.Event()
        delete = memory.delete_reservation

        async def delete_when_let(dbg: str, session: str, reservation: str) -> None:
            deleting.set()
            await go_on.wait()
            await delete(dbg, session, reservation)

        monkeypatch.setattr(memory, "delete_reservation", delete_when_let)
        start = asyncio.create_task(rig.call("VM.start_on", vm, host, False, False))
        await deleting.wait()  # the domain is built; the reservation is being dropped
        start.cancel()
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await start
        assert rig.ctx.vm(vm).power_state is PowerState.RUNNING
        rig.assert_agreeing()

    run_rig(scenario)


def test_a_start_cancelled_while_waiting_for_memory_leaves_nothing() -> None:
    async def scenario(rig: Rig) -> None:
        host = rig.hosts[0]
        big = rig.vm(512 * MIB, 3 * GIB)
        await rig.call("VM.start_on", big, host, False, False)
        rig.clock.advance(5)  # the guest's driver is up and it holds its whole range
        vm = rig.vm(GIB, GIB)
        start = asyncio.create_task(rig.call("VM.start_on", vm, host, False, False))
        agent = rig.agent(host)
        # squeezed is ballooning the big guest down for the new one
        await until(lambda: agent.stat(big).target_bytes < 3 * GIB)
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
        assert rig.ctx.vm(vm).power_state is PowerState.HALTED
        rig.assert_agreeing()

    run_rig(scenario)


def test_a_failure_after_the_build_destroys_the_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(rig: Rig) -> None:
        host = rig.hosts[0]
        vm = rig.vm(GIB, GIB)
        agent = rig.agent(host)
        stat = agent.stat

        def unreadable(ref: str) -> Any:
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(agent, "stat", unreadable)
        with pytest.raises(OSError, match="Too many open files"):
            await rig.call("VM.start_on", vm, host, False, False)
        assert rig.ctx.vm(vm).power_state is PowerState.HALTED
        rig.assert_agreeing()
        monkeypatch.setattr(agent, "stat", stat)
        await rig.call("VM.start_on", vm, host, False, False)  # nothing left in the way
        rig.assert_agreeing()

    run_rig(scenario)


def test_a_host_state_that_cannot_be_written_does_not_fail_a_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(rig: Rig) -> None:
        host = rig.hosts[0]
        vm = rig.vm(GIB, GIB)
        lab = rig.agent(host).lab
        assert lab is not None

        def full() -> None:
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(lab, "save", full)
        await rig.call("VM.start_on", vm, host, False, False)
        assert rig.ctx.vm(vm).power_state is PowerState.RUNNING
        rig.assert_agreeing()
        assert "could not keep the simulated host's state" in caplog.text

    run_rig(scenario)


def test_a_cancelled_migration_gives_the_guest_its_range_back() -> None:
    async def scenario(rig: Rig) -> None:
        source, target = rig.hosts
        vm = rig.vm(GIB, 2 * GIB, balloon="ideal:64MiB")
        await rig.call("VM.start_on", vm, source, False, False)
        rig.clock.advance(40)  # the guest holds its dynamic_max
        migrating = asyncio.create_task(rig.call("VM.pool_migrate", vm, target, {}))
        # pinned to dynamic_min and ballooning down, slowly
        await until(lambda: rig.range_in_xenstore(source, vm) == (GIB, GIB))
        migrating.cancel()
        with pytest.raises(asyncio.CancelledError):
            await migrating
        assert rig.ctx.vm(vm).resident_on == source
        assert rig.range_in_xenstore(source, vm) == (GIB, 2 * GIB)
        rig.assert_agreeing()

    run_rig(scenario, hosts=2)


def test_a_cancelled_range_change_is_undone_in_the_records_and_in_xenstore() -> None:
    async def scenario(rig: Rig) -> None:
        host = rig.hosts[0]
        vm = rig.vm(GIB, 2 * GIB, balloon="ideal:64MiB")
        await rig.call("VM.start_on", vm, host, False, False)
        rig.clock.advance(40)
        changing = asyncio.create_task(
            rig.call("VM.set_memory_dynamic_range", vm, 512 * MIB, 768 * MIB)
        )
        await until(lambda: rig.range_in_xenstore(host, vm) == (512 * MIB, 768 * MIB))
        changing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await changing
        limits = rig.ctx.vm(vm).constraints
        assert (limits.dynamic_min, limits.dynamic_max) == (GIB, 2 * GIB)
        assert rig.range_in_xenstore(host, vm) == (GIB, 2 * GIB)
        rig.assert_agreeing()

    run_rig(scenario)
