"""Operation checks: power states and xapi's error order (xapi-memory.md §3.4)."""

from dataclasses import replace

import pytest

from xenmem.toolstack.operations import (
    OperationView,
    PowerState,
    VmOperation,
    allowed_power_states,
    check_operation,
    operation_name,
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
        (OP.CLONE, "halted"),
        (OP.COPY, "halted"),
        (OP.CHANGING_VCPUS, "halted"),
    ],
)
def test_bad_power_state_lists_the_allowed_states(op: VmOperation, expected: str) -> None:
    allowed = allowed_power_states(VM, op)
    wrong = next(state for state in PowerState if state not in allowed)
    assert description(replace(VM, power_state=wrong), op) == [
        "VM_BAD_POWER_STATE",
        "OpaqueRef:vm",
        expected,
        wrong.value.lower(),
    ]
    for state in allowed:
        assert check_operation(replace(VM, power_state=state), op) is None


def test_running_control_domain_may_change_static_limits_and_vcpus() -> None:
    dom0 = replace(RUNNING, is_control_domain=True)
    assert check_operation(dom0, OP.CHANGING_STATIC_RANGE) is None
    assert check_operation(dom0, OP.CHANGING_MEMORY_LIMITS) is None
    assert check_operation(dom0, OP.CHANGING_VCPUS) is None
    assert description(RUNNING, OP.CHANGING_STATIC_RANGE) == [
        "VM_BAD_POWER_STATE",
        "OpaqueRef:vm",
        "halted",
        "running",
    ]


CONTROL_DOMAIN_OPS = {
    OP.DATA_SOURCE_OP,
    OP.CHANGING_MEMORY_LIVE,
    OP.AWAITING_MEMORY_LIVE,
    OP.METADATA_EXPORT,
    OP.CHANGING_DYNAMIC_RANGE,
    OP.CHANGING_MEMORY_LIMITS,
    OP.CHANGING_STATIC_RANGE,
    OP.START,
    OP.START_ON,
    OP.CHANGING_VCPUS,
    OP.DESTROY,
}


@pytest.mark.parametrize("op", list(VmOperation))
def test_control_domains_allow_eleven_operations(op: VmOperation) -> None:
    """xapi_vm_lifecycle: on any control domain only eleven operations pass the check;
    on dom0 itself changing_VCPUs and destroy do not either."""
    driver_domain = replace(VM, is_control_domain=True)
    dom0 = replace(driver_domain, is_domain_zero=True)
    for domain in (driver_domain, dom0):
        # In a power state the operation allows, so that the control-domain rule decides.
        states = allowed_power_states(domain, op)
        if not states:
            continue
        view = replace(domain, power_state=states[0])
        error = description(view, op)
        if op not in CONTROL_DOMAIN_OPS:
            reason = "This operation is not allowed on a control domain"
        elif view.is_domain_zero and op in (OP.CHANGING_VCPUS, OP.DESTROY):
            reason = "This operation is not allowed on dom0"
        else:
            assert error is None
            continue
        assert error == ["OPERATION_NOT_ALLOWED", reason]


def test_control_domain_checks_come_after_power_state_and_the_others() -> None:
    """dom0 runs: destroy, start and unpause answer its power state first; the nested
    virtualisation check comes before the control-domain one."""
    dom0 = replace(RUNNING, is_control_domain=True, is_domain_zero=True)
    assert description(dom0, OP.DESTROY) == [
        "VM_BAD_POWER_STATE",
        "OpaqueRef:vm",
        "halted, suspended",
        "running",
    ]
    for op, expected in ((OP.START, "halted"), (OP.UNPAUSE, "paused")):
        assert description(dom0, op) == ["VM_BAD_POWER_STATE", "OpaqueRef:vm", expected, "running"]
    for op in (OP.CLEAN_SHUTDOWN, OP.PAUSE, OP.SUSPEND, OP.HARD_SHUTDOWN):
        assert description(dom0, op) == [
            "OPERATION_NOT_ALLOWED",
            "This operation is not allowed on a control domain",
        ]
    assert description(dom0, OP.CHANGING_VCPUS) == [
        "OPERATION_NOT_ALLOWED",
        "This operation is not allowed on dom0",
    ]
    nested = replace(dom0, nested_virt=True)
    assert description(nested, OP.CHANGING_DYNAMIC_RANGE) == [
        "VM_IS_USING_NESTED_VIRT",
        "OpaqueRef:vm",
    ]


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


