"""VM lifecycle with xapi's memory rules (xapi-memory.md §3.3, §4.3–4.7; squeezer.md §9).

A start, resume or incoming migration first marks VM.scheduled_to_be_resident_on in the
same transaction as the admission check (the reservation marker, §4.5), then has the
host's agent build the domain through squeezed, then switches the marker to resident_on
in one step. Whatever happens, the marker is cleared at the end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from xenmem.db import NULL_REF, Record
from xenmem.errors import (
    HOST_NOT_ENOUGH_FREE_MEMORY,
    MEMORY_CONSTRAINT_VIOLATION_MAXPIN,
    VMS_FAILED_TO_COOPERATE,
    XenAPIError,
)
from xenmem.memory import compute_memory_overhead
from xenmem.memory.domain_build import BuildKind
from xenmem.toolstack.admission import assert_can_boot_here, choose_host, validate_for_boot
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.guard import nested_virt, vm_operation
from xenmem.toolstack.guests import guest_of
from xenmem.toolstack.internal import SUSPEND_IMAGE
from xenmem.toolstack.ledger import memory_ledger
from xenmem.toolstack.operations import VmOperation
from xenmem.toolstack.vm import constraints_of, memory_of

__all__ = ["LEDGER_KEY", "update_memory_overhead"]

OP = VmOperation
LEDGER_KEY = "memory_ledger"
"""task.other_config key holding the host's ledger (JSON) when an Async start is refused."""


def update_memory_overhead(ctx: Context, vm: str) -> None:
    """Recompute and store VM.memory_overhead from the VM's current limits (§2.6)."""
    record = ctx.record("VM", vm)
    with ctx.store.transaction() as tx:
        tx.update("VM", vm, {"memory_overhead": compute_memory_overhead(memory_of(record))})


def _other_config(record: Record) -> Mapping[str, str]:
    other_config = record["other_config"]
    assert isinstance(other_config, Mapping)
    return {str(k): str(v) for k, v in other_config.items()}


def _assert_startable(ctx: Context, vm: str, *, force: bool) -> None:
    """Checks before any host is chosen: the boot-time checks, the guest's balloon
    settings, and (unless forced) pinning for nested virtualisation (§3.3)."""
    record = ctx.record("VM", vm)
    validate_for_boot(record)
    guest_of(_other_config(record))
    pinned = constraints_of(record).are_valid_and_pinned_at_static_max
    if not force and nested_virt(record) and not pinned:
        raise MEMORY_CONSTRAINT_VIOLATION_MAXPIN("nested virt")


def _schedule(ctx: Context, vm: str, host: str | None) -> str:
    """Admission and the reservation marker, atomically: no await in here (§4.5)."""
    with ctx.store.transaction() as tx:
        record = ctx.record("VM", vm)
        scheduled = str(record["scheduled_to_be_resident_on"])
        if host is None:
            host = scheduled if scheduled != NULL_REF else choose_host(ctx, vm)
        else:
            assert_can_boot_here(ctx, vm, host)
        tx.update("VM", vm, {"scheduled_to_be_resident_on": host})
    return host


def _unschedule(ctx: Context, vm: str) -> None:
    with ctx.store.transaction() as tx:
        if tx.get("VM", vm) is not None:
            tx.update("VM", vm, {"scheduled_to_be_resident_on": NULL_REF})


def _record_refusal(ctx: Context, host: str, error: XenAPIError) -> None:
    """An Async start refused for memory keeps the host's ledger in its task, so the
    refusal can be explained from one record."""
    refused = HOST_NOT_ENOUGH_FREE_MEMORY.matches(error) or VMS_FAILED_TO_COOPERATE.matches(error)
    if not refused or ctx.task == NULL_REF or ctx.store.get("task", ctx.task) is None:
        return
    task = ctx.record("task", ctx.task)
    other_config = _other_config(task)
    ledger = json.dumps(memory_ledger(ctx, host), sort_keys=True)
    with ctx.store.transaction() as tx:
        tx.update("task", ctx.task, {"other_config": {**other_config, LEDGER_KEY: ledger}})


async def _boot(
    ctx: Context,
    vm: str,
    host: str,
    kind: BuildKind,
    *,
    paused: bool,
    exact_bytes: int | None = None,
) -> None:
    """Build the domain on `host` (already scheduled there), then make it resident."""
    record = ctx.record("VM", vm)
    agent = ctx.pool.agent(host)
    try:
        domid = await agent.build(
            vm,
            memory_of(record),
            guest_of(_other_config(record)),
            kind,
            exact_bytes=exact_bytes,
            paused=paused,
        )
    except XenAPIError as error:
        _record_refusal(ctx, host, error)
        raise
    finally:
        _unschedule(ctx, vm)
    stat = agent.stat(vm)
    with ctx.store.transaction() as tx:
        tx.update(
            "VM",
            vm,
            {
                "resident_on": host,
                "scheduled_to_be_resident_on": NULL_REF,
                "power_state": "Paused" if paused else "Running",
                "domid": domid,
                "memory_target": stat.target_bytes,
            },
        )
        tx.update(
            "VM_metrics",
            str(record["metrics"]),
            {"memory_actual": stat.actual_bytes, "start_time": datetime.now(UTC)},
        )


async def _start(ctx: Context, vm: str, host: str | None, paused: bool, force: bool) -> None:
    op = OP.START if host is None else OP.START_ON
    async with vm_operation(ctx, vm, op):
        # start and start_on recompute the overhead before taking the snapshot (§4.5).
        update_memory_overhead(ctx, vm)
        _assert_startable(ctx, vm, force=force)
        chosen = _schedule(ctx, vm, host)
        await _boot(ctx, vm, chosen, BuildKind.START, paused=paused)


