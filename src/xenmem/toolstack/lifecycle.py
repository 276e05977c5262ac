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

from xenmem.db import NULL_REF
from xenmem.errors import (
    HOST_NOT_ENOUGH_FREE_MEMORY,
    MEMORY_CONSTRAINT_VIOLATION_MAXPIN,
    VMS_FAILED_TO_COOPERATE,
    XenAPIError,
)
from xenmem.memory.domain_build import BuildKind
from xenmem.toolstack.admission import assert_can_boot_here, choose_host, validate_for_boot
from xenmem.toolstack.completion import run_to_completion
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.domains import Reserved
from xenmem.toolstack.guard import vm_operation
from xenmem.toolstack.internal import SUSPEND_IMAGE
from xenmem.toolstack.ledger import memory_ledger
from xenmem.toolstack.records import (
    NO_DOMAIN_METRICS,
    PowerState,
    VmOperation,
    VmView,
    update_memory_overhead,
)
from xenmem.xen import BootConfig

__all__ = ["LEDGER_KEY", "boot_config"]

OP = VmOperation
LEDGER_KEY = "memory_ledger"
"""task.other_config key holding the host's ledger (JSON) when an Async start is refused."""


def boot_config(vm: VmView) -> BootConfig:
    """What a real host boots the VM's domain from."""
    return BootConfig(
        uuid=vm.uuid,
        name=vm.name_label,
        vcpus=vm.vcpus_at_startup,
        kernel=vm.pv_kernel,
        ramdisk=vm.pv_ramdisk,
        cmdline=vm.pv_args,
    )


def _assert_startable(ctx: Context, vm: str, *, force: bool) -> None:
    """Checks before any host is chosen: the boot-time checks, the guest's lab settings,
    and (unless forced) pinning for nested virtualisation (§3.3)."""
    view = ctx.vm(vm)
    validate_for_boot(view)
    ctx.pool.check_guest(view.other_config)
    pinned = view.constraints.are_valid_and_pinned_at_static_max
    # CP-18860: the platform key itself, whatever VM_metrics says.
    if not force and view.platform_nested_virt and not pinned:
        raise MEMORY_CONSTRAINT_VIOLATION_MAXPIN("nested virt")


def _schedule(ctx: Context, vm: str, host: str | None) -> str:
    """Admission and the reservation marker, atomically: no await in here (§4.5)."""
    with ctx.store.transaction() as tx:
        scheduled = ctx.vm(vm).scheduled_to_be_resident_on
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
    other_config = ctx.record("task", ctx.task)["other_config"]
    assert isinstance(other_config, Mapping)
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
    """Build the domain on `host` (already scheduled there), then make it resident.

    Waiting for memory may be cancelled; once the memory is reserved, the build and its
    record run to completion (a cancelled start ends with the VM running, never with a
    domain the records do not know).
    """
    view = ctx.vm(vm)
    domains = ctx.pool.agent(host).domains
    try:
        reserved = await domains.reserve(view.memory, kind, exact_bytes=exact_bytes)
    except XenAPIError as error:
        _record_refusal(ctx, host, error)
        _unschedule(ctx, vm)
        raise
    except BaseException:
        _unschedule(ctx, vm)
        raise
    await run_to_completion(_build(ctx, view, host, kind, reserved, paused=paused))


async def _build(
    ctx: Context, view: VmView, host: str, kind: BuildKind, reserved: Reserved, *, paused: bool
) -> None:
    """Build the VM's domain in reserved memory and record it resident; if recording
    fails, the domain goes again (the records and Xen never disagree)."""
    vm = view.ref
    agent = ctx.pool.agent(host)
    try:
        domid = await agent.domains.build_reserved(
            vm,
            view.memory,
            boot_config(view),
            view.other_config,
            kind,
            reserved=reserved,
            paused=paused,
        )
    finally:
        _unschedule(ctx, vm)
    try:
        stat = agent.stat(vm)
        with ctx.store.transaction() as tx:
            tx.update(
                "VM",
                vm,
                {
                    "resident_on": host,
                    "power_state": (PowerState.PAUSED if paused else PowerState.RUNNING).value,
                    "domid": domid,
                    "memory_target": stat.target_bytes,
                },
            )
            metrics: dict[str, object] = {
                "memory_actual": stat.actual_bytes,
                "start_time": datetime.now(UTC),
            }
            if kind is not BuildKind.MIGRATION:
                # What xenopsd reports of the domain it built from the VM's platform keys;
                # a migrated domain keeps what it was built with (xapi_xenops, VM_metrics).
                metrics |= {
                    "nested_virt": view.platform_nested_virt,
                    "nomigrate": view.platform_nomigrate,
                }
            tx.update("VM_metrics", view.metrics, metrics)
    except BaseException:
        agent.domains.destroy(vm)
        raise


