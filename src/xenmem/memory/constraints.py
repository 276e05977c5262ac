"""VM memory constraints: the record, its predicates and xapi's rules (xapi-memory.md §3).

All values are bytes. Setters are pure functions from a constraint record to a new one;
they raise the exact XenAPI error xapi raises, and never round or align values (§1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from xenmem.errors import (
    INVALID_VALUE,
    MEMORY_CONSTRAINT_VIOLATION,
    MEMORY_CONSTRAINT_VIOLATION_MAXPIN,
    MEMORY_CONSTRAINT_VIOLATION_ORDER,
    VALUE_NOT_SUPPORTED,
)

__all__ = [
    "VCPU_ORDER",
    "Constraints",
    "ValidationContext",
    "assert_valid_for_context",
    "ocaml_string_of_float",
    "validate_basic_parameters",
    "validate_memory",
    "validate_new_vcpus_at_startup",
    "validate_new_vcpus_max",
    "validate_shadow_multiplier",
    "validate_vcpus",
    "with_dynamic_range",
    "with_limits",
    "with_memory",
    "with_static_range",
]


@dataclass(frozen=True, kw_only=True)
class Constraints:
    """(static_min, dynamic_min, target, dynamic_max, static_max), in bytes."""

    static_min: int
    dynamic_min: int
    target: int
    dynamic_max: int
    static_max: int

    @property
    def are_valid(self) -> bool:
        """static_min <= dynamic_min <= dynamic_max <= static_max; target is ignored."""
        return self.static_min <= self.dynamic_min <= self.dynamic_max <= self.static_max

    @property
    def are_pinned(self) -> bool:
        return self.dynamic_min == self.dynamic_max

    @property
    def are_pinned_at_static_max(self) -> bool:
        return self.are_pinned and self.dynamic_max == self.static_max

    @property
    def are_valid_and_pinned_at_static_max(self) -> bool:
        return self.static_min <= self.dynamic_min and self.are_pinned_at_static_max

    def transform(self) -> Constraints | None:
        """Coerce into a valid record, or None ("impossible") when the ranges are inverted.

        Dynamic values are clamped into the static range, then the target into the new
        dynamic range; static values never change.
        """
        if self.static_max < self.static_min or self.dynamic_max < self.dynamic_min:
            return None
        dynamic_min = _clamp(self.dynamic_min, self.static_min, self.static_max)
        dynamic_max = _clamp(self.dynamic_max, self.static_min, self.static_max)
        return replace(
            self,
            dynamic_min=dynamic_min,
            dynamic_max=dynamic_max,
            target=_clamp(self.target, dynamic_min, dynamic_max),
        )

    def reset_to_safe_defaults(self) -> Constraints:
        """Pin everything at static_max (import of a VM exported before DMC existed)."""
        return Constraints(
            static_min=min(self.static_min, self.static_max),
            dynamic_min=self.static_max,
            target=self.static_max,
            dynamic_max=self.static_max,
            static_max=self.static_max,
        )


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


@dataclass(frozen=True, kw_only=True)
class ValidationContext:
    """What decides which constraint rule applies to a VM (§3.2)."""

    dmc_enabled: bool = True
    is_control_domain: bool = False
    nested_virt: bool = False


def assert_valid_for_context(constraints: Constraints, context: ValidationContext) -> None:
    """xapi's assert_valid_for_current_context, its rules tried in order (§3.2)."""
    if not context.dmc_enabled:
        pin_reason: str | None = "DMC disabled"
    elif context.is_control_domain:
        pin_reason = "control domain"
    elif context.nested_virt:
        pin_reason = "nested virt"
    else:
        pin_reason = None
    if pin_reason is not None:
        if not constraints.are_valid_and_pinned_at_static_max:
            raise MEMORY_CONSTRAINT_VIOLATION_MAXPIN(pin_reason)
    elif not constraints.are_valid:
        raise MEMORY_CONSTRAINT_VIOLATION_ORDER()


def with_dynamic_range(
    constraints: Constraints, context: ValidationContext, minimum: int, maximum: int
) -> Constraints:
    """VM.set_memory_dynamic_range: the target follows the new dynamic_min (§3.4)."""
    updated = replace(constraints, dynamic_min=minimum, target=minimum, dynamic_max=maximum)
    assert_valid_for_context(updated, context)
    return updated


