"""Memory end to end on a simulated pool: lifecycle, admission, setters, live ballooning.

Spec: xapi-memory.md §2-§6 and squeezer.md §9. The pool runs on the virtual clock, so a
scenario of minutes takes milliseconds and every number is exact.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from tests.support import simulated
from tests.toolstack.harness import GIB, MIB, Pool, small_pool
from xenmem.db import NULL_REF
from xenmem.errors import XenAPIError
from xenmem.memory import start_requirement
from xenmem.memory.domain_build import BuildKind
from xenmem.toolstack import lifecycle
from xenmem.toolstack.records import memory_of


@pytest.fixture
def pool() -> Pool:
    return Pool(small_pool())


def start(pool: Pool, vm: str) -> str:
    """Start the VM and let its guest boot (its balloon driver announces itself)."""
    pool.call("VM.start", vm, False, False)
    pool.advance(1)
    return str(pool.record("VM", vm)["resident_on"])


def test_start_makes_the_vm_resident_and_free_memory_follows(pool: Pool) -> None:
    vm = pool.vm()
    host = start(pool, vm)
    record = pool.record("VM", vm)
    assert host in pool.hosts
    assert record["power_state"] == "Running"
    assert record["scheduled_to_be_resident_on"] == NULL_REF
    assert record["domid"] == pool.runtime.agent(host).domains.domid_of(vm)
    # A fresh start reserves up to dynamic_max: the guest starts at 4 GiB.
    assert record["memory_target"] == 4 * GIB
    metrics = str(record["metrics"])
    assert pool.int_field("VM_metrics", metrics, "memory_actual") == 4 * GIB
    # §4.2: the VM costs dynamic_min + its stored overhead (37 MiB for 4 GiB, 2 vCPUs).
    assert record["memory_overhead"] == 37 * MIB
    assert pool.free(host) == pool.expected_free(host)
    pool.assert_consistent()


def test_host_overhead_and_dom0_come_from_the_simulated_boot(pool: Pool) -> None:
    for host in pool.hosts:
        # Xen and the crash kernel (512 MiB) plus squeezed's reserve (72 MiB), §5.
        assert pool.call("host.compute_memory_overhead", host) == (512 + 72) * MIB
        dom0 = str(pool.record("host", host)["control_domain"])
        assert pool.int_field("VM", dom0, "memory_dynamic_min") == GIB
        assert pool.free(host) == 16 * GIB - 584 * MIB - GIB - pool.int_field(
            "VM", dom0, "memory_overhead"
        )


def test_boot_time_checks_come_first(pool: Pool) -> None:
    inverted = pool.vm(memory_static_min=8 * GIB)
    assert pool.error("VM.start", inverted, False, False) == ["MEMORY_CONSTRAINT_VIOLATION"]
    shadow = pool.vm(HVM_shadow_multiplier=0.5)
    assert pool.error("VM.start", shadow, False, False) == [
        "INVALID_VALUE",
        "HVM_shadow_multiplier",
        "0.5",
    ]
    vcpus = pool.vm(VCPUs_at_startup=4)
    assert pool.error("VM.start", vcpus, False, False) == [
        "VALUE_NOT_SUPPORTED",
        "VCPUs-at-startup",
        "4",
        "value greater than VCPUs-max",
    ]
    balloon = pool.vm(other_config={"xenmem_balloon": "wobbly"})
    assert pool.error("VM.start", balloon, False, False) == [
        "INVALID_VALUE",
        "other_config:xenmem_balloon",
        "wobbly",
    ]
    pool.assert_consistent()


def test_start_on_a_full_host_says_what_is_needed_and_available(pool: Pool) -> None:
    host = pool.hosts[0]
    big = pool.vm(
        memory_dynamic_min=13 * GIB, memory_dynamic_max=13 * GIB, memory_static_max=13 * GIB
    )
    pool.call("VM.start_on", big, host, False, False)
    second = pool.vm()
    available = pool.free(host)
    needed = start_requirement(memory_of(pool.record("VM", second)))
    assert needed == (2048 + 37) * MIB
    assert pool.error("VM.assert_can_boot_here", second, host) == [
        "HOST_NOT_ENOUGH_FREE_MEMORY",
        str(needed),
        str(available),
    ]
    assert pool.error("VM.start_on", second, host, False, False) == [
        "HOST_NOT_ENOUGH_FREE_MEMORY",
        str(needed),
        str(available),
    ]
    # VM.start places it on the other host instead.
    assert start(pool, second) == pool.hosts[1]
    pool.assert_consistent()


def test_pv_in_pvh_must_fit_at_static_max(pool: Pool) -> None:
    vm = pool.vm(domain_type="pv_in_pvh", memory_dynamic_min=GIB)
    requirement = start_requirement(memory_of(pool.record("VM", vm)))
    shim = 23 + 4096 // 90
    assert requirement == (4096 + 1 + 1 + 34 + 1 + shim) * MIB


def test_no_host_can_take_it(pool: Pool) -> None:
    huge = pool.vm(
        memory_dynamic_min=20 * GIB, memory_dynamic_max=20 * GIB, memory_static_max=20 * GIB
    )
    assert pool.error("VM.start", huge, False, False) == ["NO_HOSTS_AVAILABLE"]
    assert pool.record("VM", huge)["power_state"] == "Halted"
    pool.assert_consistent()


def test_maximise_memory_row_of_the_spec(pool: Pool) -> None:
    vm = pool.vm()
    assert pool.call("VM.maximise_memory", vm, 4 * GIB, False) == 4256169984


# -- setters (§3.4, §3.5) ---------------------------------------------------------------


def limits(pool: Pool, vm: str) -> tuple[int, ...]:
    return tuple(
        pool.int_field("VM", vm, f"memory_{k}") // MIB
        for k in ("static_min", "dynamic_min", "target", "dynamic_max", "static_max")
    )


@pytest.mark.parametrize(
    ("message", "args", "expected"),
    [
        ("VM.set_memory_dynamic_range", (768 * MIB, 1024 * MIB), (256, 768, 768, 1024, 1024)),
        ("VM.set_memory_dynamic_range", (1024 * MIB, 768 * MIB), "ORDER"),
        ("VM.set_memory_dynamic_max", (2048 * MIB,), "ORDER"),
        ("VM.set_memory_static_max", (768 * MIB,), "ORDER"),
        ("VM.set_memory_static_range", (128 * MIB, 2048 * MIB), (128, 512, 512, 1024, 2048)),
        ("VM.set_memory", (2 * GIB,), (256, 2048, 2048, 2048, 2048)),
        ("VM.set_memory", (128 * MIB,), "ORDER"),
        ("VM.set_memory_limits", (0, 4 * GIB, GIB, 2 * GIB), (0, 1024, 1024, 2048, 4096)),
        ("VM.set_memory_dynamic_min", (600 * MIB,), (256, 600, 600, 1024, 1024)),
        ("VM.set_memory_static_min", (512 * MIB,), (512, 512, 512, 1024, 1024)),
    ],
)
def test_setter_outcomes_of_the_spec(
    pool: Pool, message: str, args: tuple[int, ...], expected: tuple[int, ...] | str
) -> None:
    vm = pool.vm(
        memory_static_min=256 * MIB,
        memory_dynamic_min=512 * MIB,
        memory_target=512 * MIB,
        memory_dynamic_max=GIB,
        memory_static_max=GIB,
    )
    if expected == "ORDER":
        assert pool.error(message, vm, *args) == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
        assert limits(pool, vm) == (256, 512, 512, 1024, 1024)
    else:
        pool.call(message, vm, *args)
        assert limits(pool, vm) == expected
        expected_overhead = pool.call("VM.compute_memory_overhead", vm)
        assert pool.int_field("VM", vm, "memory_overhead") == expected_overhead


def test_static_changes_recompute_the_overhead_dynamic_ones_do_not(pool: Pool) -> None:
    vm = pool.vm()
    pool.call("VM.set_memory_static_range", vm, GIB, 8 * GIB)
    assert pool.int_field("VM", vm, "memory_overhead") == (1 + 1 + 66 + 1) * MIB
    with pool.store.transaction() as tx:
        tx.update("VM", vm, {"memory_overhead": 1})
    pool.call("VM.set_memory_dynamic_range", vm, GIB, 2 * GIB)
    assert pool.int_field("VM", vm, "memory_overhead") == 1
    pool.call("VM.set_VCPUs_max", vm, 8)
    # 8 vCPUs: shadow ceil((2048 + 16384) / 256) = 72, Xen's per-vCPU term ceil(304 / 256) = 2.
    assert pool.int_field("VM", vm, "memory_overhead") == (1 + 1 + 72 + 2) * MIB


def test_dmc_disabled_pins_at_static_max() -> None:
    pool = Pool(small_pool(dmc=False))
    vm = pool.vm()
    assert pool.error("VM.set_memory_dynamic_range", vm, 2 * GIB, 4 * GIB) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "DMC disabled",
    ]
    pool.call("VM.set_memory", vm, 3 * GIB)
    assert limits(pool, vm) == (1024, 3072, 3072, 3072, 3072)


def test_nested_virt_is_what_the_running_domain_was_built_with(pool: Pool) -> None:
    """xapi reads VM_metrics.nested_virt, which xenopsd's state sets: what the domain was
    built with while it exists, false before and after; VM.start checks the platform key
    itself; only without metrics does the platform key decide."""
    vm = pool.vm(platform={"nested-virt": "true"})
    # Never run: its ranges may change, but it may not start unpinned.
    pool.call("VM.set_memory_dynamic_range", vm, 2 * GIB, 3 * GIB)
    assert pool.error("VM.start", vm, False, False) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "nested virt",
    ]
    pool.call("VM.set_memory_limits", vm, GIB, 4 * GIB, 4 * GIB, 4 * GIB)
    start(pool, vm)
    metrics = str(pool.record("VM", vm)["metrics"])
    assert pool.record("VM_metrics", metrics)["nested_virt"] is True
    assert pool.error("VM.set_memory_dynamic_range", vm, 4 * GIB, 4 * GIB) == [
        "VM_IS_USING_NESTED_VIRT",
        vm,
    ]
    assert pool.error("VM.suspend", vm) == ["VM_IS_IMMOBILE", vm]
    # A snapshot keeps what the running VM had.
    snapshot = pool.call("VM.snapshot", vm, "snap", [])
    snapshot_metrics = str(pool.record("VM", snapshot)["metrics"])
    assert pool.record("VM_metrics", snapshot_metrics)["nested_virt"] is True
    # Its domain gone, the VM reports false again: its range may change, not its start.
    pool.call("VM.hard_shutdown", vm)
    assert pool.record("VM_metrics", metrics)["nested_virt"] is False
    pool.call("VM.set_memory_limits", vm, GIB, 4 * GIB, 2 * GIB, 4 * GIB)
    assert pool.error("VM.start", vm, False, False) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "nested virt",
    ]


def test_a_vm_started_with_nomigrate_may_not_move(pool: Pool) -> None:
    vm = pool.vm(platform={"nomigrate": "1"})
    host = start(pool, vm)
    other = next(h for h in pool.hosts if h != host)
    assert pool.error("VM.pool_migrate", vm, other, {}) == ["VM_IS_IMMOBILE", vm]
    assert pool.record("VM", vm)["resident_on"] == host


def test_without_metrics_the_platform_key_decides(pool: Pool) -> None:
    vm = pool.vm(platform={"nested-virt": "TRUE"})
    with pool.store.transaction() as tx:
        tx.delete("VM_metrics", str(pool.record("VM", vm)["metrics"]))
    assert pool.error("VM.set_memory_dynamic_range", vm, 2 * GIB, 3 * GIB) == [
        "VM_IS_USING_NESTED_VIRT",
        vm,
    ]


@pytest.mark.parametrize(
    ("message", "args", "expected", "actual"),
    [
        ("VM.set_memory_static_range", (GIB, 4 * GIB), "halted", "running"),
        ("VM.set_memory_limits", (GIB, 4 * GIB, GIB, 4 * GIB), "halted", "running"),
        ("VM.set_memory", (4 * GIB,), "halted", "running"),
        ("VM.set_HVM_shadow_multiplier", (2.0,), "halted", "running"),
        ("VM.set_VCPUs_max", (4,), "halted", "running"),
        ("VM.destroy", (), "halted, suspended", "running"),
        ("VM.start", (False, False), "halted", "running"),
    ],
)
def test_running_vm_power_state_errors(
    pool: Pool, message: str, args: tuple[object, ...], expected: str, actual: str
) -> None:
    vm = pool.vm()
    start(pool, vm)
    assert pool.error(message, vm, *args) == ["VM_BAD_POWER_STATE", vm, expected, actual]


@pytest.mark.parametrize(
    ("message", "args", "expected"),
    [
        ("VM.set_memory_target_live", (2 * GIB,), "running"),
        ("VM.wait_memory_target_live", (), "running"),
        ("VM.set_shadow_multiplier_live", (2.0,), "running"),
        ("VM.clean_shutdown", (), "running"),
        ("VM.resume", (False, False), "suspended"),
        ("VM.unpause", (), "paused"),
    ],
)
def test_halted_vm_power_state_errors(
    pool: Pool, message: str, args: tuple[object, ...], expected: str
) -> None:
    vm = pool.vm()
    assert pool.error(message, vm, *args) == ["VM_BAD_POWER_STATE", vm, expected, "halted"]


def test_suspended_vm_cannot_change_its_dynamic_range(pool: Pool) -> None:
    vm = pool.vm()
    start(pool, vm)
    pool.call("VM.suspend", vm)
    assert pool.error("VM.set_memory_dynamic_range", vm, 2 * GIB, 4 * GIB) == [
        "VM_BAD_POWER_STATE",
        vm,
        "halted, running",
        "suspended",
    ]


def test_shadow_multiplier_setters(pool: Pool) -> None:
    vm = pool.vm()
    assert pool.error("VM.set_HVM_shadow_multiplier", vm, 0.5) == [
        "INVALID_VALUE",
        "multiplier",
        "0.5",
    ]
    pool.call("VM.set_HVM_shadow_multiplier", vm, 2.0)
    assert pool.int_field("VM", vm, "memory_overhead") == (1 + 1 + 68 + 1) * MIB
    host = start(pool, vm)
    agent = pool.runtime.agent(host)
    pool.call("VM.set_shadow_multiplier_live", vm, 3.0)
    assert agent.stat(vm).shadow_bytes == 102 * MIB
    assert pool.int_field("VM", vm, "memory_overhead") == (1 + 1 + 102 + 1) * MIB
    assert pool.error("VM.set_shadow_multiplier_live", vm, 0.0) == [
        "INVALID_VALUE",
        "multiplier",
        "0.",
    ]
    pool.assert_consistent()


# -- live ballooning (§6, squeezer §9.2) --------------------------------------------------


def test_live_dynamic_range_rebalances_and_the_record_follows(pool: Pool) -> None:
    vm = pool.vm()
    host = start(pool, vm)
    pool.call("VM.set_memory_dynamic_range", vm, 3 * GIB, 3 * GIB)
    pool.advance(0)
    assert pool.record("VM", vm)["memory_target"] == 3 * GIB
    actual = pool.int_field("VM_metrics", str(pool.record("VM", vm)["metrics"]), "memory_actual")
    assert abs(actual - 3 * GIB) <= 4096
    assert pool.call("VM.get_cooperative", vm) is True
    assert pool.free(host) == pool.expected_free(host)
    pool.assert_consistent()


def test_growing_dynamic_min_of_a_running_vm_is_checked_in_kib_first(pool: Pool) -> None:
    vm = pool.vm()
    host = start(pool, vm)
    available = pool.free(host)
    new_min = 2 * GIB + available + 1024 * 1024
    # The memory check comes before the range is validated: this range is also invalid.
    assert pool.error("VM.set_memory_dynamic_range", vm, new_min, GIB) == [
        "HOST_NOT_ENOUGH_FREE_MEMORY",
        str((new_min - 2 * GIB) // 1024),
        str(available // 1024),
    ]
    assert limits(pool, vm)[1] == 2048


def test_set_memory_target_live_holds_the_target(pool: Pool) -> None:
    vm = pool.vm()
    start(pool, vm)
    assert pool.error("VM.set_memory_target_live", vm, GIB) == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    pool.call("VM.set_memory_target_live", vm, 2560 * MIB)
    pool.advance(60)
    assert pool.record("VM", vm)["memory_target"] == 2560 * MIB
    pool.call("VM.wait_memory_target_live", vm)
    # The range change releases the hold: the guest grows back to dynamic_max.
    pool.call("VM.set_memory_dynamic_range", vm, 2 * GIB, 4 * GIB)
    pool.advance(0)
    assert pool.record("VM", vm)["memory_target"] == 4 * GIB


def test_wait_memory_target_live_times_out_on_a_stuck_guest(pool: Pool) -> None:
    vm = pool.vm(other_config={"xenmem_balloon": "stuck"})
    start(pool, vm)
    pool.call("VM.set_memory_target_live", vm, 2 * GIB)
    before = pool.clock.now()
    error = pool.error("VM.wait_memory_target_live", vm)
    assert error[0] == "VM_MEMORY_TARGET_WAIT_TIMEOUT"
    assert error[1].startswith("OpaqueRef:")
    assert pool.clock.now() - before == pytest.approx(257.0)
    assert pool.record("VM", vm)["current_operations"] == {}


def test_cooperation_is_reported_truly(pool: Pool) -> None:
    ideal, stuck, driverless = (
        pool.vm(),
        pool.vm(other_config={"xenmem_balloon": "stuck"}),
        pool.vm(other_config={"xenmem_balloon": "none"}),
    )
    assert pool.call("VM.get_cooperative", ideal) is False  # halted: nothing co-operates
    for vm in (ideal, stuck, driverless):
        pool.call("VM.start_on", vm, pool.hosts[0], False, False)
    pool.advance(1)
    pool.call("VM.set_memory_dynamic_range", stuck, 2 * GIB, 2 * GIB)
    pool.advance(30)
    assert pool.call("VM.get_cooperative", ideal) is True
    assert pool.call("VM.get_cooperative", stuck) is False
    assert pool.call("VM.get_cooperative", driverless) is False
    health = pool.record("VM_metrics", str(pool.record("VM", stuck)["metrics"]))["other_config"]
    assert isinstance(health, dict)
    assert health["balloon_health"] == "uncooperative"
    assert "balloon_uncooperative_since" in health


# -- suspend, resume, migrate, clone --------------------------------------------------------


def test_suspend_and_resume_elsewhere_with_the_same_memory(pool: Pool) -> None:
    vm = pool.vm()
    start(pool, vm)
    pool.call("VM.set_memory_dynamic_range", vm, 3 * GIB, 3 * GIB)
    pool.call("VM.suspend", vm)
    assert pool.record("VM", vm)["power_state"] == "Suspended"
    pool.assert_consistent()
    pool.call("VM.resume_on", vm, pool.hosts[1], False, False)
    record = pool.record("VM", vm)
    assert (record["power_state"], record["resident_on"]) == ("Running", pool.hosts[1])
    stat = pool.runtime.agent(pool.hosts[1]).stat(vm)
    assert abs(stat.actual_bytes - 3 * GIB) <= 4096
    pool.assert_consistent()


def test_pool_migrate_balloons_down_moves_and_restores_the_range(pool: Pool) -> None:
    vm = pool.vm()
    source = start(pool, vm)
    destination = next(h for h in pool.hosts if h != source)
    pool.call("VM.pool_migrate", vm, destination, {"live": "true"})
    record = pool.record("VM", vm)
    assert record["resident_on"] == destination
    assert pool.runtime.agent(source).domains.domid_of(vm) is None
    # It arrived at dynamic_min and grows back into its range on the new host.
    pool.advance(30)
    assert pool.record("VM", vm)["memory_target"] == 4 * GIB
    pool.assert_consistent()


def test_pause_unpause_shutdowns_clone_destroy(pool: Pool) -> None:
    vm = pool.vm()
    pool.call("VM.start", vm, True, False)
    assert pool.record("VM", vm)["power_state"] == "Paused"
    pool.call("VM.unpause", vm)
    pool.call("VM.pause", vm)
    pool.call("VM.hard_shutdown", vm)
    assert pool.record("VM", vm)["power_state"] == "Halted"
    copy = pool.call("VM.clone", vm, "copy")
    assert pool.record("VM", copy)["memory_overhead"] == pool.record("VM", vm)["memory_overhead"]
    assert limits(pool, copy) == limits(pool, vm)
    start(pool, copy)
    pool.call("VM.clean_shutdown", copy)
    pool.call("VM.destroy", copy)
    assert pool.store.get("VM", copy) is None
    pool.assert_consistent()


# -- uncooperative guests on a full host ---------------------------------------------------


def test_a_start_needing_stuck_guests_memory_names_them() -> None:
    pool = Pool(small_pool(hosts=1))
    host = pool.hosts[0]
    stuck = pool.vm(
        memory_dynamic_min=GIB,
        memory_dynamic_max=12 * GIB,
        memory_static_max=12 * GIB,
        other_config={"xenmem_balloon": "stuck"},
    )
    pool.call("VM.start_on", stuck, host, False, False)
    newcomer = pool.vm(
        memory_dynamic_min=4 * GIB, memory_dynamic_max=4 * GIB, memory_static_max=4 * GIB
    )
    assert pool.error("VM.start", newcomer, False, False) == ["VMS_FAILED_TO_COOPERATE", stuck]
    assert pool.record("VM", newcomer)["power_state"] == "Halted"
    assert pool.call("VM.get_cooperative", stuck) is False
    pool.assert_consistent()


def test_a_start_squeezes_cooperative_guests_beside_a_floored_one() -> None:
    """Both guests get the same proportional target (about 5.15 GiB), but one will not go
    below 5.5 GiB: squeezed gives up on it after 5 s and takes the rest from the other."""
    pool = Pool(small_pool(hosts=1))
    host = pool.hosts[0]

    def guest(balloon: str) -> str:
        return pool.vm(
            memory_dynamic_min=GIB,
            memory_dynamic_max=6 * GIB,
            memory_static_max=6 * GIB,
            other_config={"xenmem_balloon": balloon},
        )

    floored, ideal = guest("floor:5632MiB"), guest("ideal")
    for vm in (floored, ideal):
        pool.call("VM.start_on", vm, host, False, False)
    pool.advance(1)
    newcomer = pool.vm(
        memory_dynamic_min=4 * GIB, memory_dynamic_max=4 * GIB, memory_static_max=4 * GIB
    )
    pool.call("VM.start", newcomer, False, False)
    assert pool.record("VM", newcomer)["power_state"] == "Running"
    agent = pool.runtime.agent(host)
    floored_actual, ideal_actual = (agent.stat(vm).actual_bytes for vm in (floored, ideal))
    assert floored_actual >= 5632 * MIB
    assert ideal_actual < 5 * GIB
    pool.advance(30)
    assert pool.call("VM.get_cooperative", floored) is False
    assert pool.call("VM.get_cooperative", ideal) is True
    pool.assert_consistent()


def test_ledger_parts_and_xen_share(pool: Pool) -> None:
    vm = pool.vm()
    host = start(pool, vm)
    pool.advance(1)  # the guest's balloon driver announces itself
    ledger = pool.call("host.get_memory_ledger", host)
    agent = pool.runtime.agent(host)
    assert ledger["xen"] == simulated(agent).xen_kib * 1024
    assert ledger["reserve"] == 73728 * 1024
    assert ledger[f"vm:{vm}:ram"] == 4 * GIB
    assert ledger[f"vm:{vm}:overhead"] == 34 * MIB
    assert ledger[f"vm:{vm}:dynamic_min"] == 2 * GIB
    assert ledger[f"vm:{vm}:memory_overhead"] == 37 * MIB
    assert ledger["reclaimable_cooperative"] == 2 * GIB
    pool.assert_consistent()


def test_a_refused_async_start_keeps_the_ledger_in_its_task(pool: Pool) -> None:
    host = pool.hosts[0]
    big = pool.vm(
        memory_dynamic_min=13 * GIB, memory_dynamic_max=13 * GIB, memory_static_max=13 * GIB
    )
    pool.call("VM.start_on", big, host, False, False)
    with pool.store.transaction() as tx:
        task = tx.create("task", {"name_label": "Async.VM.start"})
    second = pool.vm(
        memory_dynamic_min=3 * GIB, memory_dynamic_max=3 * GIB, memory_static_max=3 * GIB
    )
    # As VM.start's retry without the memory check does: squeezed has the last word.
    with pool.store.transaction() as tx:
        tx.update("VM", second, {"scheduled_to_be_resident_on": host})
    in_task = replace(pool.ctx, task=task)
    with pytest.raises(XenAPIError) as caught:
        asyncio.run(lifecycle._boot(in_task, second, host, BuildKind.START, paused=False))
    assert caught.value.code == "HOST_NOT_ENOUGH_FREE_MEMORY"
    other_config = pool.record("task", task)["other_config"]
    assert isinstance(other_config, dict)
    ledger = json.loads(other_config["memory_ledger"])
    # The ledger as it was at the refusal, the refused VM still scheduled to the host.
    assert ledger[f"vm:{second}:dynamic_min"] == 3 * GIB
    assert ledger["total"] == 16 * GIB
    assert ledger[f"vm:{big}:ram"] == pool.call("host.get_memory_ledger", host)[f"vm:{big}:ram"]
    assert pool.record("VM", second)["scheduled_to_be_resident_on"] == NULL_REF


def test_built_in_templates_install_by_clone(pool: Pool) -> None:
    templates = {
        str(r["name_label"]): vm for vm, r in pool.store.records("VM").items() if r["is_a_template"]
    }
    assert set(templates) == {
        "Debian Bookworm 12",
        "Windows 10 (64-bit)",
        "Windows 11",
        "Other install media",
    }
    debian = templates["Debian Bookworm 12"]
    assert limits(pool, debian) == (1024, 2048, 2048, 2048, 2048)
    assert pool.record("VM", debian)["memory_overhead"] == pool.call(
        "VM.compute_memory_overhead", debian
    )
    assert pool.error("VM.start", debian, False, False) == ["VM_IS_TEMPLATE", debian, "start"]
    assert pool.error("VM.destroy", debian) == ["VM_IS_TEMPLATE", debian, "destroy"]
    installed = pool.call("VM.clone", debian, "web")
    with pool.store.transaction() as tx:
        tx.update("VM", installed, {"is_a_template": False})
    assert pool.record("VM", installed)["is_default_template"] is False
    host = start(pool, installed)
    assert pool.record("VM", installed)["power_state"] == "Running"
    assert pool.free(host) == pool.expected_free(host)


def test_raising_dynamic_min_above_the_guest_never_eats_the_reserve() -> None:
    """Found by the stateful test: after a migration at 256 MiB, a range of [512 MiB, 5 GiB]
    made squeezed's policy hand out 256 MiB more than was free."""
    pool = Pool(small_pool(hosts=2, memory=6 * GIB))
    vm = pool.vm(
        memory_static_min=256 * MIB,
        memory_dynamic_min=256 * MIB,
        memory_dynamic_max=256 * MIB,
        memory_static_max=5 * GIB,
    )
    pool.call("VM.start_on", vm, pool.hosts[1], False, False)
    pool.call("VM.pool_migrate", vm, pool.hosts[0], {})
    pool.call("VM.set_memory_dynamic_range", vm, 512 * MIB, 5 * GIB)
    agent = pool.runtime.agent(pool.hosts[0])
    assert simulated(agent).faults == []
    assert simulated(agent).physinfo().free_kib >= 73728 - 512
    pool.assert_consistent()


def test_holding_a_target_above_what_the_host_has_is_refused_in_kib() -> None:
    """Found by the stateful test: a held target is a raised floor and needs the same check."""
    pool = Pool(small_pool(hosts=1, memory=6 * GIB))
    host = pool.hosts[0]
    vm = pool.vm(
        memory_static_min=256 * MIB,
        memory_dynamic_min=256 * MIB,
        memory_dynamic_max=5 * GIB,
        memory_static_max=5 * GIB,
    )
    start(pool, vm)
    available = pool.free(host)
    assert pool.error("VM.set_memory_target_live", vm, 5 * GIB) == [
        "HOST_NOT_ENOUGH_FREE_MEMORY",
        str((5 * GIB - 256 * MIB) // 1024),
        str(available // 1024),
    ]
    pool.call("VM.set_memory_target_live", vm, 256 * MIB + available)
    pool.advance(30)
    pool.assert_consistent()
