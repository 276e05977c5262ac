"""The memory setters of xapi-memory.md §9 through xe, checked against the API's answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import XenAPI

from tests.cli.xe.conftest import GIB, MIB, Xe, failure
from tests.serving import vm_record


@pytest.fixture
def halted(api: XenAPI.Session) -> Iterator[tuple[str, str]]:
    """A fresh halted VM named `mem-vm`: (ref, uuid)."""
    vm = api.xenapi.VM.create(vm_record("mem-vm"))
    yield vm, api.xenapi.VM.get_uuid(vm)
    api.xenapi.VM.destroy(vm)


def _limits(api: XenAPI.Session, vm: str) -> tuple[int, int, int, int]:
    record = api.xenapi.VM.get_record(vm)

    def memory(name: str) -> int:
        return int(record[f"memory_{name}"])

    return memory("static_min"), memory("dynamic_min"), memory("dynamic_max"), memory("static_max")


def _sdk_error(call: Callable[..., object], *args: object) -> list[str]:
    with pytest.raises(XenAPI.Failure) as info:
        call(*args)
    return list(info.value.details)


def test_limits_set_and_its_order_violation(
    xe: Xe, api: XenAPI.Session, halted: tuple[str, str]
) -> None:
    vm, _ = halted
    bad = ("static-min=4GiB", "static-max=2GiB", "dynamic-min=1GiB", "dynamic-max=2GiB")
    expected = _sdk_error(
        api.xenapi.VM.set_memory_limits, vm, str(4 * GIB), str(2 * GIB), str(GIB), str(2 * GIB)
    )
    assert expected[0] == "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    assert failure(xe("vm-memory-limits-set", "vm=mem-vm", *bad)) == (
        f"Error code: {expected[0]}\nError parameters: {', '.join(expected[1:])}\n"
    )
    good = ("static-min=512MiB", "static-max=8GiB", "dynamic-min=1GiB", "dynamic-max=6g")
    xe.ok("vm-memory-limits-set", "vm=mem-vm", *good)
    assert _limits(api, vm) == (512 * MIB, GIB, 6 * GIB, 8 * GIB)


def test_set_memory_and_the_ranges(xe: Xe, api: XenAPI.Session, halted: tuple[str, str]) -> None:
    vm, uuid = halted
    xe.ok("vm-memory-set", f"uuid={uuid}", "memory=3GiB")
    assert _limits(api, vm)[1:] == (3 * GIB, 3 * GIB, 3 * GIB)
    xe.ok("vm-memory-static-range-set", "vm=mem-vm", "min=256MiB", "max=6GiB")
    assert _limits(api, vm) == (256 * MIB, 3 * GIB, 3 * GIB, 6 * GIB)
    xe.ok("vm-memory-dynamic-range-set", "vm=mem-vm", "min=1GiB", "max=5GiB")
    assert _limits(api, vm) == (256 * MIB, GIB, 5 * GIB, 6 * GIB)
    xe.ok("vm-memory-target-set", "vm=mem-vm", "target=2GiB")
    assert _limits(api, vm) == (256 * MIB, 2 * GIB, 2 * GIB, 6 * GIB)


def test_param_set_memory_fields(xe: Xe, api: XenAPI.Session, halted: tuple[str, str]) -> None:
    vm, uuid = halted
    xe.ok("vm-param-set", f"uuid={uuid}", "memory-static-max=6GiB", "memory-dynamic-min=1536MiB")
    assert _limits(api, vm) == (GIB, 1536 * MIB, 4 * GIB, 6 * GIB)
    xe.ok("vm-param-set", f"uuid={uuid}", "HVM-shadow-multiplier=2.5", "VCPUs-max=4")
    assert api.xenapi.VM.get_HVM_shadow_multiplier(vm) == 2.5
    assert api.xenapi.VM.get_VCPUs_max(vm) == "4"
    shown = xe.ok("vm-param-get", f"uuid={uuid}", "param-name=memory-overhead")
    assert shown == f"{api.xenapi.VM.get_memory_overhead(vm)}\n"
    assert xe.ok("vm-param-get", f"uuid={uuid}", "param-name=HVM-shadow-multiplier") == "2.5\n"
    bad = _sdk_error(api.xenapi.VM.set_memory_static_max, vm, str(GIB // 2))
    assert failure(xe("vm-param-set", f"uuid={uuid}", "memory-static-max=512MiB")) == (
        f"Error code: {bad[0]}\nError parameters: {', '.join(bad[1:])}\n"
    )


def test_compute_maximum_memory(xe: Xe, api: XenAPI.Session, halted: tuple[str, str]) -> None:
    vm, _ = halted
    for approximate in (False, True):
        expected = api.xenapi.VM.maximise_memory(vm, str(8 * GIB), approximate)
        flag = f"approximate={str(approximate).lower()}"
        assert xe.ok("vm-compute-maximum-memory", "vm=mem-vm", "total=8GiB", flag) == (
            f"{expected}\n"
        )


def test_templates_take_memory_settings(
    xe: Xe, api: XenAPI.Session, halted: tuple[str, str]
) -> None:
    template = api.xenapi.VM.create(vm_record("mem-template", is_a_template=True))
    xe.ok("vm-memory-set", "vm=mem-template", "memory=2GiB")
    assert _limits(api, template)[1:] == (2 * GIB, 2 * GIB, 2 * GIB)
    # but not a target: vm-memory-target-set leaves templates out, as xe does
    assert failure(xe("vm-memory-target-set", "vm=mem-template", "target=1GiB")) == (
        "Error: No matching VMs found\n"
    )
    api.xenapi.VM.destroy(template)
