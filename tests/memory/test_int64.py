"""64-bit bounds: settings whose overhead or footprint would leave int64 are known as such.

xapi computes in Int64 and wraps silently; xenmem refuses those settings, so no number it
derives from a VM's settings (overhead, start footprint, xenopsd's reservation) and then
stores or sends is outside signed 64-bit.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenmem.errors import XenAPIError
from xenmem.memory import (
    AccountingPolicy,
    DomainType,
    VmMemory,
    assert_fits_int64,
    compute_memory_overhead,
    fits_int64,
    int64_culprit,
    maximise_memory,
    required_memory,
)
from xenmem.memory.domain_build import xenopsd_overhead_bytes
from xenmem.memory.units import INT64_MAX, INT64_MIN

MIB = 2**20
GIB = 2**30
TIB = 2**40
VM = VmMemory(
    domain_type=DomainType.HVM,
    static_min=GIB,
    dynamic_min=GIB,
    dynamic_max=GIB,
    static_max=GIB,
    vcpus_max=1,
)
CONCRETE_TYPES = [t for t in DomainType if t is not DomainType.UNSPECIFIED]


def derived(vm: VmMemory) -> list[int]:
    """Every number xenmem derives from the settings, for every concrete domain type."""
    numbers = []
    for domain_type in CONCRETE_TYPES:
        typed = replace(vm, domain_type=domain_type)
        numbers.append(compute_memory_overhead(typed))
        numbers.append(xenopsd_overhead_bytes(typed))
        numbers += [required_memory(typed, policy) for policy in AccountingPolicy]
    return numbers


def test_ordinary_settings_fit() -> None:
    assert fits_int64(VM)
    assert fits_int64(replace(VM, static_max=TIB, dynamic_max=TIB, vcpus_max=1024))
    assert fits_int64(replace(VM, shadow_multiplier=1000.0))


@pytest.mark.parametrize(
    ("vm", "field", "value"),
    [
        # Rounding up to whole MiB alone takes these past the top.
        (replace(VM, static_max=INT64_MAX), "memory_static_max", str(INT64_MAX)),
        (
            replace(VM, static_max=INT64_MAX - MIB + 2),
            "memory_static_max",
            str(INT64_MAX - MIB + 2),
        ),
        (replace(VM, dynamic_min=INT64_MAX), "memory_dynamic_min", str(INT64_MAX)),
        (replace(VM, vcpus_max=2**60), "VCPUs_max", str(2**60)),
        (replace(VM, vcpus_max=-(2**60)), "VCPUs_max", str(-(2**60))),
        (replace(VM, shadow_multiplier=1e300), "HVM_shadow_multiplier", "1e+300"),
        (replace(VM, shadow_multiplier=2.0**60), "HVM_shadow_multiplier", "1.15292150461e+18"),
    ],
)
def test_the_first_setting_that_leaves_int64_is_named(vm: VmMemory, field: str, value: str) -> None:
    assert not fits_int64(vm)
    assert int64_culprit(vm) == (field, value)
    with pytest.raises(XenAPIError) as caught:
        assert_fits_int64(vm, "the field", 7)
    assert caught.value.description == ["INVALID_VALUE", "the field", "7"]


def test_a_negative_multiplier_gives_the_least_shadow_as_xapi() -> None:
    """xapi's Int64.of_float of a product below 1 (even -inf) ends at `max 1L`: 1 MiB."""
    vm = replace(VM, static_max=2**62, shadow_multiplier=-1e300)
    assert fits_int64(vm)
    assert compute_memory_overhead(vm) == compute_memory_overhead(
        replace(vm, shadow_multiplier=0.0)
    )


int64s = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)


@given(
    static_max=st.one_of(int64s, st.integers(min_value=0, max_value=2**63 - 1)),
    dynamic_min=int64s,
    dynamic_max=int64s,
    vcpus=st.one_of(int64s, st.integers(min_value=1, max_value=4096)),
    multiplier=st.floats(allow_nan=False, allow_infinity=False),
)
def test_settings_that_fit_derive_only_int64_numbers(
    static_max: int, dynamic_min: int, dynamic_max: int, vcpus: int, multiplier: float
) -> None:
    vm = VmMemory(
        domain_type=DomainType.HVM,
        static_min=0,
        dynamic_min=dynamic_min,
        dynamic_max=dynamic_max,
        static_max=static_max,
        vcpus_max=vcpus,
        shadow_multiplier=multiplier,
    )
    if fits_int64(vm):
        assert int64_culprit(vm) is None
        assert all(INT64_MIN <= n <= INT64_MAX for n in derived(vm))
    else:
        assert int64_culprit(vm) is not None


def test_maximise_memory_refuses_a_negative_total() -> None:
    with pytest.raises(XenAPIError) as caught:
        maximise_memory(VM, -1, approximate=False)
    assert caught.value.description == ["INVALID_VALUE", "total", "-1"]
    assert maximise_memory(VM, 0, approximate=False) == 0
