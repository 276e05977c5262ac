"""How xapi feeds a VM's record into the footprint model (xapi-memory.md §2.3, §4.1, §4.3)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from xenmem.memory.constraints import Constraints
from xenmem.memory.model import DEFAULT_SHADOW_MULTIPLIER, DomainType, model_for
from xenmem.memory.units import bytes_of_mib, mib_of_bytes_used

__all__ = [
    "AccountingPolicy",
    "VmMemory",
    "compute_memory_overhead",
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


def compute_memory_overhead(vm: VmMemory) -> int:
    """VM.compute_memory_overhead and the stored VM.memory_overhead, in bytes.

    Uses the VM's own shadow multiplier for every domain type, PV included (§2.3).
    """
    model = model_for(vm.domain_type)
    static_max_mib = mib_of_bytes_used(vm.static_max)
    return bytes_of_mib(model.overhead_mib(static_max_mib, vm.vcpus_max, vm.shadow_multiplier))


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
