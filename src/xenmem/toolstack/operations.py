"""Which VM operations may run, and the first error when one may not (xapi-memory.md §3.4).

xapi checks every operation against the VM's record in a fixed order
(xapi_vm_lifecycle `check_operation_error`); this module is that check, pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from xenmem.errors import (
    OPERATION_BLOCKED,
    OPERATION_NOT_ALLOWED,
    OTHER_OPERATION_IN_PROGRESS,
    VM_BAD_POWER_STATE,
    VM_IS_IMMOBILE,
    VM_IS_SNAPSHOT,
    VM_IS_TEMPLATE,
    VM_IS_USING_NESTED_VIRT,
    XenAPIError,
)
from xenmem.toolstack.records import PowerState, VmOperation

__all__ = [
    "NOT_ON_CONTROL_DOMAIN",
    "NOT_ON_DOM0",
    "OperationView",
    "PowerState",
    "VmOperation",
    "allowed_power_states",
    "check_operation",
    "operation_name",
]


_OP = VmOperation
_HALTED = (PowerState.HALTED,)
_RUNNING = (PowerState.RUNNING,)
_ALL_STATES = (PowerState.HALTED, PowerState.PAUSED, PowerState.SUSPENDED, PowerState.RUNNING)

# xapi_vm_lifecycle `allowed_power_states`, every operation of the enum; the order of
# the states is xapi's, and VM_BAD_POWER_STATE lists them in it.
_ALLOWED_POWER_STATES: Mapping[VmOperation, tuple[PowerState, ...]] = {
    _OP.IMPORT: (),
    _OP.CHANGING_VCPUS: _HALTED,
    _OP.CHANGING_STATIC_RANGE: _HALTED,
    _OP.CHANGING_MEMORY_LIMITS: _HALTED,
    _OP.CHANGING_SHADOW_MEMORY: _HALTED,
    _OP.CHANGING_NVRAM: _HALTED,
    _OP.MAKE_INTO_TEMPLATE: _HALTED,
    _OP.PROVISION: _HALTED,
    _OP.START: _HALTED,
    _OP.START_ON: _HALTED,
    _OP.UNPAUSE: (PowerState.PAUSED,),
    _OP.CSVM: (PowerState.SUSPENDED,),
    _OP.RESUME: (PowerState.SUSPENDED,),
    _OP.RESUME_ON: (PowerState.SUSPENDED,),
    _OP.AWAITING_MEMORY_LIVE: _RUNNING,
    _OP.CALL_PLUGIN: _RUNNING,
    _OP.CLEAN_REBOOT: _RUNNING,
    _OP.CLEAN_SHUTDOWN: _RUNNING,
    _OP.CHANGING_MEMORY_LIVE: _RUNNING,
    _OP.CHANGING_SHADOW_MEMORY_LIVE: _RUNNING,
    _OP.CHANGING_VCPUS_LIVE: _RUNNING,
    _OP.DATA_SOURCE_OP: _RUNNING,
    _OP.PAUSE: _RUNNING,
    _OP.POOL_MIGRATE: _RUNNING,
    _OP.SEND_SYSRQ: _RUNNING,
    _OP.SEND_TRIGGER: _RUNNING,
    _OP.SNAPSHOT_WITH_QUIESCE: _RUNNING,
    _OP.SUSPEND: _RUNNING,
    _OP.CHANGING_DYNAMIC_RANGE: (PowerState.HALTED, PowerState.RUNNING),
    _OP.CLONE: _HALTED,
    _OP.COPY: _HALTED,
    _OP.CREATE_TEMPLATE: (PowerState.HALTED, PowerState.SUSPENDED),
    _OP.DESTROY: (PowerState.HALTED, PowerState.SUSPENDED),
    _OP.EXPORT: (PowerState.HALTED, PowerState.SUSPENDED),
    _OP.HARD_REBOOT: (PowerState.PAUSED, PowerState.RUNNING),
    _OP.CHECKPOINT: (PowerState.PAUSED, PowerState.SUSPENDED, PowerState.RUNNING),
    _OP.GET_BOOT_RECORD: (PowerState.PAUSED, PowerState.SUSPENDED, PowerState.RUNNING),
    _OP.SHUTDOWN: (PowerState.PAUSED, PowerState.SUSPENDED, PowerState.RUNNING),
    _OP.HARD_SHUTDOWN: (PowerState.PAUSED, PowerState.SUSPENDED, PowerState.RUNNING),
    _OP.MIGRATE_SEND: (PowerState.HALTED, PowerState.SUSPENDED, PowerState.RUNNING),
    _OP.ASSERT_OPERATION_VALID: _ALL_STATES,
    _OP.METADATA_EXPORT: _ALL_STATES,
    _OP.POWER_STATE_RESET: _ALL_STATES,
    _OP.REVERT: _ALL_STATES,
    _OP.REVERTING: _ALL_STATES,
    _OP.SNAPSHOT: _ALL_STATES,
    _OP.UPDATE_ALLOWED_OPERATIONS: _ALL_STATES,
    _OP.QUERY_SERVICES: _ALL_STATES,
    _OP.CREATE_VTPM: _HALTED,
}

# A running control domain may change its vCPUs and static limits (they apply at its reboot).
_CONTROL_DOMAIN_ALSO_RUNNING = frozenset(
    {_OP.CHANGING_VCPUS, _OP.CHANGING_STATIC_RANGE, _OP.CHANGING_MEMORY_LIMITS}
)
# A snapshot may be cloned or copied while suspended (xapi also allows it for every VM
# when the pool's other_config:allow_clone_suspended_vm is "true"; xenmem has no such key).
_SNAPSHOT_ALSO_SUSPENDED = frozenset({_OP.CLONE, _OP.COPY})

_TEMPLATE_ALLOWED = frozenset(
    {
        _OP.CHANGING_DYNAMIC_RANGE,
        _OP.CHANGING_STATIC_RANGE,
        _OP.CHANGING_MEMORY_LIMITS,
        _OP.CHANGING_SHADOW_MEMORY,
        _OP.CHANGING_VCPUS,
        _OP.CHANGING_NVRAM,
        _OP.CLONE,
        _OP.COPY,
        _OP.EXPORT,
        _OP.METADATA_EXPORT,
        _OP.PROVISION,
    }
)
# ... and, unless the template is a default one, destroy and migrate_send.
_TEMPLATE_ALLOWED_UNLESS_DEFAULT = frozenset({_OP.DESTROY, _OP.MIGRATE_SEND})
_SNAPSHOT_ALLOWED = frozenset(
    {
        _OP.REVERT,
        _OP.CLONE,
        _OP.COPY,
        _OP.EXPORT,
        _OP.DESTROY,
        _OP.HARD_SHUTDOWN,
        _OP.METADATA_EXPORT,
    }
)
# Operations that move the domain away: not for a VM built with nomigrate or nested
# virtualisation (xapi's `is_mobile`, strict).
_NEEDS_MOBILITY = frozenset({_OP.SUSPEND, _OP.CHECKPOINT, _OP.POOL_MIGRATE, _OP.MIGRATE_SEND})
# What any control domain may do: its lifecycle belongs to its host, its memory is pinned.
_CONTROL_DOMAIN_ALLOWED = frozenset(
    {
        _OP.DATA_SOURCE_OP,
        _OP.CHANGING_MEMORY_LIVE,
        _OP.AWAITING_MEMORY_LIVE,
        _OP.METADATA_EXPORT,
        _OP.CHANGING_DYNAMIC_RANGE,
        _OP.CHANGING_MEMORY_LIMITS,
        _OP.CHANGING_STATIC_RANGE,
        _OP.START,
        _OP.START_ON,
        _OP.CHANGING_VCPUS,
        _OP.DESTROY,
    }
)
# ... less these two on dom0 itself.
_NOT_ON_DOM0 = frozenset({_OP.CHANGING_VCPUS, _OP.DESTROY})
NOT_ON_DOM0 = "This operation is not allowed on dom0"
NOT_ON_CONTROL_DOMAIN = "This operation is not allowed on a control domain"

# Operations whose name in errors is not their wire name: xapi renders them with
# Record_util.vm_operation_to_string, whose table misspells two and lacks four.
_UNKNOWN_OPERATION = "(unknown operation)"
_RENDERED_NAMES: Mapping[VmOperation, str] = {
    _OP.ASSERT_OPERATION_VALID: "assertoperationvalid",
    _OP.DATA_SOURCE_OP: "data_sources_op",
    _OP.CHANGING_VCPUS: _UNKNOWN_OPERATION,
    _OP.CHANGING_MEMORY_LIMITS: _UNKNOWN_OPERATION,
    _OP.CREATE_TEMPLATE: _UNKNOWN_OPERATION,
    _OP.QUERY_SERVICES: _UNKNOWN_OPERATION,
}


@dataclass(frozen=True, kw_only=True)
class OperationView:
    """The parts of a VM record the operation check reads.

    `current_operations` is in the order the operations began; `nested_virt` and
    `nomigrate` are as xapi reads them (VM_metrics first, then the platform keys).
    """

    ref: str
    power_state: PowerState
    current_operations: Mapping[str, VmOperation] = field(default_factory=dict)
    blocked_operations: Mapping[str, str] = field(default_factory=dict)
    is_a_template: bool = False
    is_a_snapshot: bool = False
    is_control_domain: bool = False
    is_domain_zero: bool = False
    is_default_template: bool = False
    nested_virt: bool = False
    nomigrate: bool = False


def allowed_power_states(vm: OperationView, op: VmOperation) -> tuple[PowerState, ...]:
    """The power states in which `op` may run on `vm`, in xapi's order."""
    states = _ALLOWED_POWER_STATES[op]
    if vm.is_control_domain and op in _CONTROL_DOMAIN_ALSO_RUNNING:
        return (*states, PowerState.RUNNING)
    if vm.is_a_snapshot and op in _SNAPSHOT_ALSO_SUSPENDED:
        return (*states, PowerState.SUSPENDED)
    return states


