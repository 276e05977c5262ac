"""The memory ledger is one look at the host, even while guests balloon.

Found by the race storm's watcher: `host.get_memory_ledger` once put Xen's share 97 MiB
below what Xen and the crash kernel take, so some memory was counted twice. The simulated
host moves its guests lazily, on every port call, by whole ticks of 0.1 s of its clock;
`read_host` lists the domains and then reads physinfo in a second call, so when the clock
crosses a tick in between (at `--time-scale 100` a tick is one real millisecond), a guest
ballooning down at 1 GiB/s is counted at its old size by the domain list and again, in
part, as free memory by physinfo. The ledger's `xen` part is the remainder, so it absorbs
the difference. A clock that moves one tick each time it is read makes this deterministic.
"""

from __future__ import annotations

import asyncio
import random

from tests.support import simulated
from tests.toolstack.harness import GIB, MIB, body
from xenmem.cli.pool import start_simulated_pool
from xenmem.db import Store
from xenmem.memory.units import bytes_of_kib
from xenmem.toolstack import MESSAGES, Context
from xenmem.toolstack.pool import PoolHost, PoolSpec
from xenmem.xen import VirtualClock, domain_path
from xenmem.xenapi.model import INDEXES, RELATIONS, SUMS, decode_record, schemas


class MovingClock(VirtualClock):
    """Virtual time that, once `moving`, advances one simulator tick at every reading."""

    moving = False

    def now(self) -> float:
        if self.moving:
            self.advance(0.1)
        return super().now()


async def ledger_while_ballooning() -> tuple[dict[str, int], int]:
    clock = MovingClock()
    store = Store(schemas(), relations=RELATIONS, indexes=INDEXES, sums=SUMS)
    spec = PoolSpec(
        name="ledger",
        dmc=True,
        hosts=(PoolHost(name="h1", memory=4 * GIB, cpus=4, dom0_memory=GIB, xen_memory=256 * MIB),),
    )
    runtime = await start_simulated_pool(store, spec, clock, draw=random.Random(1).random)
    ctx = Context(store=store, runtime=runtime)
    host = next(iter(store.records("host")))
    agent = runtime.agent(host)
    vm = str(
        MESSAGES["VM.create"](
            ctx,
            decode_record(
                "VM",
                {
                    "name_label": "balloon",
                    "HVM_boot_policy": "BIOS order",
                    "memory_static_min": 256 * MIB,
                    "memory_dynamic_min": 256 * MIB,
                    "memory_dynamic_max": 2 * GIB,
                    "memory_static_max": 2 * GIB,
                    "VCPUs_max": 1,
                    "VCPUs_at_startup": 1,
                    "other_config": {"xenmem_boot_seconds": "0"},
                },
            ),
        )
    )
    await body(ctx, "VM.start_on", vm, host, False, False)
    clock.advance(30)
    # As squeezed would: ask the guest (at 2 GiB) to go down to 256 MiB, then look while
    # it balloons down at 1 GiB/s.
    domid = agent.domains.domid_of(vm)
    assert domid is not None
    simulated(agent).xenstore.write(domain_path(domid, "memory/target"), str(256 * 1024))
    clock.moving = True
    ledger = await body(ctx, "host.get_memory_ledger", host)
    clock.moving = False
    assert isinstance(ledger, dict)
    await runtime.stop()
    return ledger, bytes_of_kib(simulated(agent).xen_kib)


def test_the_ledger_counts_a_ballooning_guest_once() -> None:
    # Squeezed's snapshot takes physinfo and the domains in one look (Hypervisor.sample).
    ledger, xen_bytes = asyncio.run(ledger_while_ballooning())
    assert ledger["unaccounted"] == 0
    assert ledger["xen"] == xen_bytes
