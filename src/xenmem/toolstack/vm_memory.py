"""The VM memory messages: setters, live ballooning, maximise (xapi-memory.md §2.5, §3.4, §6).

Each setter runs under its xapi operation (power-state gating, one operation at a time),
validates with the pure rules of `xenmem.memory.constraints` in the VM's context (DMC,
control domain, nested virt), writes, and recomputes the stored overhead where xapi does.
"""

from __future__ import annotations

from xenmem.db import Record
from xenmem.errors import (
    HOST_NOT_ENOUGH_FREE_MEMORY,
    MEMORY_CONSTRAINT_VIOLATION_ORDER,
    VM_MEMORY_TARGET_WAIT_TIMEOUT,
)
from xenmem.memory import (
    Constraints,
    ValidationContext,
    maximise_memory,
    validate_shadow_multiplier,
    validate_vcpus,
    with_dynamic_range,
    with_limits,
    with_memory,
    with_static_range,
)
from xenmem.memory.domain_build import shadow_allocation_mib
from xenmem.memory.units import BYTES_PER_MIB
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.guard import nested_virt, vm_operation
from xenmem.toolstack.host import host_free_bytes
from xenmem.toolstack.lifecycle import update_memory_overhead
from xenmem.toolstack.operations import VmOperation
from xenmem.toolstack.vm import constraints_of, memory_of

__all__ = ["WAIT_TIMEOUT_S", "WAIT_TOLERANCE_BYTES"]

OP = VmOperation
# wait_memory_target_live: done within 1 MiB, polling every second, for up to 256 s (§6).
WAIT_TOLERANCE_BYTES = BYTES_PER_MIB
WAIT_POLL_S = 1.0
WAIT_TIMEOUT_S = 256


def _context(ctx: Context, record: Record) -> ValidationContext:
    return ValidationContext(
        dmc_enabled=ctx.pool.dmc_enabled,
        is_control_domain=bool(record["is_control_domain"]),
        nested_virt=nested_virt(record),
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


def _static_change_done(ctx: Context, vm: str) -> None:
    """After a static change: the overhead follows, and a running control domain needs a
    reboot to take it (xapi-memory.md §3.4)."""
    update_memory_overhead(ctx, vm)
    record = ctx.record("VM", vm)
    if record["is_control_domain"] and record["power_state"] == "Running":
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"requires_reboot": True})


def _reserve_for_dynamic_change(ctx: Context, vm: str, record: Record, new_min: int) -> None:
    """The pool-level check before a running VM's dynamic_min grows (message_forwarding
    `reserve_memory_for_dynamic_change`): in KiB, and before the range is validated."""
    host = str(record["resident_on"])
    available = host_free_bytes(ctx, host)
    old_min = constraints_of(record).dynamic_min
    if available + (old_min - new_min) < 0:
        raise HOST_NOT_ENOUGH_FREE_MEMORY((new_min - old_min) // 1024, available // 1024)


@implements("VM.set_memory_dynamic_range")
async def set_memory_dynamic_range(ctx: Context, vm: str, minimum: int, maximum: int) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_DYNAMIC_RANGE):
        record = ctx.record("VM", vm)
        running = record["power_state"] == "Running"
        if running:
            _reserve_for_dynamic_change(ctx, vm, record, minimum)
        old = constraints_of(record)
        updated = with_dynamic_range(old, _context(ctx, record), minimum, maximum)
        _write_limits(ctx, vm, updated)
        if running:
            agent = ctx.pool.agent(str(record["resident_on"]))
            try:
                await agent.set_dynamic_range(vm, minimum, maximum)
            except BaseException:
                _write_limits(ctx, vm, old)
                raise


@implements("VM.set_memory_dynamic_min")
async def set_memory_dynamic_min(ctx: Context, vm: str, value: int) -> None:
    maximum = constraints_of(ctx.record("VM", vm)).dynamic_max
    await set_memory_dynamic_range(ctx, vm, value, maximum)


@implements("VM.set_memory_dynamic_max")
async def set_memory_dynamic_max(ctx: Context, vm: str, value: int) -> None:
    minimum = constraints_of(ctx.record("VM", vm)).dynamic_min
    await set_memory_dynamic_range(ctx, vm, minimum, value)


@implements("VM.set_memory_static_range")
async def set_memory_static_range(ctx: Context, vm: str, minimum: int, maximum: int) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_STATIC_RANGE):
        record = ctx.record("VM", vm)
        updated = with_static_range(constraints_of(record), _context(ctx, record), minimum, maximum)
        _write_limits(ctx, vm, updated)
        _static_change_done(ctx, vm)


@implements("VM.set_memory_static_min")
async def set_memory_static_min(ctx: Context, vm: str, value: int) -> None:
    maximum = constraints_of(ctx.record("VM", vm)).static_max
    await set_memory_static_range(ctx, vm, value, maximum)


@implements("VM.set_memory_static_max")
async def set_memory_static_max(ctx: Context, vm: str, value: int) -> None:
    minimum = constraints_of(ctx.record("VM", vm)).static_min
    await set_memory_static_range(ctx, vm, minimum, value)


