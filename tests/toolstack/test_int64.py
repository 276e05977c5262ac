"""No value outside signed 64-bit is stored or sent: the setters and VM.create refuse
settings whose overhead would leave it (xapi's Int64 arithmetic wraps instead)."""

from __future__ import annotations

import pytest

from tests.toolstack.harness import GIB, Pool, small_pool
from xenmem.memory.units import INT64_MAX
from xenmem.xenapi.model import decode_record


@pytest.fixture
def pool() -> Pool:
    return Pool(small_pool())


@pytest.mark.parametrize(
    ("message", "args", "field", "value"),
    [
        ("VM.set_memory_static_max", (INT64_MAX,), "memory_static_max", str(INT64_MAX)),
        (
            "VM.set_memory_static_range",
            (GIB, INT64_MAX - 2**19),
            "memory_static_max",
            str(INT64_MAX - 2**19),
        ),
        (
            "VM.set_memory_limits",
            (GIB, INT64_MAX, 2 * GIB, 2 * GIB),
            "memory_static_max",
            str(INT64_MAX),
        ),
        ("VM.set_memory", (INT64_MAX,), "memory_static_max", str(INT64_MAX)),
        ("VM.set_HVM_shadow_multiplier", (1e300,), "multiplier", "1e+300"),
        ("VM.set_VCPUs_max", (2**62,), "VCPUs_max", str(2**62)),
    ],
)
def test_a_setter_whose_overhead_would_leave_int64_is_refused(
    pool: Pool, message: str, args: tuple[object, ...], field: str, value: str
) -> None:
    vm = pool.vm()
    before = pool.record("VM", vm)
    assert pool.error(message, vm, *args) == ["INVALID_VALUE", field, value]
    assert pool.record("VM", vm) == before


def test_the_live_multiplier_too(pool: Pool) -> None:
    vm = pool.vm()
    pool.call("VM.start", vm, False, False)
    assert pool.error("VM.set_shadow_multiplier_live", vm, 1e300) == [
        "INVALID_VALUE",
        "multiplier",
        "1e+300",
    ]
    assert pool.record("VM", vm)["HVM_shadow_multiplier"] == 1.0


def test_vm_create_names_the_setting_that_leaves_int64(pool: Pool) -> None:
    assert pool.error("VM.create", _record(memory_static_max=INT64_MAX)) == [
        "INVALID_VALUE",
        "memory_static_max",
        str(INT64_MAX),
    ]
    assert pool.error("VM.create", _record(HVM_shadow_multiplier=1e300)) == [
        "INVALID_VALUE",
        "HVM_shadow_multiplier",
        "1e+300",
    ]
    count = pool.store.count("VM")
    assert pool.error("VM.create", _record(VCPUs_max=-(2**62))) == [
        "INVALID_VALUE",
        "VCPUs_max",
        str(-(2**62)),
    ]
    assert pool.store.count("VM") == count


def test_maximise_memory_refuses_a_negative_total(pool: Pool) -> None:
    vm = pool.vm()
    assert pool.error("VM.maximise_memory", vm, -4 * GIB, False) == [
        "INVALID_VALUE",
        "total",
        str(-4 * GIB),
    ]


def _record(**fields: object) -> dict[str, object]:
    return decode_record(
        "VM",
        {
            "memory_static_min": GIB,
            "memory_dynamic_min": GIB,
            "memory_dynamic_max": GIB,
            "memory_static_max": GIB,
            "VCPUs_max": 1,
            "VCPUs_at_startup": 1,
            "HVM_boot_policy": "BIOS order",
            **fields,
        },
    )