async def _start(ctx: Context, vm: str, host: str | None, paused: bool, force: bool) -> None:
    op = OP.START if host is None else OP.START_ON
    async with vm_operation(ctx, vm, op):
        # start and start_on recompute the overhead before taking the snapshot (§4.5).
        update_memory_overhead(ctx.store, vm)
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
    metrics = ctx.vm(vm).metrics
    with ctx.store.transaction() as tx:
        tx.update(
            "VM",
            vm,
            {"power_state": PowerState.HALTED.value, "resident_on": NULL_REF, "domid": -1},
        )
        tx.update("VM_metrics", metrics, NO_DOMAIN_METRICS)


async def _shut_down(ctx: Context, vm: str, op: VmOperation) -> None:
    async with vm_operation(ctx, vm, op):
        view = ctx.vm(vm)
        if view.power_state is PowerState.SUSPENDED:
            with ctx.store.transaction() as tx:
                if tx.get(SUSPEND_IMAGE, vm) is not None:
                    tx.delete(SUSPEND_IMAGE, vm)
        else:
            ctx.pool.agent(view.resident_on).domains.destroy(vm)
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
        view = ctx.vm(vm)
        image_bytes = ctx.pool.agent(view.resident_on).domains.suspend(vm)
        with ctx.store.transaction() as tx:
            tx.create(SUSPEND_IMAGE, {"memory_bytes": image_bytes}, ref=vm)
            tx.update(
                "VM",
                vm,
                {"power_state": PowerState.SUSPENDED.value, "resident_on": NULL_REF, "domid": -1},
            )
            tx.update("VM_metrics", view.metrics, NO_DOMAIN_METRICS)


def _suspend_image_bytes(ctx: Context, vm: str) -> int:
    image = ctx.record(SUSPEND_IMAGE, vm)
    image_bytes = image["memory_bytes"]
    assert isinstance(image_bytes, int)
    return image_bytes


async def _resume(ctx: Context, vm: str, host: str | None, paused: bool, force: bool) -> None:
    async with vm_operation(ctx, vm, OP.RESUME if host is None else OP.RESUME_ON):
        _assert_startable(ctx, vm, force=force)
        image_bytes = _suspend_image_bytes(ctx, vm)
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


async def _pause_state(ctx: Context, vm: str, op: VmOperation, state: PowerState) -> None:
    async with vm_operation(ctx, vm, op):
        domains = ctx.pool.agent(ctx.vm(vm).resident_on).domains
        if op is OP.PAUSE:
            domains.pause(vm)
        else:
            domains.unpause(vm)
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"power_state": state.value})


@implements("VM.pause")
async def pause(ctx: Context, vm: str) -> None:
    await _pause_state(ctx, vm, OP.PAUSE, PowerState.PAUSED)


@implements("VM.unpause")
async def unpause(ctx: Context, vm: str) -> None:
    await _pause_state(ctx, vm, OP.UNPAUSE, PowerState.RUNNING)


@implements("VM.pool_migrate")
async def pool_migrate(ctx: Context, vm: str, host: str, options: Mapping[str, str]) -> None:
    """Live migration within the pool: the VM counts on both hosts while in flight (§4.5)."""
    async with vm_operation(ctx, vm, OP.POOL_MIGRATE):
        view = ctx.vm(vm)
        ctx.host(host)
        source = view.resident_on
        if source == host:
            return  # already there: nothing to move
        _schedule(ctx, vm, host)
        sender = ctx.pool.agent(source)
        limits = view.constraints
        try:
            await sender.balloon_for_migration(vm, limits.dynamic_min, limits.dynamic_max)
            limit_bytes = sender.stat(vm).limit_bytes
        except BaseException:
            # Failed or cancelled: the VM stays where it was, with its own range back
            # (squeezed's next balance moves it there).
            _unschedule(ctx, vm)
            sender.domains.restore_range(vm, limits.dynamic_min, limits.dynamic_max)
            raise
        try:
            await _boot(ctx, vm, host, BuildKind.MIGRATION, paused=False, exact_bytes=limit_bytes)
        except BaseException:
            sender.domains.restore_range(vm, limits.dynamic_min, limits.dynamic_max)
            raise
        sender.domains.destroy(vm)
        # The receiver built the domain with the VM's own range; rebalance to it now.
        receiver = ctx.pool.agent(host).domains
        await receiver.set_dynamic_range(vm, limits.dynamic_min, limits.dynamic_max)


@implements("VM.assert_can_boot_here")
def vm_assert_can_boot_here(ctx: Context, vm: str, host: str) -> None:
    assert_can_boot_here(ctx, vm, host)