@implements("VM.start")
async def start(ctx: Context, vm: str, start_paused: bool, force: bool) -> None:
    await _start(ctx, vm, None, start_paused, force)


@implements("VM.start_on")
async def start_on(ctx: Context, vm: str, host: str, start_paused: bool, force: bool) -> None:
    await _start(ctx, vm, host, start_paused, force)


def _halted(ctx: Context, vm: str) -> None:
    record = ctx.record("VM", vm)
    with ctx.store.transaction() as tx:
        tx.update("VM", vm, {"power_state": "Halted", "resident_on": NULL_REF, "domid": -1})
        tx.update("VM_metrics", str(record["metrics"]), {"memory_actual": 0})


async def _shut_down(ctx: Context, vm: str, op: VmOperation) -> None:
    async with vm_operation(ctx, vm, op):
        record = ctx.record("VM", vm)
        if record["power_state"] == "Suspended":
            with ctx.store.transaction() as tx:
                if tx.get(SUSPEND_IMAGE, vm) is not None:
                    tx.delete(SUSPEND_IMAGE, vm)
        else:
            ctx.pool.agent(str(record["resident_on"])).destroy(vm)
        _halted(ctx, vm)


@implements("VM.clean_shutdown")
async def clean_shutdown(ctx: Context, vm: str) -> None:
    await _shut_down(ctx, vm, OP.CLEAN_SHUTDOWN)


@implements("VM.hard_shutdown")
async def hard_shutdown(ctx: Context, vm: str) -> None:
    await _shut_down(ctx, vm, OP.HARD_SHUTDOWN)


@implements("VM.suspend")
async def suspend(ctx: Context, vm: str) -> None:
    async with vm_operation(ctx, vm, OP.SUSPEND):
        record = ctx.record("VM", vm)
        image_bytes = ctx.pool.agent(str(record["resident_on"])).suspend(vm)
        with ctx.store.transaction() as tx:
            tx.create(SUSPEND_IMAGE, {"memory_bytes": image_bytes}, ref=vm)
            tx.update("VM", vm, {"power_state": "Suspended", "resident_on": NULL_REF, "domid": -1})
            tx.update("VM_metrics", str(record["metrics"]), {"memory_actual": 0})


async def _resume(ctx: Context, vm: str, host: str | None, paused: bool, force: bool) -> None:
    async with vm_operation(ctx, vm, OP.RESUME if host is None else OP.RESUME_ON):
        _assert_startable(ctx, vm, force=force)
        image = ctx.store.get(SUSPEND_IMAGE, vm)
        assert image is not None, "a suspended VM has a suspend image"
        image_bytes = image["memory_bytes"]
        assert isinstance(image_bytes, int)
        chosen = _schedule(ctx, vm, host)
        await _boot(ctx, vm, chosen, BuildKind.RESUME, paused=paused, exact_bytes=image_bytes)
        with ctx.store.transaction() as tx:
            tx.delete(SUSPEND_IMAGE, vm)


@implements("VM.resume")
async def resume(ctx: Context, vm: str, start_paused: bool, force: bool) -> None:
    await _resume(ctx, vm, None, start_paused, force)


@implements("VM.resume_on")
async def resume_on(ctx: Context, vm: str, host: str, start_paused: bool, force: bool) -> None:
    await _resume(ctx, vm, host, start_paused, force)


async def _pause_state(ctx: Context, vm: str, op: VmOperation, state: str) -> None:
    async with vm_operation(ctx, vm, op):
        agent = ctx.pool.agent(str(ctx.record("VM", vm)["resident_on"]))
        if op is OP.PAUSE:
            agent.pause(vm)
        else:
            agent.unpause(vm)
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"power_state": state})


@implements("VM.pause")
async def pause(ctx: Context, vm: str) -> None:
    await _pause_state(ctx, vm, OP.PAUSE, "Paused")


@implements("VM.unpause")
async def unpause(ctx: Context, vm: str) -> None:
    await _pause_state(ctx, vm, OP.UNPAUSE, "Running")


@implements("VM.pool_migrate")
async def pool_migrate(ctx: Context, vm: str, host: str, options: Mapping[str, str]) -> None:
    """Live migration within the pool: the VM counts on both hosts while in flight (§4.5)."""
    async with vm_operation(ctx, vm, OP.POOL_MIGRATE):
        record = ctx.record("VM", vm)
        ctx.record("host", host)
        source = str(record["resident_on"])
        if source == host:
            return  # already there: nothing to move
        _schedule(ctx, vm, host)
        sender = ctx.pool.agent(source)
        limits = constraints_of(record)
        try:
            await sender.balloon_for_migration(vm, limits.dynamic_min, limits.dynamic_max)
            limit_bytes = sender.stat(vm).limit_bytes
        except BaseException:
            _unschedule(ctx, vm)
            raise
        try:
            await _boot(ctx, vm, host, BuildKind.MIGRATION, paused=False, exact_bytes=limit_bytes)
        except BaseException:
            # The VM stays where it was, with its own range back.
            await sender.set_dynamic_range(vm, limits.dynamic_min, limits.dynamic_max)
            raise
        sender.destroy(vm)
        # The receiver built the domain with the VM's own range; rebalance to it now.
        await ctx.pool.agent(host).set_dynamic_range(vm, limits.dynamic_min, limits.dynamic_max)


@implements("VM.assert_can_boot_here")
def vm_assert_can_boot_here(ctx: Context, vm: str, host: str) -> None:
    assert_can_boot_here(ctx, vm, host)
