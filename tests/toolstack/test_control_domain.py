"""Every VM message on dom0, as xapi answers it (xapi_vm_lifecycle, xapi_vm.ml).

dom0 runs and is its host's control domain: operations it may not run answer
OPERATION_NOT_ALLOWED after the power-state check, its memory must stay pinned at
static_max, a static change waits for its reboot, and live ballooning calls do nothing.
Nothing on dom0 answers INTERNAL_ERROR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.toolstack.harness import GIB, Pool, small_pool
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.types import Ref

CONTROL_DOMAIN = ["OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain"]
DOM0 = ["OPERATION_NOT_ALLOWED", "This operation is not allowed on dom0"]
# dom0 in the harness pool: 1 GiB, pinned.
PINNED = GIB


Answer = Callable[[str, str], list[str] | None]
"""dom0's ref and uuid → the error a message answers on dom0, or None for success."""


def bad_state(expected: str) -> Answer:
    return lambda dom0, uuid: ["VM_BAD_POWER_STATE", dom0, expected, "running"]


def fixed(answer: list[str] | None) -> Answer:
    return lambda dom0, uuid: answer


def no_such_source(dom0: str, uuid: str) -> list[str]:
    # xcp-rrdd's answer for a data source a VM's RRD does not have (the simulated dom0
    # writes no meminfo), the same for every VM.
    return ["INTERNAL_ERROR", f"Rrd_interface.Rrdd_error([S(Datasource_missing);S(VM: {uuid})])"]


# Message → (arguments after the VM, hosts given as indexes; the answer on dom0 or None).
EXPECTED: dict[str, tuple[tuple[Any, ...], Answer]] = {
    "VM.destroy": ((), bad_state("halted, suspended")),
    "VM.clone": (("copy",), bad_state("halted")),
    "VM.copy": (("copy", "OpaqueRef:NULL"), bad_state("halted")),
    "VM.snapshot": (("snap", []), fixed(CONTROL_DOMAIN)),
    "VM.start": ((False, False), bad_state("halted")),
    "VM.start_on": ((0, False, False), bad_state("halted")),
    "VM.resume": ((False, False), bad_state("suspended")),
    "VM.resume_on": ((0, False, False), bad_state("suspended")),
    "VM.unpause": ((), bad_state("paused")),
    "VM.clean_shutdown": ((), fixed(CONTROL_DOMAIN)),
    "VM.hard_shutdown": ((), fixed(CONTROL_DOMAIN)),
    "VM.suspend": ((), fixed(CONTROL_DOMAIN)),
    "VM.pause": ((), fixed(CONTROL_DOMAIN)),
    "VM.pool_migrate": ((1, {}), fixed(CONTROL_DOMAIN)),
    "VM.set_shadow_multiplier_live": ((2.0,), fixed(CONTROL_DOMAIN)),
    "VM.set_HVM_shadow_multiplier": ((2.0,), bad_state("halted")),
    "VM.set_VCPUs_max": ((2,), fixed(DOM0)),
    "VM.set_VCPUs_at_startup": (
        (1,),
        fixed(["OPERATION_NOT_ALLOWED", "set_VCPUs_at_startup is not allowed on dom0"]),
    ),
    "VM.set_domain_type": (("pv",), fixed(None)),
    "VM.set_HVM_boot_policy": (("",), fixed(None)),
    "VM.set_memory_dynamic_range": ((PINNED, PINNED), fixed(None)),
    "VM.set_memory_dynamic_min": ((PINNED,), fixed(None)),
    "VM.set_memory_dynamic_max": ((PINNED,), fixed(None)),
    "VM.set_memory_static_range": ((PINNED, PINNED), fixed(None)),
    "VM.set_memory_static_min": ((PINNED,), fixed(None)),
    "VM.set_memory_static_max": ((PINNED,), fixed(None)),
    "VM.set_memory_limits": ((PINNED, PINNED, PINNED, PINNED), fixed(None)),
    "VM.set_memory": ((PINNED,), fixed(None)),
    "VM.set_memory_target_live": ((GIB // 2,), fixed(None)),
    "VM.wait_memory_target_live": ((), fixed(None)),
    "VM.get_cooperative": ((), fixed(None)),
    "VM.compute_memory_overhead": ((), fixed(None)),
    "VM.maximise_memory": ((4 * GIB, False), fixed(None)),
    "VM.assert_can_boot_here": ((0,), fixed(None)),
    "VM.get_data_sources": ((), fixed(None)),
    "VM.query_data_source": (("memory_internal_free",), no_such_source),
}


def vm_messages() -> list[str]:
    """Every message of the VM class that is not generated per field."""
    return sorted(
        name
        for name, m in MODEL.messages.items()
        if m.cls == "VM" and m.kind.value == "custom" and name != "VM.create"
    )


def test_the_table_covers_every_vm_message() -> None:
    assert sorted(EXPECTED) == vm_messages()


@pytest.mark.parametrize("message", sorted(EXPECTED))
def test_every_vm_message_on_dom0(message: str) -> None:
    pool = Pool(small_pool())
    dom0 = str(pool.record("host", pool.hosts[0])["control_domain"])
    args, answer = EXPECTED[message]
    params = MODEL.messages[message].params[1:]
    given = [
        pool.hosts[a] if isinstance(p.type, Ref) and p.type.cls == "host" else a
        for p, a in zip(params, args, strict=True)
    ]
    expected = answer(dom0, str(pool.record("VM", dom0)["uuid"]))
    if expected is None:
        pool.call(message, dom0, *given)
    else:
        assert pool.error(message, dom0, *given) == expected
    # dom0 was never ballooned nor touched by the host's squeezed.
    assert pool.record("VM", dom0)["power_state"] == "Running"
    pool.assert_consistent()


def test_dom0_memory_must_stay_pinned_and_waits_for_a_reboot() -> None:
    pool = Pool(small_pool())
    dom0 = str(pool.record("host", pool.hosts[0])["control_domain"])
    for message, args in (
        ("VM.set_memory_dynamic_range", (GIB // 2, GIB)),
        ("VM.set_memory_static_range", (GIB, 2 * GIB)),
        ("VM.set_memory_limits", (GIB, 2 * GIB, GIB, 2 * GIB)),
    ):
        assert pool.error(message, dom0, *args) == [
            "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
            "control domain",
        ]
    assert pool.record("VM", dom0)["requires_reboot"] is False
    pool.call("VM.set_memory_limits", dom0, GIB, 2 * GIB, 2 * GIB, 2 * GIB)
    assert pool.record("VM", dom0)["requires_reboot"] is True
    assert pool.record("VM", dom0)["memory_static_max"] == 2 * GIB
    # set_memory_target_live does nothing: the target stays where it was.
    pool.call("VM.set_memory_target_live", dom0, GIB // 2)
    assert pool.record("VM", dom0)["memory_target"] == 2 * GIB
