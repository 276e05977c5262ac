"""A race the storm found, made deterministic: a guest's raised dynamic_min is given
memory that squeezed had reserved for a domain being built.

The pool runs in process on a virtual clock whose sleeps yield to the event loop, so two
calls interleave exactly as they did against the real server:

1. VM.start_on(B): admission counts B at its dynamic_min (§4.3); squeezed reserves B's
   whole range [dynamic_min, dynamic_max] + overhead, ballooning A down to make room;
2. meanwhile VM.set_memory_dynamic_range(C) lowers C's range; its rebalance queues on
   squeezed's lock behind B's reservation, and takes it before B's transfer/build;
3. while that rebalance waits for C to shrink, VM.set_memory_dynamic_range(A) raises A's
   dynamic_min: the pool-level check passes (B counts at dynamic_min in
   compute_free_memory), the new range is in xenstore at once, and the running rebalance
   raises A's target to it: A grows into the memory reserved for B;
4. B's build finds Xen short of its reservation: INTERNAL_ERROR "cannot build domain 3"
   (the ledger's free part, free − reservations, was below zero meanwhile).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable

from tests.support import simulated
from tests.toolstack.harness import GIB, MIB, body
from xenmem.balloon.reservations import STATE_ROOT
from xenmem.cli.pool import start_simulated_pool
from xenmem.db import Store
from xenmem.errors import XenAPIError
from xenmem.toolstack import MESSAGES, Context
from xenmem.toolstack.pool import PoolHost, PoolSpec
from xenmem.xen import VirtualClock, Xenstore
from xenmem.xenapi.model import INDEXES, RELATIONS, SUMS, decode_record, schemas


class YieldingClock(VirtualClock):
    """Virtual time whose sleeps let other tasks run, as a real clock's do."""

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def new_vm(ctx: Context, name: str, dmin: int, dmax: int) -> str:
    record = decode_record(
        "VM",
        {
            "name_label": name,
            "HVM_boot_policy": "BIOS order",
            "memory_static_min": 256 * MIB,
            "memory_dynamic_min": dmin,
            "memory_dynamic_max": dmax,
            "memory_static_max": dmax,
            "VCPUs_max": 1,
            "VCPUs_at_startup": 1,
            "other_config": {"xenmem_boot_seconds": "0"},
        },
    )
    return str(MESSAGES["VM.create"](ctx, record))


async def outcome(call: Awaitable[object]) -> str:
    try:
        await call
    except XenAPIError as error:
        return str(error.description[0])
    return "ok"


def reservations(store: Xenstore) -> list[str]:
    return [r for s in store.directory(STATE_ROOT) for r in store.directory(f"{STATE_ROOT}/{s}")]


async def race() -> tuple[str, list[object], dict[str, int]]:
    clock = YieldingClock()
    store = Store(schemas(), relations=RELATIONS, indexes=INDEXES, sums=SUMS)
    spec = PoolSpec(
        name="race",
        dmc=True,
        hosts=(
            PoolHost(
                name="h1", memory=3 * GIB, cpus=4, dom0_memory=512 * MIB, xen_memory=256 * MIB
            ),
        ),
    )
    runtime = await start_simulated_pool(store, spec, clock, draw=random.Random(1).random)
    ctx = Context(store=store, runtime=runtime)
    host = next(iter(store.records("host")))
    agent = runtime.agent(host)
    a = new_vm(ctx, "a", 256 * MIB, 1536 * MIB)
    c = new_vm(ctx, "c", 256 * MIB, 512 * MIB)
    b = new_vm(ctx, "b", 512 * MIB, GIB)
    await body(ctx, "VM.start_on", a, host, False, False)
    await body(ctx, "VM.start_on", c, host, False, False)
    clock.advance(30)  # the drivers are up and the guests hold their whole ranges
    starting = asyncio.create_task(outcome(body(ctx, "VM.start_on", b, host, False, False)))
    await asyncio.sleep(0)  # B is admitted and squeezed is ballooning A down for it
    shrinking = asyncio.create_task(
        outcome(body(ctx, "VM.set_memory_dynamic_range", c, 256 * MIB, 256 * MIB))
    )
    while not reservations(simulated(agent).xenstore):
        await asyncio.sleep(0)  # squeezed has B's reservation; C's rebalance has the lock
    resizing = asyncio.create_task(
        outcome(body(ctx, "VM.set_memory_dynamic_range", a, 1280 * MIB, 1536 * MIB))
    )
    started, shrunk, resized = await asyncio.gather(starting, shrinking, resizing)
    assert (shrunk, resized) == ("ok", "ok")
    ledger = await body(ctx, "host.get_memory_ledger", host)
    assert isinstance(ledger, dict)
    await runtime.stop()
    return started, list(simulated(agent).faults), ledger


def test_a_raised_dynamic_min_never_takes_a_reservation() -> None:
    started, faults, ledger = asyncio.run(race())
    # B's start may be refused for memory, but B's reservation must stay B's.
    assert started in ("ok", "HOST_NOT_ENOUGH_FREE_MEMORY", "VMS_FAILED_TO_COOPERATE"), started
    assert faults == []
    assert ledger["free"] + ledger["reserve"] >= 0
