"""How xapi feeds a VM's record into the footprint model (xapi-memory.md §2.3, §4.1, §4.3)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from xenmem.errors import INVALID_VALUE
from xenmem.memory.constraints import Constraints, ocaml_string_of_float
from xenmem.memory.model import DEFAULT_SHADOW_MULTIPLIER, MODELS, DomainType, model_for
from xenmem.memory.units import INT64_MAX, INT64_MIN, bytes_of_mib, mib_of_bytes_used

__all__ = [
    "AccountingPolicy",
    "VmMemory",
    "assert_fits_int64",
    "compute_memory_overhead",
    "fits_int64",
    "int64_culprit",
    "overhead_bytes",
    "policy_value",
    "required_memory",
    "start_policy",
    "start_requirement",
    "used_memory",
]


class AccountingPolicy(enum.Enum):
    """Which of a VM's limits stands for its RAM when counting (§4.1)."""

    STATIC_MAX = "static_max"
    DYNAMIC_MAX = "dynamic_max"
    DYNAMIC_MIN = "dynamic_min"


@dataclass(frozen=True, kw_only=True)
class VmMemory:
    """The memory-relevant part of a VM record; sizes in bytes."""

    domain_type: DomainType
    static_min: int
    dynamic_min: int
    dynamic_max: int
    static_max: int
    vcpus_max: int
    target: int = 0
    shadow_multiplier: float = DEFAULT_SHADOW_MULTIPLIER

    @property
    def constraints(self) -> Constraints:
        return Constraints(
            static_min=self.static_min,
            dynamic_min=self.dynamic_min,
            target=self.target,
            dynamic_max=self.dynamic_max,
            static_max=self.static_max,
        )


def policy_value(policy: AccountingPolicy, constraints: Constraints) -> int:
    """The byte value a policy picks from a VM's limits."""
    match policy:
        case AccountingPolicy.STATIC_MAX:
            return constraints.static_max
        case AccountingPolicy.DYNAMIC_MAX:
            return constraints.dynamic_max
        case AccountingPolicy.DYNAMIC_MIN:
            return constraints.dynamic_min


def overhead_bytes(vm: VmMemory, multiplier: float) -> int:
    """The model's overhead for the VM at `multiplier`, in bytes; static_max rounds up to MiB.

    Callers choose the multiplier: xapi and xenopsd each apply their own rule (§2.3).
    """
    model = model_for(vm.domain_type)
    static_max_mib = mib_of_bytes_used(vm.static_max)
    return bytes_of_mib(model.overhead_mib(static_max_mib, vm.vcpus_max, multiplier))


def compute_memory_overhead(vm: VmMemory) -> int:
    """VM.compute_memory_overhead and the stored VM.memory_overhead, in bytes.

    Uses the VM's own shadow multiplier for every domain type, PV included (§2.3).
    """
    return overhead_bytes(vm, vm.shadow_multiplier)


def start_policy(domain_type: DomainType) -> AccountingPolicy:
    """PV-in-PVH must start at full size; every other type may start ballooned down (§4.3)."""
    if domain_type is DomainType.PV_IN_PVH:
        return AccountingPolicy.STATIC_MAX
    return AccountingPolicy.DYNAMIC_MIN


def required_memory(vm: VmMemory, policy: AccountingPolicy) -> int:
    """Bytes of host memory a VM needs to run at the policy's target (vm_compute_required_memory).

    The start requirement uses multiplier 1.0 for PV, unlike the stored overhead (§2.3).
    """
    model = model_for(vm.domain_type)
    multiplier = (
        DEFAULT_SHADOW_MULTIPLIER if vm.domain_type is DomainType.PV else vm.shadow_multiplier
    )
    # xapi rounds bytes up to KiB, then KiB up to MiB; for exact divisors that is ceil(bytes/MiB).
    target_mib = mib_of_bytes_used(policy_value(policy, vm.constraints))
    static_max_mib = mib_of_bytes_used(vm.static_max)
    return bytes_of_mib(model.footprint_mib(target_mib, static_max_mib, vm.vcpus_max, multiplier))


def start_requirement(vm: VmMemory) -> int:
    """Bytes a host must have free for the VM to start, resume or arrive (§4.3)."""
    return required_memory(vm, start_policy(vm.domain_type))


def used_memory(policy: AccountingPolicy, constraints: Constraints, stored_overhead: int) -> int:
    """What one resident or scheduled VM costs its host (vm_compute_used_memory, §4.2).

    Raw bytes: the stored overhead as it is, no MiB rounding.
    """
    return policy_value(policy, constraints) + stored_overhead


def _in_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def fits_int64(vm: VmMemory) -> bool:
    """Whether every number derived from the VM's memory settings fits in a signed 64-bit
    int: its overhead and its footprint at each of its limits, for every domain type (a
    type change recomputes nothing) and both multipliers in use (its own; 1.0).

    xapi computes these in Int64 and wraps silently (a static_max within 1 MiB of the top,
    or a huge multiplier or vCPU count, gives a small or negative overhead); xenmem
    refuses such settings instead.
    """
    static_max_mib = mib_of_bytes_used(vm.static_max)
    limits = (vm.static_max, vm.dynamic_max, vm.dynamic_min)
    for model in MODELS:
        for multiplier in (vm.shadow_multiplier, DEFAULT_SHADOW_MULTIPLIER):
            # The float product first: an infinite one has no int.
            shadow = model.shadow_base_mib(static_max_mib, vm.vcpus_max) * multiplier
            if shadow > INT64_MAX / bytes_of_mib(1):
                return False
            overhead_mib = model.overhead_mib(static_max_mib, vm.vcpus_max, multiplier)
            footprints = (mib_of_bytes_used(limit) + overhead_mib for limit in limits)
            if not all(_in_int64(bytes_of_mib(mib)) for mib in (overhead_mib, *footprints)):
                return False
    return True


def _shown(value: int | float) -> str:
    return ocaml_string_of_float(value) if isinstance(value, float) else str(value)


def assert_fits_int64(vm: VmMemory, field: str, value: int | float) -> None:
    """INVALID_VALUE [field, value] unless `fits_int64(vm)`; `field` names the setting
    whose new `value` made `vm`."""
    if not fits_int64(vm):
        raise INVALID_VALUE(field, _shown(value))


def int64_culprit(vm: VmMemory) -> tuple[str, str] | None:
    """None for a VM that fits in int64; else the first of its settings (VM field name and
    value, as INVALID_VALUE gives them) that takes it out, adding them one at a time."""
    if fits_int64(vm):
        return None
    plain = replace(vm, dynamic_min=0, dynamic_max=0, vcpus_max=1, shadow_multiplier=1.0)
    steps: tuple[tuple[str, int | float, VmMemory], ...] = (
        ("memory_static_max", vm.static_max, plain),
        ("memory_dynamic_max", vm.dynamic_max, replace(plain, dynamic_max=vm.dynamic_max)),
        ("memory_dynamic_min", vm.dynamic_min, replace(vm, vcpus_max=1, shadow_multiplier=1.0)),
        ("VCPUs_max", vm.vcpus_max, replace(vm, shadow_multiplier=1.0)),
        ("HVM_shadow_multiplier", vm.shadow_multiplier, vm),
    )
    field, value = next((f, v) for f, v, partial in steps if not fits_int64(partial))
    return field, _shown(value)
