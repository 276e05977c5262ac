"""Constraints, setters and boot-time checks (xapi-memory.md §3)."""

import math
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenmem.errors import XenAPIError
from xenmem.memory import (
    Constraints,
    ValidationContext,
    assert_valid_for_context,
    ocaml_string_of_float,
    validate_basic_parameters,
    validate_memory,
    validate_shadow_multiplier,
    with_dynamic_range,
    with_limits,
    with_memory,
    with_static_range,
)

MIB = 1048576
GIB = 1024 * MIB
ORDINARY = ValidationContext()
DMC_OFF = ValidationContext(dmc_enabled=False)


def mib(smin: int, dmin: int, target: int, dmax: int, smax: int) -> Constraints:
    return Constraints(
        static_min=smin * MIB,
        dynamic_min=dmin * MIB,
        target=target * MIB,
        dynamic_max=dmax * MIB,
        static_max=smax * MIB,
    )


START = mib(256, 512, 512, 1024, 1024)


def error_of(call: Callable[[], object]) -> list[str]:
    with pytest.raises(XenAPIError) as caught:
        call()
    return caught.value.description


# §3.5, every example, as pure functions on the constraint record.


def test_set_dynamic_range_moves_target_to_dynamic_min() -> None:
    assert with_dynamic_range(START, ORDINARY, 768 * MIB, 1024 * MIB) == mib(
        256, 768, 768, 1024, 1024
    )


def test_set_dynamic_range_inverted_is_order() -> None:
    assert error_of(lambda: with_dynamic_range(START, ORDINARY, 1024 * MIB, 768 * MIB)) == [
        "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    ]


def test_set_dynamic_max_above_static_max_is_order() -> None:
    assert error_of(lambda: with_dynamic_range(START, ORDINARY, START.dynamic_min, 2048 * MIB)) == [
        "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    ]


def test_set_static_max_below_dynamic_max_is_order() -> None:
    assert error_of(lambda: with_static_range(START, ORDINARY, START.static_min, 768 * MIB)) == [
        "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    ]


def test_set_static_range_keeps_dynamic_values() -> None:
    assert with_static_range(START, ORDINARY, 128 * MIB, 2048 * MIB) == mib(
        128, 512, 512, 1024, 2048
    )


def test_set_memory_pins_everything_but_static_min() -> None:
    assert with_memory(START, ORDINARY, 2 * GIB) == mib(256, 2048, 2048, 2048, 2048)


def test_set_memory_below_static_min_is_order() -> None:
    assert error_of(lambda: with_memory(START, ORDINARY, 128 * MIB)) == [
        "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    ]


def test_set_memory_limits_sets_target_to_dynamic_min() -> None:
    assert with_limits(
        ORDINARY, static_min=0, static_max=4 * GIB, dynamic_min=GIB, dynamic_max=2 * GIB
    ) == mib(0, 1024, 1024, 2048, 4096)


def test_dmc_disabled_requires_pinning_at_static_max() -> None:
    assert error_of(lambda: with_dynamic_range(START, DMC_OFF, 512 * MIB, 1024 * MIB)) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "DMC disabled",
    ]
    assert with_memory(START, DMC_OFF, 256 * MIB) == mib(256, 256, 256, 256, 256)
    assert with_memory(START, DMC_OFF, 8 * GIB).are_pinned_at_static_max


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        (
            ValidationContext(dmc_enabled=False, is_control_domain=True, nested_virt=True),
            "DMC disabled",
        ),
        (ValidationContext(is_control_domain=True, nested_virt=True), "control domain"),
        (ValidationContext(nested_virt=True), "nested virt"),
    ],
)
def test_context_rules_apply_in_xapi_order(context: ValidationContext, reason: str) -> None:
    assert error_of(lambda: assert_valid_for_context(START, context)) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        reason,
    ]


def test_pinned_context_still_requires_static_min_below() -> None:
    pinned_under_smin = mib(2048, 1024, 1024, 1024, 1024)
    assert error_of(lambda: assert_valid_for_context(pinned_under_smin, DMC_OFF)) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "DMC disabled",
    ]


def test_predicates() -> None:
    assert START.are_valid
    assert not START.are_pinned
    pinned = mib(256, 1024, 0, 1024, 2048)
    assert pinned.are_pinned and not pinned.are_pinned_at_static_max
    at_max = mib(256, 1024, 7, 1024, 1024)
    assert at_max.are_pinned_at_static_max and at_max.are_valid_and_pinned_at_static_max
    # The target is ignored by every predicate.
    assert replace(START, target=10**15).are_valid


