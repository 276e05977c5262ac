"""Toolstack message bodies on an in-memory store (xapi-memory.md §2.3, §4.2, §5, §8)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from xenmem.cli.pool import DEFAULT_POOL, start_simulated_pool
from xenmem.db import Store
from xenmem.errors import XenAPIError
from xenmem.toolstack import MESSAGES, Context
from xenmem.toolstack.pool import PoolHost, PoolSpec
from xenmem.xen import VirtualClock
from xenmem.xenapi.model import INDEXES, RELATIONS, SUMS, decode_record, schemas

MIB = 2**20
GIB = 2**30


def _store() -> Store:
    return Store(schemas(), relations=RELATIONS, indexes=INDEXES, sums=SUMS)


def _vm(ctx: Context, **fields: object) -> str:
    record = decode_record(
        "VM",
        {
            "memory_static_min": GIB,
            "memory_static_max": 4 * GIB,
            "memory_dynamic_min": GIB,
            "memory_dynamic_max": 4 * GIB,
            "VCPUs_max": 2,
            "VCPUs_at_startup": 2,
            **fields,
        },
    )
    ref = MESSAGES["VM.create"](ctx, record)
    assert isinstance(ref, str)
    return ref


def test_vm_create_derives_domain_type_and_overhead() -> None:
    ctx = Context(store=_store())
    hvm = _vm(ctx, HVM_boot_policy="BIOS order")
    pv = _vm(ctx)
    pvh = _vm(ctx, domain_type="pvh")
    assert ctx.record("VM", hvm)["domain_type"] == "hvm"
    assert ctx.record("VM", pv)["domain_type"] == "pv"
    assert ctx.record("VM", pvh)["domain_type"] == "pvh"
    for vm in (hvm, pv, pvh):
        record = ctx.record("VM", vm)
        assert record["memory_overhead"] == MESSAGES["VM.compute_memory_overhead"](ctx, vm)
        assert ctx.record("VM_metrics", str(record["metrics"]))["memory_actual"] == 0
    assert ctx.record("VM", hvm)["memory_overhead"] == 38797312  # 4 GiB, 2 vCPUs (README)


def test_vm_create_does_not_validate_memory() -> None:
    ctx = Context(store=_store())
    vm = _vm(ctx, memory_static_min=8 * GIB, memory_dynamic_min=0)  # order violated: fine
    assert ctx.record("VM", vm)["memory_static_min"] == 8 * GIB


def test_vm_destroy_removes_its_metrics() -> None:
    store = _store()
    runtime = asyncio.run(start_simulated_pool(store, DEFAULT_POOL, VirtualClock()))
    ctx = Context(store=store, runtime=runtime)
    vm = _vm(ctx)
    metrics = str(ctx.record("VM", vm)["metrics"])
    destroyed = MESSAGES["VM.destroy"](ctx, vm)
    assert inspect.iscoroutine(destroyed)
    asyncio.run(destroyed)
    assert ctx.store.get("VM", vm) is None
    assert ctx.store.get("VM_metrics", metrics) is None
    again = MESSAGES["VM.destroy"](ctx, vm)
    assert inspect.iscoroutine(again)
    with pytest.raises(XenAPIError) as info:
        asyncio.run(again)
    assert info.value.description == ["HANDLE_INVALID", "VM", vm]


def test_compute_free_memory_spec_example() -> None:
    """§4.2: 16 GiB total, 1 GiB overhead, resident HVM (dmin 2 GiB, overhead 37 MiB) and
    scheduled PV (dmin 512 MiB, overhead 11 MiB) leave 13 371 441 152 bytes."""
    store = _store()
    ctx = Context(store=store)
    with store.transaction() as tx:
        metrics = tx.create("host_metrics", {"memory_total": 16 * GIB})
        host = tx.create("host", {"metrics": metrics, "memory_overhead": GIB})
    resident, scheduled = _vm(ctx), _vm(ctx)
    with store.transaction() as tx:
        tx.update(
            "VM",
            resident,
            {"resident_on": host, "memory_dynamic_min": 2 * GIB, "memory_overhead": 37 * MIB},
        )
        tx.update(
            "VM",
            scheduled,
            {
                "scheduled_to_be_resident_on": host,
                "memory_dynamic_min": 512 * MIB,
                "memory_overhead": 11 * MIB,
            },
        )
    assert MESSAGES["host.compute_free_memory"](ctx, host) == 13_371_441_152
    # A VM both resident and scheduled here is counted twice (local migration, §4.2).
    with store.transaction() as tx:
        tx.update("VM", resident, {"scheduled_to_be_resident_on": host})
    assert MESSAGES["host.compute_free_memory"](ctx, host) == 13_371_441_152 - (2048 + 37) * MIB
    assert MESSAGES["host.compute_memory_overhead"](ctx, host) == GIB
    with pytest.raises(XenAPIError) as info:
        MESSAGES["host.compute_free_memory"](ctx, "OpaqueRef:nope")
    assert info.value.description == ["HANDLE_INVALID", "host", "OpaqueRef:nope"]


def test_free_memory_never_negative() -> None:
    store = _store()
    ctx = Context(store=store)
    with store.transaction() as tx:
        metrics = tx.create("host_metrics", {"memory_total": GIB})
        host = tx.create("host", {"metrics": metrics, "memory_overhead": GIB // 2})
    vm = _vm(ctx)
    with store.transaction() as tx:
        tx.update("VM", vm, {"resident_on": host})
    assert MESSAGES["host.compute_free_memory"](ctx, host) == 0


def test_boot_records_the_simulated_host() -> None:
    store = _store()
    spec = PoolSpec(
        name="p",
        dmc=True,
        hosts=(
            PoolHost(name="h", memory=32 * GIB, cpus=8, dom0_memory=2 * GIB, xen_memory=512 * MIB),
        ),
    )
    runtime = asyncio.run(start_simulated_pool(store, spec, VirtualClock()))
    master = runtime.coordinator
    host = store.get("host", master)
    assert host is not None
    # §5 example: total 32 GiB, boot_free 32256 MiB -> 584 MiB.
    assert host["memory_overhead"] == 612_368_384
    dom0 = store.get("VM", str(host["control_domain"]))
    assert dom0 is not None
    assert {
        dom0[f"memory_{k}"]
        for k in ("static_min", "dynamic_min", "target", "dynamic_max", "static_max")
    } == {2 * GIB}
    assert host["resident_VMs"] == [host["control_domain"]]
    ctx = Context(store=store, runtime=runtime)
    free = MESSAGES["host.compute_free_memory"](ctx, master)
    overhead = dom0["memory_overhead"]
    assert isinstance(overhead, int)
    assert free == 32 * GIB - 612_368_384 - 2 * GIB - overhead
    # Later starts keep the stored pool, and boot the same hardware again.
    again = asyncio.run(start_simulated_pool(store, DEFAULT_POOL, VirtualClock()))
    assert again.coordinator == master
    assert store.count("host") == 1
    assert store.get("host", master) == host


def test_vm_create_forces_what_xapi_forces() -> None:
    """xapi_vm `create`: blocked_operations is ignored, the snapshot fields are not the
    caller's (DynamicRO), a Running or Paused VM is created Halted, other_config gets a
    mac_seed when it has none."""
    ctx = Context(store=_store())
    vm = _vm(
        ctx,
        blocked_operations={"start": "no"},
        is_a_snapshot=True,
        snapshot_of="OpaqueRef:other",
        transportable_snapshot_id="t",
        power_state="Running",
        other_config={"colour": "green"},
    )
    record = ctx.record("VM", vm)
    assert record["blocked_operations"] == {}
    assert record["is_a_snapshot"] is False
    assert record["snapshot_of"] == "OpaqueRef:NULL"
    assert record["transportable_snapshot_id"] == ""
    assert record["power_state"] == "Halted"
    other_config = record["other_config"]
    assert isinstance(other_config, dict)
    assert other_config["colour"] == "green"
    assert len(other_config["mac_seed"]) == 36
    kept = _vm(ctx, other_config={"mac_seed": "mine"})
    assert ctx.record("VM", kept)["other_config"] == {"mac_seed": "mine"}


def test_vm_create_refuses_a_suspended_vm_without_a_suspend_image() -> None:
    ctx = Context(store=_store())
    with pytest.raises(XenAPIError) as info:
        _vm(ctx, power_state="Suspended")
    code, new_vm, expected, actual = info.value.description
    assert (code, expected, actual) == ("VM_BAD_POWER_STATE", "halted", "suspended")
    assert new_vm.startswith("OpaqueRef:")
    assert ctx.store.count("VM") == 0