@implements("VM.set_memory_limits")
async def set_memory_limits(  # noqa: PLR0917 (the wire's positional parameters)
    ctx: Context, vm: str, static_min: int, static_max: int, dynamic_min: int, dynamic_max: int
) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_MEMORY_LIMITS):
        record = ctx.record("VM", vm)
        updated = with_limits(
            _context(ctx, record),
            static_min=static_min,
            static_max=static_max,
            dynamic_min=dynamic_min,
            dynamic_max=dynamic_max,
        )
        _write_limits(ctx, vm, updated)
        _static_change_done(ctx, vm)


@implements("VM.set_memory")
async def set_memory(ctx: Context, vm: str, value: int) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_MEMORY_LIMITS):
        record = ctx.record("VM", vm)
        _write_limits(ctx, vm, with_memory(constraints_of(record), _context(ctx, record), value))
        _static_change_done(ctx, vm)


@implements("VM.set_HVM_shadow_multiplier")
async def set_hvm_shadow_multiplier(ctx: Context, vm: str, value: float) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_SHADOW_MEMORY):
        validate_shadow_multiplier(value, "multiplier")
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"HVM_shadow_multiplier": value})
        update_memory_overhead(ctx, vm)


@implements("VM.set_shadow_multiplier_live")
async def set_shadow_multiplier_live(ctx: Context, vm: str, multiplier: float) -> None:
    """Grow or shrink a running HVM domain's shadow allocation; xenopsd does nothing for
    other types ("Unimplemented" is ignored, §3.4). Growing needs free Xen memory."""
    async with vm_operation(ctx, vm, OP.CHANGING_SHADOW_MEMORY_LIVE):
        validate_shadow_multiplier(multiplier, "multiplier")
        record = ctx.record("VM", vm)
        host = str(record["resident_on"])
        wanted = memory_of({**record, "HVM_shadow_multiplier": multiplier})
        agent = ctx.pool.agent(host)
        needed = agent.resize_shadow(vm, shadow_allocation_mib(wanted))
        if needed is not None:
            raise HOST_NOT_ENOUGH_FREE_MEMORY(needed, host_free_bytes(ctx, host))
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"HVM_shadow_multiplier": multiplier})
        update_memory_overhead(ctx, vm)


@implements("VM.set_VCPUs_max")
async def set_vcpus_max(ctx: Context, vm: str, value: int) -> None:
    async with vm_operation(ctx, vm, OP.CHANGING_VCPUS):
        at_startup = ctx.record("VM", vm)["VCPUs_at_startup"]
        assert isinstance(at_startup, int)
        validate_vcpus(value, at_startup)
        with ctx.store.transaction() as tx:
            tx.update("VM", vm, {"VCPUs_max": value})
        update_memory_overhead(ctx, vm)


@implements("VM.set_memory_target_live")
async def set_memory_target_live(ctx: Context, vm: str, target: int) -> None:
    """Hold a running guest's balloon target at `target` until its range changes or it
    stops. (xapi accepts and ignores this; here it really sets the target.)"""
    async with vm_operation(ctx, vm, OP.CHANGING_MEMORY_LIVE):
        record = ctx.record("VM", vm)
        limits = constraints_of(record)
        if not limits.dynamic_min <= target <= limits.dynamic_max:
            raise MEMORY_CONSTRAINT_VIOLATION_ORDER()
        # Holding the target raises the guest's floor to it: the same check as raising
        # dynamic_min, or squeezed would let the guest grow into the host's reserve.
        _reserve_for_dynamic_change(ctx, vm, record, target)
        agent = ctx.pool.agent(str(record["resident_on"]))
        await agent.set_dynamic_range(vm, target, target)


@implements("VM.wait_memory_target_live")
async def wait_memory_target_live(ctx: Context, vm: str) -> None:
    """Poll once a second until the guest is within 1 MiB of its target (§6)."""
    async with vm_operation(ctx, vm, OP.AWAITING_MEMORY_LIVE) as operation:
        record = ctx.record("VM", vm)
        agent = ctx.pool.agent(str(record["resident_on"]))
        waited = 0
        while True:
            if waited > WAIT_TIMEOUT_S:
                raise VM_MEMORY_TARGET_WAIT_TIMEOUT(operation)
            stat = agent.stat(vm)
            if abs(stat.actual_bytes - stat.target_bytes) <= WAIT_TOLERANCE_BYTES:
                with ctx.store.transaction() as tx:
                    tx.update(
                        "VM_metrics", str(record["metrics"]), {"memory_actual": stat.actual_bytes}
                    )
                return
            await agent.clock.sleep(WAIT_POLL_S)
            waited += 1


@implements("VM.get_cooperative")
def get_cooperative(ctx: Context, vm: str) -> bool:
    """Whether the guest really co-operates: it runs, has a balloon driver, has reached
    its target and is not flagged uncooperative. (xapi always answers true.)"""
    record = ctx.record("VM", vm)
    if record["power_state"] != "Running":
        return False
    stat = ctx.pool.agent(str(record["resident_on"])).stats().get(vm)
    return stat is not None and stat.cooperative


@implements("VM.maximise_memory")
def vm_maximise_memory(ctx: Context, vm: str, total: int, approximate: bool) -> int:
    return maximise_memory(memory_of(ctx.record("VM", vm)), total, approximate=approximate)
