"""Running a VM operation: xapi's check, then the VM's current_operations entry.

The check and the mark happen in one store transaction with no await between them, so
two concurrent calls on one VM cannot both pass: the second sees the first in
current_operations, gets OTHER_OPERATION_IN_PROGRESS (xapi-memory.md §3.4) and, as in
xapi, waits for it to end and tries again (`xenmem.toolstack.waiting`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from xenmem.db import NULL_REF, new_ref
from xenmem.errors import OTHER_OPERATION_IN_PROGRESS, XenAPIError
from xenmem.toolstack.context import Context
from xenmem.toolstack.operations import OperationView, check_operation
from xenmem.toolstack.records import (
    Reader,
    VmOperation,
    VmView,
    is_domain_zero,
    is_true,
    nested_virt,
    nomigrate,
    read_vm,
)

__all__ = ["operation_view", "vm_operation"]


def operation_view(reader: Reader, vm: VmView) -> OperationView:
    return OperationView(
        ref=vm.ref,
        power_state=vm.power_state,
        current_operations=vm.current_operations,
        blocked_operations=vm.blocked_operations,
        is_a_template=vm.is_a_template,
        is_a_snapshot=vm.is_a_snapshot,
        is_control_domain=vm.is_control_domain,
        is_domain_zero=is_domain_zero(reader, vm),
        is_default_template=vm.is_default_template
        or is_true(vm.other_config.get("default_template")),
        nested_virt=nested_virt(reader, vm),
        nomigrate=nomigrate(reader, vm),
    )


def _try_mark(ctx: Context, vm: str, op: VmOperation, op_ref: str) -> XenAPIError | None:
    """Check `op` and mark it in progress, in one transaction; the check's error, if any."""
    with ctx.store.transaction() as tx:
        view = read_vm(tx, vm)
        error = check_operation(operation_view(tx, view), op)
        if error is None:
            operations = {**view.current_operations, op_ref: op}
            tx.update("VM", vm, {"current_operations": {k: v.value for k, v in operations.items()}})
        return error


async def _mark(ctx: Context, vm: str, op: VmOperation, op_ref: str) -> None:
    """Check and mark, waiting while another operation runs on the VM (xapi's
    `retry_with_global_lock`, see `xenmem.toolstack.waiting`)."""
    slept_s = 0.0
    while (error := _try_mark(ctx, vm, op, op_ref)) is not None:
        if not OTHER_OPERATION_IN_PROGRESS.matches(error):
            raise error
        slept_s += await ctx.pool.waits.back_off(error, slept_s)


def _unmark(ctx: Context, vm: str, op_ref: str) -> None:
    with ctx.store.transaction() as tx:
        if tx.get("VM", vm) is not None:
            remaining = {
                k: v.value for k, v in read_vm(tx, vm).current_operations.items() if k != op_ref
            }
            tx.update("VM", vm, {"current_operations": remaining})


@asynccontextmanager
async def vm_operation(ctx: Context, vm: str, op: VmOperation) -> AsyncIterator[str]:
    """Check `op` on `vm` (waiting while another operation runs on it), mark it in
    progress until the block ends; yields the operation's ref (the call's task, or a
    fresh ref for a synchronous call). Its end wakes the calls waiting to try again."""
    op_ref = ctx.task if ctx.task != NULL_REF else new_ref()
    await _mark(ctx, vm, op, op_ref)
    try:
        yield op_ref
    finally:
        _unmark(ctx, vm, op_ref)
        ctx.pool.waits.ended()
