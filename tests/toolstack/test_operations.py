"""Operation checks: power states and xapi's error order (xapi-memory.md §3.4)."""

from dataclasses import replace

import pytest

from xenmem.toolstack.operations import (
    OperationView,
    PowerState,
    VmOperation,
    allowed_power_states,
    check_operation,
)

OP = VmOperation
VM = OperationView(ref="OpaqueRef:vm", power_state=PowerState.HALTED)
RUNNING = replace(VM, power_state=PowerState.RUNNING)


def description(view: OperationView, op: VmOperation) -> list[str] | None:
    error = check_operation(view, op)
    return None if error is None else error.description


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (OP.CHANGING_DYNAMIC_RANGE, "halted, running"),
        (OP.CHANGING_STATIC_RANGE, "halted"),
        (OP.CHANGING_MEMORY_LIMITS, "halted"),
        (OP.CHANGING_SHADOW_MEMORY, "halted"),
        (OP.CHANGING_MEMORY_LIVE, "running"),
        (OP.AWAITING_MEMORY_LIVE, "running"),
        (OP.CHANGING_SHADOW_MEMORY_LIVE, "running"),
        (OP.START, "halted"),
        (OP.RESUME, "suspended"),
        (OP.UNPAUSE, "paused"),
        (OP.HARD_SHUTDOWN, "paused, suspended, running"),
        (OP.DESTROY, "halted, suspended"),
    ],
)
def test_bad_power_state_lists_the_allowed_states(op: VmOperation, expected: str) -> None:
    allowed = allowed_power_states(op, is_control_domain=False)
    wrong = next(state for state in PowerState if state not in allowed)
    assert description(replace(VM, power_state=wrong), op) == [
        "VM_BAD_POWER_STATE",
        "OpaqueRef:vm",
        expected,
        wrong.value.lower(),
    ]
    for state in allowed:
        assert check_operation(replace(VM, power_state=state), op) is None


def test_running_control_domain_may_change_static_limits() -> None:
    dom0 = replace(RUNNING, is_control_domain=True)
    assert check_operation(dom0, OP.CHANGING_STATIC_RANGE) is None
    assert check_operation(dom0, OP.CHANGING_MEMORY_LIMITS) is None
    assert description(RUNNING, OP.CHANGING_STATIC_RANGE) == [
        "VM_BAD_POWER_STATE",
        "OpaqueRef:vm",
        "halted",
        "running",
    ]


def test_control_domain_lifecycle_is_not_allowed() -> None:
    dom0 = replace(RUNNING, is_control_domain=True)
    assert description(dom0, OP.CLEAN_SHUTDOWN) == [
        "OPERATION_NOT_ALLOWED",
        "Operations on the control domain are not allowed",
    ]
    assert check_operation(dom0, OP.CHANGING_DYNAMIC_RANGE) is None


def test_blocked_operation_comes_first() -> None:
    blocked = replace(
        RUNNING,
        blocked_operations={"changing_static_range": "maintenance"},
        current_operations={"OpaqueRef:task": OP.CLEAN_SHUTDOWN},
    )
    assert description(blocked, OP.CHANGING_STATIC_RANGE) == [
        "OPERATION_BLOCKED",
        "OpaqueRef:vm",
        "maintenance",
    ]


def test_power_state_comes_before_operations_in_progress() -> None:
    busy = replace(VM, current_operations={"OpaqueRef:task": OP.START})
    error = check_operation(busy, OP.CHANGING_MEMORY_LIVE)
    assert error is not None
    assert error.code == "VM_BAD_POWER_STATE"


def test_other_operation_in_progress_names_class_vm_op_and_task() -> None:
    busy = replace(RUNNING, current_operations={"OpaqueRef:task": OP.CHANGING_DYNAMIC_RANGE})
    assert description(busy, OP.CHANGING_DYNAMIC_RANGE) == [
        "OTHER_OPERATION_IN_PROGRESS",
        "VM",
        "OpaqueRef:vm",
        "changing_dynamic_range",
        "OpaqueRef:task",
    ]
    two = replace(
        RUNNING, current_operations={"OpaqueRef:t1": OP.PAUSE, "OpaqueRef:t2": OP.SUSPEND}
    )
    assert description(two, OP.CHANGING_MEMORY_LIVE) == [
        "OTHER_OPERATION_IN_PROGRESS",
        "VM",
        "OpaqueRef:vm",
        "{pause,suspend}",
        "OpaqueRef:t1",
    ]


def test_templates_may_change_memory_but_not_start() -> None:
    template = replace(VM, is_a_template=True)
    for op in (
        OP.CHANGING_DYNAMIC_RANGE,
        OP.CHANGING_STATIC_RANGE,
        OP.CHANGING_MEMORY_LIMITS,
        OP.CHANGING_SHADOW_MEMORY,
        OP.CLONE,
        OP.DESTROY,
    ):
        assert check_operation(template, op) is None
    assert description(template, OP.START) == ["VM_IS_TEMPLATE", "OpaqueRef:vm", "start"]
    default = replace(template, is_default_template=True)
    assert description(default, OP.DESTROY) == ["VM_IS_TEMPLATE", "OpaqueRef:vm", "destroy"]


def test_snapshots_cannot_change_memory() -> None:
    snapshot = replace(VM, is_a_snapshot=True, is_a_template=True)
    assert description(snapshot, OP.CHANGING_DYNAMIC_RANGE) == [
        "VM_IS_SNAPSHOT",
        "OpaqueRef:vm",
        "changing_dynamic_range",
    ]
    assert description(snapshot, OP.CHANGING_MEMORY_LIMITS) == [
        "VM_IS_SNAPSHOT",
        "OpaqueRef:vm",
        "(unknown operation)",
    ]
    assert check_operation(snapshot, OP.DESTROY) is None


def test_nested_virt_blocks_dynamic_range_changes() -> None:
    nested = replace(RUNNING, nested_virt=True)
    assert description(nested, OP.CHANGING_DYNAMIC_RANGE) == [
        "VM_IS_USING_NESTED_VIRT",
        "OpaqueRef:vm",
    ]
    assert check_operation(nested, OP.CHANGING_MEMORY_LIVE) is None