def test_several_operations_in_progress_are_listed_newest_first() -> None:
    """xapi's current_operations map prepends each new entry, and its error lists them
    all as {op1,op2} and {task1,task2}, without spaces."""
    two = replace(
        RUNNING,
        current_operations={"OpaqueRef:t1": OP.DATA_SOURCE_OP, "OpaqueRef:t2": OP.CHANGING_VCPUS},
    )
    assert description(two, OP.CHANGING_MEMORY_LIVE) == [
        "OTHER_OPERATION_IN_PROGRESS",
        "VM",
        "OpaqueRef:vm",
        "{(unknown operation),data_sources_op}",
        "{OpaqueRef:t2,OpaqueRef:t1}",
    ]


def test_operation_names_as_record_util_renders_them() -> None:
    renamed = {op: operation_name(op) for op in VmOperation if operation_name(op) != op.value}
    assert renamed == {
        OP.ASSERT_OPERATION_VALID: "assertoperationvalid",
        OP.DATA_SOURCE_OP: "data_sources_op",
        OP.CHANGING_VCPUS: "(unknown operation)",
        OP.CHANGING_MEMORY_LIMITS: "(unknown operation)",
        OP.CREATE_TEMPLATE: "(unknown operation)",
        OP.QUERY_SERVICES: "(unknown operation)",
    }
    template = replace(VM, is_a_template=True)
    assert description(template, OP.QUERY_SERVICES) == [
        "VM_IS_TEMPLATE",
        "OpaqueRef:vm",
        "(unknown operation)",
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
    assert description(snapshot, OP.CHANGING_VCPUS) == [
        "VM_IS_SNAPSHOT",
        "OpaqueRef:vm",
        "(unknown operation)",
    ]
    assert description(snapshot, OP.SNAPSHOT) == ["VM_IS_SNAPSHOT", "OpaqueRef:vm", "snapshot"]


def test_a_suspended_snapshot_may_be_cloned_or_copied() -> None:
    snapshot = replace(VM, is_a_snapshot=True, is_a_template=True, power_state=PowerState.SUSPENDED)
    assert check_operation(snapshot, OP.CLONE) is None
    assert check_operation(snapshot, OP.COPY) is None
    assert description(replace(snapshot, is_a_snapshot=False), OP.COPY) == [
        "VM_BAD_POWER_STATE",
        "OpaqueRef:vm",
        "halted",
        "suspended",
    ]


def test_nested_virt_blocks_dynamic_range_changes() -> None:
    nested = replace(RUNNING, nested_virt=True)
    assert description(nested, OP.CHANGING_DYNAMIC_RANGE) == [
        "VM_IS_USING_NESTED_VIRT",
        "OpaqueRef:vm",
    ]
    assert check_operation(nested, OP.CHANGING_MEMORY_LIVE) is None


def test_a_vm_built_with_nomigrate_or_nested_virt_is_immobile() -> None:
    for view in (replace(RUNNING, nomigrate=True), replace(RUNNING, nested_virt=True)):
        for op in (OP.SUSPEND, OP.POOL_MIGRATE, OP.CHECKPOINT, OP.MIGRATE_SEND):
            assert description(view, op) == ["VM_IS_IMMOBILE", "OpaqueRef:vm"]
        assert check_operation(view, OP.CLEAN_SHUTDOWN) is None
    # After the template and snapshot checks, before the control-domain one.
    snapshot = replace(RUNNING, nomigrate=True, is_a_snapshot=True)
    assert description(snapshot, OP.SUSPEND) == ["VM_IS_SNAPSHOT", "OpaqueRef:vm", "suspend"]
    dom0 = replace(RUNNING, nomigrate=True, is_control_domain=True)
    assert description(dom0, OP.SUSPEND) == ["VM_IS_IMMOBILE", "OpaqueRef:vm"]
