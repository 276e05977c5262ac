"""The VM memory messages: setters, live ballooning, maximise (xapi-memory.md §2.5, §3.4, §6).

Each setter runs under its xapi operation (power-state gating, one operation at a time),
validates with the pure rules of `xenmem.memory.constraints` in the VM's context (DMC,
control domain, nested virt), writes, and recomputes the stored overhead where xapi does.
"""

from __future__ import annotations

from dataclasses import replace

from xenmem.errors import (
    HOST_NOT_ENOUGH_FREE_MEMORY,
    MEMORY_CONSTRAINT_VIOLATION_ORDER,
    OPERATION_NOT_ALLOWED,
    VM_MEMORY_TARGET_WAIT_TIMEOUT,
)
from xenmem.memory import (
    Constraints,
    ValidationContext,
    assert_fits_int64,
    maximise_memory,
    validate_new_vcpus_at_startup,
    validate_new_vcpus_max,
    validate_shadow_multiplier,
    with_dynamic_range,
    with_limits,
    with_memory,
    with_static_range,
)
from xenmem.memory.domain_build import shadow_allocation_mib
from xenmem.memory.units import BYTES_PER_MIB
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.guard import vm_operation
from xenmem.toolstack.host import host_free_bytes
from xenmem.toolstack.records import (
    PowerState,
    VmOperation,
    VmView,
    is_domain_zero,
    nested_virt,
    read_vm,
    update_memory_overhead,
)

__all__ = ["WAIT_TIMEOUT_S", "WAIT_TOLERANCE_BYTES"]

OP = VmOperation
# wait_memory_target_live: done within 1 MiB, polling every second, for up to 256 s (§6).
WAIT_TOLERANCE_BYTES = BYTES_PER_MIB
WAIT_POLL_S = 1.0
WAIT_TIMEOUT_S = 256


def _context(ctx: Context, vm: VmView) -> ValidationContext:
    return ValidationContext(
        dmc_enabled=ctx.pool.dmc_enabled,
        is_control_domain=vm.is_control_domain,
        nested_virt=nested_virt(ctx.store, vm),
    )


def _limits_fields(constraints: Constraints) -> dict[str, object]:
    return {
        "memory_static_min": constraints.static_min,
        "memory_dynamic_min": constraints.dynamic_min,
        "memory_target": constraints.target,
        "memory_dynamic_max": constraints.dynamic_max,
        "memory_static_max": constraints.static_max,
    }


def _write_limits(ctx: Context, vm: str, constraints: Constraints) -> None:
    with ctx.store.transaction() as tx:
        tx.update("VM", vm, _limits_fields(constraints))


def _write_static_change(ctx: Context, vm: VmView, constraints: Constraints) -> None:
    """Write limits with a new static_max, unless the overhead would leave int64 (xenmem
    refuses what xapi's Int64 arithmetic would wrap): INVALID_VALUE ["memory_static_max",
    value]."""
    limits = {
        name: getattr(constraints, name)
        for name in ("static_min", "dynamic_min", "target", "dynamic_max", "static_max")
    }
    assert_fits_int64(replace(vm.memory, **limits), "memory_static_max", constraints.static_max)
    _write_limits(ctx, vm.ref, constraints)
    _static_change_done(ctx, vm.ref)


def _static_change_done(ctx: Context, vm: str) -> None:
    """After a static change: the overhead follows, and a running control domain needs a
    reboot to take it (xapi-memory.md §3.4)."""
    update_memory_overhead(ctx.store, vm)
    view = ctx.vm(vm)
    if view.is_control_domain and view.power_state is PowerState.RUNNING:
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"requires_reboot": True})


def _reserve_for_dynamic_change(ctx: Context, vm: VmView, new_min: int) -> None:
    """The pool-level check before a running VM's dynamic_min grows (message_forwarding
    `reserve_memory_for_dynamic_change`): in KiB, and before the range is validated."""
    available = host_free_bytes(ctx, vm.resident_on)
    old_min = vm.constraints.dynamic_min
    if available + (old_min - new_min) < 0:
        raise HOST_NOT_ENOUGH_FREE_MEMORY((new_min - old_min) // 1024, available // 1024)


def _ballooned(vm: VmView) -> bool:
    """Whether squeezed balloons the VM now: it runs and is not a control domain (whose
    memory is pinned and which is no guest of its host's squeezed)."""
    return vm.power_state is PowerState.RUNNING and not vm.is_control_domain


@implements("VM.set_memory_dynamic_range")
async def set_memory_dynamic_range(ctx: Context, vm: str, minimum: int, maximum: int) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_DYNAMIC_RANGE):
        view = ctx.vm(vm)
        if view.power_state is PowerState.RUNNING:
            _reserve_for_dynamic_change(ctx, view, minimum)
        old = view.constraints
        updated = with_dynamic_range(old, _context(ctx, view), minimum, maximum)
        _write_limits(ctx, vm, updated)
        if _ballooned(view):
            domains = ctx.pool.agent(view.resident_on).domains
            try:
                await domains.set_dynamic_range(vm, minimum, maximum)
            except BaseException:
                # Failed or cancelled: the records and the guest's range go back together.
                _write_limits(ctx, vm, old)
                domains.restore_range(vm, old.dynamic_min, old.dynamic_max)
                raise


