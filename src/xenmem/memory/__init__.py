"""Pure arithmetic of xapi's memory accounting: units, footprint model, constraints, accounting.

No I/O, no clock, no globals: inputs in, numbers or XenAPI errors out.
"""

from xenmem.memory.accounting import (
    APPROXIMATE_VCPUS,
    HOST_RESERVED_KIB,
    assert_enough_memory,
    bisect,
    host_free_memory,
    host_memory_overhead,
    maximise_memory,
)
from xenmem.memory.constraints import (
    Constraints,
    ValidationContext,
    assert_valid_for_context,
    ocaml_string_of_float,
    validate_basic_parameters,
    validate_memory,
    validate_shadow_multiplier,
    validate_vcpus,
    with_dynamic_range,
    with_limits,
    with_memory,
    with_static_range,
)
from xenmem.memory.model import DEFAULT_SHADOW_MULTIPLIER, DomainType, MemoryModel, model_for
from xenmem.memory.placement import (
    Category,
    GuestLimits,
    HostSummary,
    biased_index,
    score,
    select_host,
    summarize_host,
)
from xenmem.memory.units import SizeParseError, parse_size
from xenmem.memory.vm import (
    AccountingPolicy,
    VmMemory,
    compute_memory_overhead,
    policy_value,
    required_memory,
    start_policy,
    start_requirement,
    used_memory,
)

__all__ = [
    "APPROXIMATE_VCPUS",
    "DEFAULT_SHADOW_MULTIPLIER",
    "HOST_RESERVED_KIB",
    "AccountingPolicy",
    "Category",
    "Constraints",
    "DomainType",
    "GuestLimits",
    "HostSummary",
    "MemoryModel",
    "SizeParseError",
    "ValidationContext",
    "VmMemory",
    "assert_enough_memory",
    "assert_valid_for_context",
    "biased_index",
    "bisect",
    "compute_memory_overhead",
    "host_free_memory",
    "host_memory_overhead",
    "maximise_memory",
    "model_for",
    "ocaml_string_of_float",
    "parse_size",
    "policy_value",
    "required_memory",
    "score",
    "select_host",
    "start_policy",
    "start_requirement",
    "summarize_host",
    "used_memory",
    "validate_basic_parameters",
    "validate_memory",
    "validate_shadow_multiplier",
    "validate_vcpus",
    "with_dynamic_range",
    "with_limits",
    "with_memory",
    "with_static_range",
]
