"""The footprint model (xapi-memory.md §2.1–2.2) and its worked examples (§2.4)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenmem.errors import XenAPIError
from xenmem.memory import DomainType, MemoryModel, model_for

HVM = model_for(DomainType.HVM)
PV = model_for(DomainType.PV)
PV_IN_PVH = model_for(DomainType.PV_IN_PVH)


def test_example_a_hvm_4gib_2_vcpus() -> None:
    assert HVM.shadow_mib(4096, 2, 1.0) == 34
    assert HVM.vcpu_xen_mib(2) == 1
    assert HVM.overhead_mib(4096, 2, 1.0) == 37
    assert HVM.xen_max_mib(4096) == 4097
    assert HVM.build_max_mib(4096, 4) == 4092
    assert HVM.footprint_mib(4096, 4096, 2, 1.0) == 4133
    assert HVM.footprint_mib(2048, 4096, 2, 1.0) == 2085


def test_example_b_pv_1gib_1_vcpu() -> None:
    assert PV.shadow_mib(1024, 1, 1.0) == 9
    assert PV.overhead_mib(1024, 1, 1.0) == 11
    assert PV.overhead_mib(1024, 1, 2.0) == 20
    assert PV.xen_max_mib(1024) == 1024


def test_example_c_pv_in_pvh_8gib_4_vcpus() -> None:
    assert PV_IN_PVH.shadow_mib(8192, 4, 1.0) == 68
    assert PV_IN_PVH.shim_mib(8192) == 114
    assert PV_IN_PVH.overhead_mib(8192, 4, 1.0) == 185
    assert PV_IN_PVH.xen_max_mib(8192) == 8307
    assert PV_IN_PVH.footprint_mib(8192, 8192, 4, 1.0) == 8377


def test_pvh_uses_the_hvm_model() -> None:
    assert model_for(DomainType.PVH) is HVM


def test_model_parameters_per_domain_type() -> None:
    assert (HVM.extra_internal_mib, HVM.extra_external_mib, HVM.shim_mib(9000)) == (1, 1, 0)
    assert (PV.extra_internal_mib, PV.extra_external_mib, PV.shim_mib(9000)) == (0, 1, 0)
    assert (PV_IN_PVH.extra_internal_mib, PV_IN_PVH.extra_external_mib) == (1, 1)
    assert [m.xen_max_offset_mib for m in (HVM, PV, PV_IN_PVH)] == [1, 0, 1]
    assert all(m.can_start_ballooned_down for m in (HVM, PV, PV_IN_PVH))


def test_unspecified_domain_type_is_an_internal_error() -> None:
    with pytest.raises(XenAPIError) as caught:
        model_for(DomainType.UNSPECIFIED)
    assert caught.value.description == ["INTERNAL_ERROR", "unspecified domain type"]


@pytest.mark.parametrize(
    ("vcpus", "mib"),
    [(1, 1), (6, 1), (7, 2), (13, 2), (14, 3), (20, 3), (32, 5), (64, 10)],
)
def test_per_vcpu_xen_term(vcpus: int, mib: int) -> None:
    assert HVM.vcpu_xen_mib(vcpus) == mib


def test_shadow_rounds_pages_up_to_whole_mib() -> None:
    # 256 + 2 * 1 pages = 258 pages -> 2 MiB.
    assert HVM.shadow_mib(1, 1, 1.0) == 2


def test_shadow_multiplier_product_truncates() -> None:
    # T = (256 + 2 * 2048) / 256 = 17; 17 * 1.5 = 25.5 -> 25.
    assert HVM.shadow_mib(2048, 1, 1.5) == 25


def test_shadow_is_at_least_one_mib() -> None:
    assert HVM.shadow_mib(0, 0, 1.0) == 1


def test_pv_in_pvh_shim_history_uses_23_plus_smax_div_90() -> None:
    assert [PV_IN_PVH.shim_mib(m) for m in (0, 89, 90, 179, 180)] == [23, 23, 24, 24, 25]


def test_build_start_sizes_the_shim_on_the_target() -> None:
    # Target 900 MiB, video 4: 900 - 4 + (23 + 10) = 929, whatever static_max is.
    assert PV_IN_PVH.build_start_mib(900, 4) == 929
    assert PV_IN_PVH.build_claim_pages(900, 4) == 929 * 256
    assert PV_IN_PVH.build_max_mib(8192, 4) == 8192 - 4 + 114
    assert HVM.build_start_mib(900, 4) == 896


models = st.sampled_from([HVM, PV, PV_IN_PVH])
static_max = st.integers(min_value=0, max_value=2**24)
vcpus = st.integers(min_value=1, max_value=512)
multipliers = st.floats(min_value=1.0, max_value=64.0)


@given(models, static_max, static_max, vcpus, multipliers)
def test_overhead_never_decreases_with_static_max(
    model: MemoryModel, a: int, b: int, v: int, k: float
) -> None:
    low, high = sorted((a, b))
    assert model.overhead_mib(low, v, k) <= model.overhead_mib(high, v, k)


@given(models, static_max, vcpus, vcpus, multipliers)
def test_overhead_never_decreases_with_vcpus(
    model: MemoryModel, m: int, a: int, b: int, k: float
) -> None:
    low, high = sorted((a, b))
    assert model.overhead_mib(m, low, k) <= model.overhead_mib(m, high, k)


@given(models, static_max, vcpus, multipliers, multipliers)
def test_overhead_never_decreases_with_multiplier(
    model: MemoryModel, m: int, v: int, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert model.overhead_mib(m, v, low) <= model.overhead_mib(m, v, high)


@given(models, static_max, static_max, vcpus, multipliers)
def test_footprint_never_decreases_with_target(
    model: MemoryModel, a: int, b: int, v: int, k: float
) -> None:
    low, high = sorted((a, b))
    assert model.footprint_mib(low, high, v, k) <= model.footprint_mib(high, high, v, k)