@implements("VM.set_memory_dynamic_min")
async def set_memory_dynamic_min(ctx: Context, vm: str, value: int) -> None:
    maximum = ctx.vm(vm).constraints.dynamic_max
    await set_memory_dynamic_range(ctx, vm, value, maximum)


@implements("VM.set_memory_dynamic_max")
async def set_memory_dynamic_max(ctx: Context, vm: str, value: int) -> None:
    minimum = ctx.vm(vm).constraints.dynamic_min
    await set_memory_dynamic_range(ctx, vm, minimum, value)


@implements("VM.set_memory_static_range")
async def set_memory_static_range(ctx: Context, vm: str, minimum: int, maximum: int) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_STATIC_RANGE):
        view = ctx.vm(vm)
        updated = with_static_range(view.constraints, _context(ctx, view), minimum, maximum)
        _write_static_change(ctx, view, updated)


@implements("VM.set_memory_static_min")
async def set_memory_static_min(ctx: Context, vm: str, value: int) -> None:
    maximum = ctx.vm(vm).constraints.static_max
    await set_memory_static_range(ctx, vm, value, maximum)


@implements("VM.set_memory_static_max")
async def set_memory_static_max(ctx: Context, vm: str, value: int) -> None:
    minimum = ctx.vm(vm).constraints.static_min
    await set_memory_static_range(ctx, vm, minimum, value)


@implements("VM.set_memory_limits")
async def set_memory_limits(  # noqa: PLR0917 (the wire's positional parameters)
    ctx: Context, vm: str, static_min: int, static_max: int, dynamic_min: int, dynamic_max: int
) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_MEMORY_LIMITS):
        view = ctx.vm(vm)
        updated = with_limits(
            _context(ctx, view),
            static_min=static_min,
            static_max=static_max,
            dynamic_min=dynamic_min,
            dynamic_max=dynamic_max,
        )
        _write_static_change(ctx, view, updated)


@implements("VM.set_memory")
async def set_memory(ctx: Context, vm: str, value: int) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_MEMORY_LIMITS):
        view = ctx.vm(vm)
        _write_static_change(ctx, view, with_memory(view.constraints, _context(ctx, view), value))


@implements("VM.set_HVM_shadow_multiplier")
async def set_hvm_shadow_multiplier(ctx: Context, vm: str, value: float) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_SHADOW_MEMORY):
        validate_shadow_multiplier(value, "multiplier")
        assert_fits_int64(replace(ctx.vm(vm).memory, shadow_multiplier=value), "multiplier", value)
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"HVM_shadow_multiplier": value})
        update_memory_overhead(ctx.store, vm)


@implements("VM.set_shadow_multiplier_live")
async def set_shadow_multiplier_live(ctx: Context, vm: str, multiplier: float) -> None:
    """Grow or shrink a running HVM domain's shadow allocation; xenopsd does nothing for
    other types ("Unimplemented" is ignored, §3.4). Growing needs free Xen memory.

    HVM_shadow_multiplier and memory_overhead follow, as in xapi; xapi stores the
    multiplier xenopsd reads back from the domain's shadow allocation, xenmem the one
    asked for."""
    async with vm_operation(ctx, vm, OP.CHANGING_SHADOW_MEMORY_LIVE):
        validate_shadow_multiplier(multiplier, "multiplier")
        view = ctx.vm(vm)
        wanted = replace(view.memory, shadow_multiplier=multiplier)
        assert_fits_int64(wanted, "multiplier", multiplier)
        domains = ctx.pool.agent(view.resident_on).domains
        needed = domains.resize_shadow(vm, shadow_allocation_mib(wanted))
        if needed is not None:
            raise HOST_NOT_ENOUGH_FREE_MEMORY(needed, host_free_bytes(ctx, view.resident_on))
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"HVM_shadow_multiplier": multiplier})
        update_memory_overhead(ctx.store, vm)