def with_static_range(
    constraints: Constraints, context: ValidationContext, minimum: int, maximum: int
) -> Constraints:
    """VM.set_memory_static_range: dynamic values and target are kept (§3.4)."""
    updated = replace(constraints, static_min=minimum, static_max=maximum)
    assert_valid_for_context(updated, context)
    return updated


def with_limits(
    context: ValidationContext,
    *,
    static_min: int,
    static_max: int,
    dynamic_min: int,
    dynamic_max: int,
) -> Constraints:
    """VM.set_memory_limits: all four limits, and the target set to dynamic_min (§3.4)."""
    updated = Constraints(
        static_min=static_min,
        dynamic_min=dynamic_min,
        target=dynamic_min,
        dynamic_max=dynamic_max,
        static_max=static_max,
    )
    assert_valid_for_context(updated, context)
    return updated


def with_memory(constraints: Constraints, context: ValidationContext, value: int) -> Constraints:
    """VM.set_memory: static_max, dynamic range and target all set to `value` (§3.4)."""
    return with_limits(
        context,
        static_min=constraints.static_min,
        static_max=value,
        dynamic_min=value,
        dynamic_max=value,
    )


def ocaml_string_of_float(value: float) -> str:
    """OCaml's string_of_float: "%.12g", with a trailing "." when it looks like an int."""
    text = f"{value:.12g}"
    if all(ch in "-0123456789" for ch in text):
        text += "."
    return text


# The vCPU setters' error text, UTF-8 "≤" included (xapi_vm set_VCPUs_max/_at_startup).
VCPU_ORDER = "VCPU values must satisfy: 0 < VCPUs_at_startup \u2264 VCPUs_max"


def validate_new_vcpus_max(value: int, vcpus_at_startup: int) -> None:
    """VM.set_VCPUs_max: at least 1 and at least VCPUs_at_startup (no upper bound)."""
    if value < 1 or value < vcpus_at_startup:
        raise INVALID_VALUE(VCPU_ORDER, value)


def validate_new_vcpus_at_startup(value: int, vcpus_max: int) -> None:
    """VM.set_VCPUs_at_startup: at least 1 and at most VCPUs_max."""
    if value < 1 or value > vcpus_max:
        raise INVALID_VALUE(VCPU_ORDER, value)


def validate_vcpus(vcpus_max: int, vcpus_at_startup: int) -> None:
    """The boot-time vCPU check (validate_basic_parameters), with its own errors."""
    if vcpus_max < 1:
        raise INVALID_VALUE("VCPUs_max", vcpus_max)
    if vcpus_at_startup < 1:
        raise INVALID_VALUE("VCPUs-at-startup", vcpus_at_startup)
    if vcpus_at_startup > vcpus_max:
        raise VALUE_NOT_SUPPORTED(
            "VCPUs-at-startup", vcpus_at_startup, "value greater than VCPUs-max"
        )


def validate_memory(constraints: Constraints) -> None:
    """Boot-time check: only that `transform` succeeds; sent with no parameter (§3.3)."""
    if constraints.transform() is None:
        raise MEMORY_CONSTRAINT_VIOLATION()


def validate_shadow_multiplier(multiplier: float, field: str = "HVM_shadow_multiplier") -> None:
    """Multipliers below 1.0 are refused; the setters name the field "multiplier"."""
    # `not >=` also refuses NaN, which xapi's `< 1.0` test would let through into Xen.
    if not multiplier >= 1.0:
        raise INVALID_VALUE(field, ocaml_string_of_float(multiplier))


def validate_basic_parameters(
    *,
    vcpus_max: int,
    vcpus_at_startup: int,
    constraints: Constraints,
    shadow_multiplier: float,
) -> None:
    """The boot-time checks in xapi's order: vCPUs, memory, shadow multiplier (§3.3)."""
    validate_vcpus(vcpus_max, vcpus_at_startup)
    validate_memory(constraints)
    validate_shadow_multiplier(shadow_multiplier)