def operation_name(op: VmOperation) -> str:
    """`op` as xapi names it inside errors (Record_util.vm_operation_to_string)."""
    return _RENDERED_NAMES.get(op, op.value)


def _in_progress(vm: OperationView) -> XenAPIError:
    """OTHER_OPERATION_IN_PROGRESS ["VM", ref, ops, tasks]; several as "{a,b}", newest
    first, as xapi's current_operations map lists them (each new entry is prepended)."""
    tasks = list(vm.current_operations)[::-1]
    if len(tasks) == 1:
        ops, refs = operation_name(vm.current_operations[tasks[0]]), tasks[0]
    else:
        ops = "{" + ",".join(operation_name(vm.current_operations[t]) for t in tasks) + "}"
        refs = "{" + ",".join(tasks) + "}"
    return OTHER_OPERATION_IN_PROGRESS("VM", vm.ref, ops, refs)


def _template_error(vm: OperationView, op: VmOperation) -> XenAPIError | None:
    if op in _TEMPLATE_ALLOWED:
        return None
    if op in _TEMPLATE_ALLOWED_UNLESS_DEFAULT and not vm.is_default_template:
        return None
    return VM_IS_TEMPLATE(vm.ref, operation_name(op))


def _control_domain_error(vm: OperationView, op: VmOperation) -> XenAPIError | None:
    if vm.is_domain_zero and op in _NOT_ON_DOM0:
        return OPERATION_NOT_ALLOWED(NOT_ON_DOM0)
    if vm.is_control_domain and op not in _CONTROL_DOMAIN_ALLOWED:
        return OPERATION_NOT_ALLOWED(NOT_ON_CONTROL_DOMAIN)
    return None