@implements("VM.set_VCPUs_max")
async def set_vcpus_max(ctx: Context, vm: str, value: int) -> None:
    """xapi_vm `set_VCPUs_max`: a halted VM, or a running control domain other than dom0
    (which then needs a reboot); the overhead follows."""
    async with vm_operation(ctx, vm, OP.CHANGING_VCPUS):
        view = ctx.vm(vm)
        validate_new_vcpus_max(value, view.vcpus_at_startup)
        assert_fits_int64(replace(view.memory, vcpus_max=value), "VCPUs_max", value)
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"VCPUs_max": value})
        _static_change_done(ctx, vm)


@implements("VM.set_VCPUs_at_startup")
def set_vcpus_at_startup(ctx: Context, vm: str, value: int) -> None:
    """xapi_vm `set_VCPUs_at_startup`: in any power state and beside any operation (xapi
    runs it without with_vm_operation); never on dom0; the overhead is recomputed."""
    with ctx.store.transaction() as tx:
        view = read_vm(tx, vm)
        if is_domain_zero(tx, view):
            raise OPERATION_NOT_ALLOWED("set_VCPUs_at_startup is not allowed on dom0")
        validate_new_vcpus_at_startup(value, view.memory.vcpus_max)
        tx.update("VM", vm, {"VCPUs_at_startup": value})
    update_memory_overhead(ctx.store, vm)


@implements("VM.set_memory_target_live")
async def set_memory_target_live(ctx: Context, vm: str, target: int) -> None:
    """Hold a running guest's balloon target at `target` until its range changes or it
    stops. (xapi accepts and ignores this; here it really sets the target.) A control
    domain is never ballooned: for it the call does nothing, as in xapi."""
    async with vm_operation(ctx, vm, OP.CHANGING_MEMORY_LIVE):
        view = ctx.vm(vm)
        if not _ballooned(view):
            return
        limits = view.constraints
        if not limits.dynamic_min <= target <= limits.dynamic_max:
            raise MEMORY_CONSTRAINT_VIOLATION_ORDER()
        # Holding the target raises the guest's floor to it: the same check as raising
        # dynamic_min, or squeezed would let the guest grow into the host's reserve.
        _reserve_for_dynamic_change(ctx, view, target)
        domains = ctx.pool.agent(view.resident_on).domains
        try:
            await domains.set_dynamic_range(vm, target, target)
        except BaseException:
            # Failed or cancelled: the guest's range is its recorded one again.
            domains.restore_range(vm, limits.dynamic_min, limits.dynamic_max)
            raise


@implements("VM.wait_memory_target_live")
async def wait_memory_target_live(ctx: Context, vm: str) -> None:
    """Poll once a second until the guest is within 1 MiB of its target (§6). A control
    domain, never ballooned, is always at its target."""
    async with vm_operation(ctx, vm, OP.AWAITING_MEMORY_LIVE) as operation:
        view = ctx.vm(vm)
        if not _ballooned(view):
            return
        agent = ctx.pool.agent(view.resident_on)
        waited = 0
        while True:
            if waited > WAIT_TIMEOUT_S:
                raise VM_MEMORY_TARGET_WAIT_TIMEOUT(operation)
            stat = agent.stat(vm)
            if abs(stat.actual_bytes - stat.target_bytes) <= WAIT_TOLERANCE_BYTES:
                with ctx.store.transaction() as tx:
                    tx.update("VM_metrics", view.metrics, {"memory_actual": stat.actual_bytes})
                return
            await ctx.pool.clock.sleep(WAIT_POLL_S)
            waited += 1


@implements("VM.get_cooperative")
def get_cooperative(ctx: Context, vm: str) -> bool:
    """Whether the guest really co-operates: it runs, has a balloon driver, has reached
    its target and is not flagged uncooperative. (xapi always answers true.)"""
    view = ctx.vm(vm)
    if view.power_state is not PowerState.RUNNING:
        return False
    stat = ctx.pool.agent(view.resident_on).stats().get(vm)
    return stat is not None and stat.cooperative


@implements("VM.maximise_memory")
def vm_maximise_memory(ctx: Context, vm: str, total: int, approximate: bool) -> int:
    return maximise_memory(ctx.vm(vm).memory, total, approximate=approximate)
