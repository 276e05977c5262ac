"""xenopsd's build-time memory arithmetic (squeezer.md §9.1, xapi-memory.md §2.3, §4.7)."""

from dataclasses import replace

import pytest

from xenmem.memory import DomainType, VmMemory
from xenmem.memory.domain_build import (
    BuildKind,
    ReservationRange,
    initial_target_bytes,
    memory_limit_bytes,
    reservation_range,
    shadow_allocation_mib,
    target_key_kib,
    xenopsd_overhead_bytes,
)

MIB = 1048576
GIB = 1024 * MIB

HVM = VmMemory(
    domain_type=DomainType.HVM,
    static_min=GIB,
    dynamic_min=2 * GIB,
    dynamic_max=4 * GIB,
    static_max=4 * GIB,
    vcpus_max=2,
)


def test_xenopsd_uses_the_multiplier_only_for_hvm() -> None:
    doubled = replace(HVM, shadow_multiplier=2.0)
    assert xenopsd_overhead_bytes(HVM) == 37 * MIB
    assert xenopsd_overhead_bytes(doubled) == (1 + 1 + 68 + 1) * MIB
    pvh = replace(doubled, domain_type=DomainType.PVH)
    assert xenopsd_overhead_bytes(pvh) == 37 * MIB
    pv = replace(doubled, domain_type=DomainType.PV)
    assert xenopsd_overhead_bytes(pv) == (0 + 1 + 34 + 1) * MIB


def test_fresh_start_reserves_the_dynamic_range_plus_overhead() -> None:
    assert reservation_range(HVM, BuildKind.START) == ReservationRange(
        min_kib=(2048 + 37) * 1024, max_kib=(4096 + 37) * 1024
    )


def test_reservation_rounds_bytes_up_to_kib() -> None:
    odd = replace(HVM, dynamic_min=2 * GIB + 1)
    assert reservation_range(odd, BuildKind.START).min_kib == (2048 + 37) * 1024 + 1


@pytest.mark.parametrize("kind", [BuildKind.RESUME, BuildKind.MIGRATION])
def test_resume_and_migration_reserve_an_exact_amount(kind: BuildKind) -> None:
    assert reservation_range(HVM, kind, exact_bytes=3 * GIB) == ReservationRange(
        min_kib=(3072 + 37) * 1024, max_kib=(3072 + 37) * 1024
    )
    with pytest.raises(ValueError, match="exact amount"):
        reservation_range(HVM, kind)


def test_initial_target_is_the_reservation_less_overhead_capped_at_dynamic_max() -> None:
    assert initial_target_bytes(HVM, (3000 + 37) * 1024) == 3000 * MIB
    assert initial_target_bytes(HVM, (5000 + 37) * 1024) == 4 * GIB


def test_target_key_rounds_up_to_whole_mib() -> None:
    assert target_key_kib(3000 * MIB) == 3000 * 1024
    assert target_key_kib(3000 * MIB + 1024) == 3001 * 1024
    assert target_key_kib(3000 * MIB + 1) == 3000 * 1024


def test_memory_limit_is_the_larger_of_actual_and_maxmem_less_offset() -> None:
    assert memory_limit_bytes(DomainType.HVM, actual_bytes=GIB, maxmem_bytes=4097 * MIB) == 4 * GIB
    assert memory_limit_bytes(DomainType.PV, actual_bytes=GIB, maxmem_bytes=4096 * MIB) == 4 * GIB
    assert (
        memory_limit_bytes(DomainType.HVM, actual_bytes=5 * GIB, maxmem_bytes=4097 * MIB) == 5 * GIB
    )


def test_shadow_allocation_follows_xenopsd() -> None:
    doubled = replace(HVM, shadow_multiplier=2.0)
    assert shadow_allocation_mib(HVM) == 34
    assert shadow_allocation_mib(doubled) == 68
    assert shadow_allocation_mib(replace(doubled, domain_type=DomainType.PVH)) == 34
    assert shadow_allocation_mib(replace(doubled, domain_type=DomainType.PV)) == 0