def test_transform_clamps_dynamic_then_target() -> None:
    out_of_order = mib(512, 256, 4096, 4096, 2048)
    assert out_of_order.transform() == mib(512, 512, 2048, 2048, 2048)


@pytest.mark.parametrize("record", [mib(2048, 512, 512, 1024, 1024), mib(0, 1024, 0, 512, 2048)])
def test_transform_of_inverted_ranges_is_impossible(record: Constraints) -> None:
    assert record.transform() is None


def test_reset_to_safe_defaults_pins_at_static_max() -> None:
    assert mib(4096, 1, 2, 3, 2048).reset_to_safe_defaults() == mib(2048, 2048, 2048, 2048, 2048)
    assert START.reset_to_safe_defaults() == mib(256, 1024, 1024, 1024, 1024)


sizes = st.integers(min_value=0, max_value=2**44)
records = st.builds(
    Constraints,
    static_min=sizes,
    dynamic_min=sizes,
    target=sizes,
    dynamic_max=sizes,
    static_max=sizes,
)


@given(records)
def test_transform_is_valid_or_impossible(record: Constraints) -> None:
    result = record.transform()
    inverted = record.static_max < record.static_min or record.dynamic_max < record.dynamic_min
    assert (result is None) == inverted
    if result is not None:
        assert result.are_valid
        assert result.dynamic_min <= result.target <= result.dynamic_max
        assert (result.static_min, result.static_max) == (record.static_min, record.static_max)


@given(records)
def test_reset_to_safe_defaults_is_always_valid_and_pinned(record: Constraints) -> None:
    assert record.reset_to_safe_defaults().are_valid_and_pinned_at_static_max


# §3.3 boot-time checks.


def boot_check(
    *,
    vcpus_max: int = 2,
    vcpus_at_startup: int = 2,
    constraints: Constraints = START,
    shadow_multiplier: float = 1.0,
) -> list[str]:
    return error_of(
        lambda: validate_basic_parameters(
            vcpus_max=vcpus_max,
            vcpus_at_startup=vcpus_at_startup,
            constraints=constraints,
            shadow_multiplier=shadow_multiplier,
        )
    )


def test_boot_checks_pass_coercible_out_of_order_values() -> None:
    validate_basic_parameters(
        vcpus_max=1,
        vcpus_at_startup=1,
        constraints=mib(512, 256, 0, 4096, 2048),
        shadow_multiplier=1.0,
    )


def test_boot_check_errors_and_params() -> None:
    assert boot_check(vcpus_max=0) == ["INVALID_VALUE", "VCPUs_max", "0"]
    assert boot_check(vcpus_at_startup=0) == ["INVALID_VALUE", "VCPUs-at-startup", "0"]
    assert boot_check(vcpus_at_startup=3) == [
        "VALUE_NOT_SUPPORTED",
        "VCPUs-at-startup",
        "3",
        "value greater than VCPUs-max",
    ]
    assert boot_check(constraints=mib(2048, 512, 512, 1024, 1024)) == [
        "MEMORY_CONSTRAINT_VIOLATION"
    ]
    assert boot_check(shadow_multiplier=0.5) == ["INVALID_VALUE", "HVM_shadow_multiplier", "0.5"]


def test_boot_checks_run_vcpus_then_memory_then_multiplier() -> None:
    broken_memory = mib(2048, 512, 512, 1024, 1024)
    assert boot_check(vcpus_max=0, constraints=broken_memory, shadow_multiplier=0.0)[1] == (
        "VCPUs_max"
    )
    assert boot_check(constraints=broken_memory, shadow_multiplier=0.0) == [
        "MEMORY_CONSTRAINT_VIOLATION"
    ]


def test_validate_memory_alone() -> None:
    validate_memory(START)
    assert error_of(lambda: validate_memory(mib(0, 2, 0, 1, 4))) == ["MEMORY_CONSTRAINT_VIOLATION"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.5, "0.5"), (0.0, "0."), (1.0, "1."), (-2.0, "-2."), (0.25, "0.25"), (1e-20, "1e-20")],
)
def test_ocaml_string_of_float(value: float, text: str) -> None:
    assert ocaml_string_of_float(value) == text


def test_setter_multiplier_errors_name_the_field_multiplier() -> None:
    assert error_of(lambda: validate_shadow_multiplier(0.0, "multiplier")) == [
        "INVALID_VALUE",
        "multiplier",
        "0.",
    ]
    validate_shadow_multiplier(1.0)
    assert error_of(lambda: validate_shadow_multiplier(math.nan))[0] == "INVALID_VALUE"
