"""Free memory, admission, maximise_memory and host overhead (xapi-memory.md §2.3, §2.5, §4, §5)."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenmem.errors import XenAPIError
from xenmem.memory import (
    AccountingPolicy,
    DomainType,
    VmMemory,
    assert_enough_memory,
    bisect,
    compute_memory_overhead,
    host_free_memory,
    host_memory_overhead,
    maximise_memory,
    required_memory,
    start_policy,
    start_requirement,
    used_memory,
)

MIB = 1048576
GIB = 1024 * MIB


def vm(
    domain_type: DomainType,
    *,
    static_max: int,
    vcpus: int,
    dynamic_min: int | None = None,
    multiplier: float = 1.0,
) -> VmMemory:
    dmin = static_max if dynamic_min is None else dynamic_min
    return VmMemory(
        domain_type=domain_type,
        static_min=0,
        dynamic_min=dmin,
        target=dmin,
        dynamic_max=static_max,
        static_max=static_max,
        vcpus_max=vcpus,
        shadow_multiplier=multiplier,
    )


HVM_A = vm(DomainType.HVM, static_max=4 * GIB, vcpus=2, dynamic_min=2 * GIB)
PV_B = vm(DomainType.PV, static_max=GIB, vcpus=1)
PVH_C = vm(DomainType.PV_IN_PVH, static_max=8 * GIB, vcpus=4, dynamic_min=GIB)


def test_stored_overhead_examples() -> None:
    assert compute_memory_overhead(HVM_A) == 38797312
    assert compute_memory_overhead(PV_B) == 11534336
    assert compute_memory_overhead(PVH_C) == 193986560


def test_pvh_matches_hvm() -> None:
    assert compute_memory_overhead(replace(HVM_A, domain_type=DomainType.PVH)) == 38797312
    assert start_requirement(replace(HVM_A, domain_type=DomainType.PVH)) == 2186280960


def test_pv_stored_overhead_uses_the_multiplier_but_start_check_does_not() -> None:
    doubled = replace(PV_B, shadow_multiplier=2.0)
    assert compute_memory_overhead(doubled) == 20971520
    assert start_requirement(doubled) == (1024 + 11) * MIB


def test_hvm_start_check_uses_the_multiplier() -> None:
    doubled = replace(HVM_A, shadow_multiplier=2.0)
    assert start_requirement(doubled) == (2048 + 1 + 1 + 68 + 1) * MIB


def test_start_requirement_examples() -> None:
    assert start_requirement(HVM_A) == 2186280960
    # PV-in-PVH always starts at static_max, whatever dynamic_min says.
    assert start_requirement(PVH_C) == 8783921152


def test_start_policy_per_domain_type() -> None:
    assert start_policy(DomainType.PV_IN_PVH) is AccountingPolicy.STATIC_MAX
    for domain_type in (DomainType.HVM, DomainType.PV, DomainType.PVH):
        assert start_policy(domain_type) is AccountingPolicy.DYNAMIC_MIN


def test_required_memory_rounds_the_target_up_to_whole_mib() -> None:
    odd = replace(HVM_A, dynamic_min=2 * GIB + 1)
    assert required_memory(odd, AccountingPolicy.DYNAMIC_MIN) == (2049 + 37) * MIB
    assert required_memory(odd, AccountingPolicy.DYNAMIC_MAX) == (4096 + 37) * MIB
    assert required_memory(odd, AccountingPolicy.STATIC_MAX) == (4096 + 37) * MIB


def test_static_max_rounds_up_to_whole_mib_in_the_model() -> None:
    assert compute_memory_overhead(replace(PV_B, static_max=GIB + 1)) == (0 + 1 + 10 + 1) * MIB


# §4.2


def test_host_free_memory_example() -> None:
    resident = used_memory(AccountingPolicy.DYNAMIC_MIN, HVM_A.constraints, 37 * MIB)
    scheduled = used_memory(
        AccountingPolicy.DYNAMIC_MIN,
        replace(PV_B, dynamic_min=512 * MIB).constraints,
        11 * MIB,
    )
    assert host_free_memory(16 * GIB, GIB, [resident, scheduled]) == 13371441152


def test_host_free_memory_counts_a_vm_in_both_lists_twice() -> None:
    cost = used_memory(AccountingPolicy.DYNAMIC_MIN, HVM_A.constraints, 37 * MIB)
    assert host_free_memory(16 * GIB, GIB, [cost, cost]) == (16384 - 1024 - 2 * 2085) * MIB


def test_host_free_memory_uses_raw_bytes() -> None:
    assert host_free_memory(10_000_000, 1_000_000, [1, 2, 3]) == 8_999_994


def test_host_free_memory_clamps_at_zero() -> None:
    assert host_free_memory(GIB, 512 * MIB, [GIB]) == 0


@given(
    st.integers(min_value=0, max_value=2**50),
    st.integers(min_value=0, max_value=2**50),
    st.lists(st.integers(min_value=0, max_value=2**45), max_size=50),
)
def test_host_free_memory_is_never_negative(total: int, overhead: int, costs: list[int]) -> None:
    free = host_free_memory(total, overhead, costs)
    assert free >= 0
    assert free == max(0, total - overhead - sum(costs))


# §4.3


def test_admission_example_fits() -> None:
    candidate = vm(DomainType.HVM, static_max=8 * GIB, vcpus=4, dynamic_min=4 * GIB)
    assert start_requirement(candidate) == 4369416192
    assert_enough_memory(candidate, 13371441152)


def test_admission_equality_passes_and_one_byte_less_fails() -> None:
    assert_enough_memory(HVM_A, 2186280960)
    with pytest.raises(XenAPIError) as caught:
        assert_enough_memory(HVM_A, 2186280959)
    assert caught.value.description == [
        "HOST_NOT_ENOUGH_FREE_MEMORY",
        "2186280960",
        "2186280959",
    ]


# §2.5


def test_maximise_memory_worked_row() -> None:
    assert maximise_memory(HVM_A, 4 * GIB, approximate=False) == 4256169984


def test_maximise_memory_approximate_sizes_for_64_vcpus() -> None:
    # 64 vCPUs, k = 3988: shadow = ceil((16384 + 7976) / 256) = 96, overhead 1 + 1 + 96 + 10
    # = 108, and 3988 + 108 = 4096 exactly; k = 3989 needs 4097.
    assert maximise_memory(HVM_A, 4 * GIB, approximate=True) == 3988 * MIB
    assert maximise_memory(replace(HVM_A, vcpus_max=64), 4 * GIB, approximate=False) == 3988 * MIB


def test_maximise_memory_pv_uses_multiplier_one() -> None:
    doubled = replace(PV_B, shadow_multiplier=8.0)
    assert maximise_memory(doubled, 4 * GIB, approximate=False) == maximise_memory(
        PV_B, 4 * GIB, approximate=False
    )


def test_maximise_memory_is_zero_when_nothing_fits() -> None:
    assert maximise_memory(HVM_A, 3 * MIB, approximate=False) == 0
    assert maximise_memory(HVM_A, 0, approximate=False) == 0


def test_bisect_never_probes_lower_bound() -> None:
    probed: list[int] = []

    def fits(x: int) -> bool:
        probed.append(x)
        return x <= 7

    assert bisect(fits, 0, 100) == 7
    assert 0 not in probed
    assert bisect(lambda x: False, 0, 100) == 0
    assert bisect(lambda x: True, 0, 100) == 100


@given(
    st.sampled_from([DomainType.HVM, DomainType.PV, DomainType.PVH, DomainType.PV_IN_PVH]),
    st.integers(min_value=1, max_value=128),
    st.sampled_from([1.0, 1.5, 2.0, 4.0]),
    st.integers(min_value=0, max_value=2**42),
    st.booleans(),
)
def test_maximise_answer_fits_and_one_more_mib_does_not(
    domain_type: DomainType, vcpus: int, multiplier: float, total: int, approximate: bool
) -> None:
    shape = vm(domain_type, static_max=0, vcpus=vcpus, multiplier=multiplier)
    answer = maximise_memory(shape, total, approximate=approximate)
    assert answer % MIB == 0
    sized = replace(shape, vcpus_max=64) if approximate else shape

    def needed(static_max: int) -> int:
        return required_memory(replace(sized, static_max=static_max), AccountingPolicy.STATIC_MAX)

    if answer > 0:
        assert needed(answer) <= total
    assert needed(answer + MIB) > total


# §5


def test_host_overhead_example() -> None:
    assert host_memory_overhead(32 * GIB, 32256 * MIB) == 612368384


def test_host_overhead_with_the_old_reserve() -> None:
    assert host_memory_overhead(32 * GIB, 32256 * MIB, reserved_kib=9216) == 521 * MIB


vm_shapes = st.builds(
    vm,
    st.sampled_from([DomainType.HVM, DomainType.PV, DomainType.PVH, DomainType.PV_IN_PVH]),
    static_max=st.integers(min_value=0, max_value=2**40),
    vcpus=st.integers(min_value=1, max_value=256),
    multiplier=st.floats(min_value=1.0, max_value=16.0),
)


@given(
    vm_shapes,
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=64),
    st.floats(min_value=0.0, max_value=8.0),
)
def test_overhead_and_start_requirement_grow_with_static_max_vcpus_and_multiplier(
    shape: VmMemory, more_bytes: int, more_vcpus: int, more_multiplier: float
) -> None:
    bigger = replace(
        shape,
        static_max=shape.static_max + more_bytes,
        dynamic_min=shape.dynamic_min + more_bytes,
        dynamic_max=shape.dynamic_max + more_bytes,
        vcpus_max=shape.vcpus_max + more_vcpus,
        shadow_multiplier=shape.shadow_multiplier + more_multiplier,
    )
    assert compute_memory_overhead(shape) <= compute_memory_overhead(bigger)
    assert start_requirement(shape) <= start_requirement(bigger)
    assert start_requirement(shape) % MIB == 0
