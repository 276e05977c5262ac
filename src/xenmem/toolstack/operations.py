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
    VM_IS_SNAPSHOT,
    VM_IS_TEMPLATE,
    VM_IS_USING_NESTED_VIRT,
    XenAPIError,
)
from xenmem.toolstack.records import PowerState, VmOperation

__all__ = [
    "OperationView",
    "PowerState",
    "VmOperation",
    "allowed_power_states",
    "check_operation",
]


_OP = VmOperation
_HALTED = (PowerState.HALTED,)
_RUNNING = (PowerState.RUNNING,)

_ALLOWED_POWER_STATES: Mapping[VmOperation, tuple[PowerState, ...]] = {
    _OP.START: _HALTED,
    _OP.START_ON: _HALTED,
    _OP.CHANGING_MEMORY_LIMITS: _HALTED,
    _OP.CHANGING_SHADOW_MEMORY: _HALTED,
    _OP.CHANGING_STATIC_RANGE: _HALTED,
    _OP.CHANGING_VCPUS: _HALTED,
    _OP.UNPAUSE: (PowerState.PAUSED,),
    _OP.RESUME: (PowerState.SUSPENDED,),
    _OP.RESUME_ON: (PowerState.SUSPENDED,),
    _OP.AWAITING_MEMORY_LIVE: _RUNNING,
    _OP.CLEAN_SHUTDOWN: _RUNNING,
    _OP.CHANGING_MEMORY_LIVE: _RUNNING,
    _OP.CHANGING_SHADOW_MEMORY_LIVE: _RUNNING,
    _OP.PAUSE: _RUNNING,
    _OP.POOL_MIGRATE: _RUNNING,
    _OP.SUSPEND: _RUNNING,
    _OP.CHANGING_DYNAMIC_RANGE: (PowerState.HALTED, PowerState.RUNNING),
    _OP.CLONE: _HALTED,
    _OP.DESTROY: (PowerState.HALTED, PowerState.SUSPENDED),
    _OP.HARD_SHUTDOWN: (PowerState.PAUSED, PowerState.SUSPENDED, PowerState.RUNNING),
}

# A running control domain may change its static limits (the change applies at its reboot).
_CONTROL_DOMAIN_ALSO_RUNNING = frozenset({_OP.CHANGING_STATIC_RANGE, _OP.CHANGING_MEMORY_LIMITS})

_TEMPLATE_ALLOWED = frozenset(
    {
        _OP.CHANGING_DYNAMIC_RANGE,
        _OP.CHANGING_STATIC_RANGE,
        _OP.CHANGING_MEMORY_LIMITS,
        _OP.CHANGING_SHADOW_MEMORY,
        _OP.CHANGING_VCPUS,
        _OP.CLONE,
        _OP.DESTROY,
    }
)
_SNAPSHOT_ALLOWED = frozenset({_OP.CLONE, _OP.DESTROY, _OP.HARD_SHUTDOWN})
# The control domain may only have its memory changed; its lifecycle belongs to the host.
_CONTROL_DOMAIN_ALLOWED = frozenset(
    {
        _OP.CHANGING_DYNAMIC_RANGE,
        _OP.CHANGING_STATIC_RANGE,
        _OP.CHANGING_MEMORY_LIMITS,
        _OP.CHANGING_MEMORY_LIVE,
        _OP.AWAITING_MEMORY_LIVE,
        _OP.CHANGING_SHADOW_MEMORY,
        _OP.CHANGING_SHADOW_MEMORY_LIVE,
    }
)


@dataclass(frozen=True, kw_only=True)
class OperationView:
    """The parts of a VM record the operation check reads."""

    ref: str
    power_state: PowerState
    current_operations: Mapping[str, VmOperation] = field(default_factory=dict)
    blocked_operations: Mapping[str, str] = field(default_factory=dict)
    is_a_template: bool = False
    is_a_snapshot: bool = False
    is_control_domain: bool = False
    is_default_template: bool = False
    nested_virt: bool = False


def allowed_power_states(op: VmOperation, *, is_control_domain: bool) -> tuple[PowerState, ...]:
    states = _ALLOWED_POWER_STATES[op]
    if is_control_domain and op in _CONTROL_DOMAIN_ALSO_RUNNING:
        return (*states, PowerState.RUNNING)
    return states


def _operation_name(op: VmOperation) -> str:
    # xapi's name table lacks changing_memory_limits (xapi-memory.md §3.4).
    if op is _OP.CHANGING_MEMORY_LIMITS:
        return "(unknown operation)"
    return op.value


def _in_progress(vm: OperationView) -> XenAPIError:
    tasks = list(vm.current_operations)
    ops = [vm.current_operations[task].value for task in tasks]
    rendered = ops[0] if len(ops) == 1 else "{" + ",".join(ops) + "}"
    return OTHER_OPERATION_IN_PROGRESS("VM", vm.ref, rendered, tasks[0])


def check_operation(vm: OperationView, op: VmOperation) -> XenAPIError | None:
    """The first error xapi would raise for `op` on `vm`, or None when it may run."""
    if op.value in vm.blocked_operations:
        return OPERATION_BLOCKED(vm.ref, vm.blocked_operations[op.value])
    allowed = allowed_power_states(op, is_control_domain=vm.is_control_domain)
    if vm.power_state not in allowed:
        expected = ", ".join(state.value.lower() for state in allowed)
        return VM_BAD_POWER_STATE(vm.ref, expected, vm.power_state.value.lower())
    # Memory and lifecycle operations never run beside another operation on the same VM.
    if vm.current_operations:
        return _in_progress(vm)
    if vm.is_a_template and not vm.is_a_snapshot:
        permitted = op in _TEMPLATE_ALLOWED and not (op is _OP.DESTROY and vm.is_default_template)
        if not permitted:
            return VM_IS_TEMPLATE(vm.ref, op.value)
    if vm.is_a_snapshot and op not in _SNAPSHOT_ALLOWED:
        return VM_IS_SNAPSHOT(vm.ref, _operation_name(op))
    if op is _OP.CHANGING_DYNAMIC_RANGE and vm.nested_virt:
        return VM_IS_USING_NESTED_VIRT(vm.ref)
    if vm.is_control_domain and op not in _CONTROL_DOMAIN_ALLOWED:
        return OPERATION_NOT_ALLOWED("Operations on the control domain are not allowed")
    return None