def check_operation(vm: OperationView, op: VmOperation) -> XenAPIError | None:
    """The first error xapi would raise for `op` on `vm`, or None when it may run.

    xapi's order: blocked, power state, operations in progress, template, snapshot,
    (provision/revert: not modelled), mobility, nested virtualisation, control domain.
    """
    if op.value in vm.blocked_operations:
        return OPERATION_BLOCKED(vm.ref, vm.blocked_operations[op.value])
    allowed = allowed_power_states(vm, op)
    if vm.power_state not in allowed:
        expected = ", ".join(state.value.lower() for state in allowed)
        return VM_BAD_POWER_STATE(vm.ref, expected, vm.power_state.value.lower())
    # No operation runs beside another on the same VM (xapi lets a few do so:
    # clone/copy/export together, snapshots together, hard_shutdown and hard_reboot).
    if vm.current_operations:
        return _in_progress(vm)
    if vm.is_a_template and not vm.is_a_snapshot:
        error = _template_error(vm, op)
        if error is not None:
            return error
    if vm.is_a_snapshot and op not in _SNAPSHOT_ALLOWED:
        return VM_IS_SNAPSHOT(vm.ref, operation_name(op))
    if op in _NEEDS_MOBILITY and (vm.nomigrate or vm.nested_virt):
        return VM_IS_IMMOBILE(vm.ref)
    if op is _OP.CHANGING_DYNAMIC_RANGE and vm.nested_virt:
        return VM_IS_USING_NESTED_VIRT(vm.ref)
    return _control_domain_error(vm, op)
