"""Running a VM operation: xapi's check, then the VM's current_operations entry.

The check and the mark happen in one store transaction with no await between them, so
two concurrent calls on one VM cannot both pass: the second sees the first in
current_operations and gets OTHER_OPERATION_IN_PROGRESS (xapi-memory.md §3.4).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from xenmem.db import NULL_REF, Record, new_ref
from xenmem.toolstack.context import Context
from xenmem.toolstack.operations import OperationView, PowerState, VmOperation, check_operation

__all__ = ["nested_virt", "operation_view", "vm_operation"]


def nested_virt(record: Record) -> bool:
    """platform:nested-virt, the flag xapi reads for a VM's nested virtualisation."""
    platform = record["platform"]
    return isinstance(platform, Mapping) and platform.get("nested-virt") == "true"


def operation_view(vm: str, record: Record) -> OperationView:
    operations = record["current_operations"]
    blocked = record["blocked_operations"]
    other_config = record["other_config"]
    assert isinstance(operations, Mapping) and isinstance(blocked, Mapping)
    assert isinstance(other_config, Mapping)
    return OperationView(
        ref=vm,
        power_state=PowerState(str(record["power_state"])),
        current_operations={str(k): VmOperation(str(v)) for k, v in operations.items()},
        blocked_operations={str(k): str(v) for k, v in blocked.items()},
        is_a_template=bool(record["is_a_template"]),
        is_a_snapshot=bool(record["is_a_snapshot"]),
        is_control_domain=bool(record["is_control_domain"]),
        is_default_template=bool(record["is_default_template"]),
        nested_virt=nested_virt(record),
    )


@asynccontextmanager
async def vm_operation(ctx: Context, vm: str, op: VmOperation) -> AsyncIterator[str]:
    """Check `op` on `vm`, mark it in progress until the block ends; yields the
    operation's ref (the call's task, or a fresh ref for a synchronous call)."""
    op_ref = ctx.task if ctx.task != NULL_REF else new_ref()
    with ctx.store.transaction() as tx:
        record = ctx.record("VM", vm)
        error = check_operation(operation_view(vm, record), op)
        if error is not None:
            raise error
        operations = record["current_operations"]
        assert isinstance(operations, Mapping)
        tx.update("VM", vm, {"current_operations": {**operations, op_ref: op.value}})
    try:
        yield op_ref
    finally:
        with ctx.store.transaction() as tx:
            current = tx.get("VM", vm)
            if current is not None:
                operations = current["current_operations"]
                assert isinstance(operations, Mapping)
                remaining = {k: v for k, v in operations.items() if k != op_ref}
                tx.update("VM", vm, {"current_operations": remaining})
