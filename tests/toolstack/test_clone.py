"""VM.snapshot, VM.copy and VM.clone of a VM without disks (xapi_vm_clone.ml)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.toolstack.harness import GIB, Pool, small_pool

# Fields xapi copies verbatim into the new VM, the stored overhead included.
COPIED = (
    "memory_overhead",
    "memory_target",
    "memory_static_min",
    "memory_dynamic_min",
    "memory_dynamic_max",
    "memory_static_max",
    "VCPUs_max",
    "VCPUs_at_startup",
    "HVM_shadow_multiplier",
    "domain_type",
    "HVM_boot_policy",
    "platform",
)


@pytest.fixture
def pool() -> Pool:
    return Pool(small_pool())


def running_vm(pool: Pool) -> str:
    vm = pool.vm(platform={"nested-virt": "true"})
    pool.call("VM.set_memory_limits", vm, GIB, 4 * GIB, 4 * GIB, 4 * GIB)
    pool.call("VM.set_HVM_shadow_multiplier", vm, 2.0)
    pool.call("VM.start", vm, False, False)
    return vm


def test_a_snapshot_of_a_running_vm(pool: Pool) -> None:
    vm = running_vm(pool)
    with pool.store.transaction() as tx:
        # A stale stored overhead: copied as it is, not recomputed.
        tx.update("VM", vm, {"memory_overhead": 12345})
    before = datetime.now(UTC)
    snap = pool.call("VM.snapshot", vm, "snap", [])
    source, record = pool.record("VM", vm), pool.record("VM", snap)
    assert {f: record[f] for f in COPIED} == {f: source[f] for f in COPIED}
    assert record["memory_overhead"] == 12345
    assert record["power_state"] == "Halted"
    assert record["resident_on"] == "OpaqueRef:NULL"
    assert record["domid"] == -1
    assert (record["is_a_snapshot"], record["is_a_template"]) == (True, True)
    assert record["snapshot_of"] == vm
    assert isinstance(record["snapshot_time"], datetime) and record["snapshot_time"] >= before
    assert record["snapshot_info"] == {
        "disk-snapshot-type": "crash_consistent",
        "power-state-at-snapshot": "Running",
    }
    assert record["blocked_operations"] == {}
    assert record["current_operations"] == {}
    assert record["metrics"] != source["metrics"]
    # The snapshot inherits the source's metrics: nested_virt from its run.
    assert pool.record("VM_metrics", str(record["metrics"]))["nested_virt"] is True
    # Parent links: the snapshot takes the source's parent and becomes the source's.
    assert source["parent"] == snap
    assert record["parent"] == "OpaqueRef:NULL"
    assert source["snapshots"] == [snap]
    assert record["children"] == [vm]
    assert source["current_operations"] == {}
    pool.assert_consistent()


def test_on_a_snapshot_halted_setters_answer_vm_is_snapshot(pool: Pool) -> None:
    snap = pool.call("VM.snapshot", pool.vm(), "snap", [])
    for message, args, operation in (
        ("VM.set_memory_dynamic_range", (GIB, 2 * GIB), "changing_dynamic_range"),
        ("VM.set_memory_static_range", (GIB, 2 * GIB), "changing_static_range"),
        ("VM.set_memory_limits", (GIB, 2 * GIB, GIB, 2 * GIB), "(unknown operation)"),
        ("VM.set_memory", (2 * GIB,), "(unknown operation)"),
        ("VM.set_HVM_shadow_multiplier", (2.0,), "changing_shadow_memory"),
        ("VM.set_VCPUs_max", (4,), "(unknown operation)"),
        ("VM.snapshot", ("again", []), "snapshot"),
    ):
        assert pool.error(message, snap, *args) == ["VM_IS_SNAPSHOT", snap, operation]
    for message, live_args in (
        ("VM.set_memory_target_live", (GIB,)),
        ("VM.set_shadow_multiplier_live", (2.0,)),
        ("VM.wait_memory_target_live", ()),
    ):
        refusal = pool.error(message, snap, *live_args)
        assert refusal == ["VM_BAD_POWER_STATE", snap, "running", "halted"]
    pool.call("VM.set_VCPUs_at_startup", snap, 1)
    assert pool.record("VM", snap)["VCPUs_at_startup"] == 1


def test_copy_and_clone_of_a_snapshot_are_templates(pool: Pool) -> None:
    vm = pool.vm(other_config={"default_template": "true", "xensource_internal": "1"})
    snap = pool.call("VM.snapshot", vm, "snap", [])
    snap_keys = pool.record("VM", snap)["other_config"]
    assert isinstance(snap_keys, dict)
    # A snapshot keeps mac_seed, drops the two keys, names no base template (its source
    # was no template).
    assert "default_template" not in snap_keys and "xensource_internal" not in snap_keys
    source_keys = pool.record("VM", vm)["other_config"]
    assert isinstance(source_keys, dict)
    assert snap_keys["mac_seed"] == source_keys["mac_seed"]
    assert "base_template_name" not in snap_keys
    for message, args in (("VM.copy", ("copied", "OpaqueRef:NULL")), ("VM.clone", ("cloned",))):
        new = pool.call(message, snap, *args)
        record = pool.record("VM", new)
        assert (record["is_a_template"], record["is_a_snapshot"]) == (True, False)
        assert record["snapshot_of"] == "OpaqueRef:NULL"
        assert record["parent"] == "OpaqueRef:NULL"
        keys = record["other_config"]
        assert isinstance(keys, dict)
        assert keys["mac_seed"] != snap_keys["mac_seed"]
        assert keys["base_template_name"] == "snap"
    assert pool.record("VM", snap)["snapshots"] == []


def test_copy_keeps_a_plain_vm_a_vm(pool: Pool) -> None:
    vm = pool.vm()
    new = pool.call("VM.copy", vm, "copied", "OpaqueRef:whatever")
    record = pool.record("VM", new)
    assert (record["is_a_template"], record["is_a_snapshot"]) == (False, False)
    assert record["memory_overhead"] == pool.record("VM", vm)["memory_overhead"]
    pool.call("VM.start", vm, False, False)
    assert pool.error("VM.copy", vm, "again", "OpaqueRef:NULL") == [
        "VM_BAD_POWER_STATE",
        vm,
        "halted",
        "running",
    ]


def test_clone_of_a_default_template(pool: Pool) -> None:
    template = next(
        ref for ref, record in pool.store.records("VM").items() if record["is_default_template"]
    )
    vm = pool.call("VM.clone", template, "installed")
    record = pool.record("VM", vm)
    keys = record["other_config"]
    assert isinstance(keys, dict)
    assert "default_template" not in keys
    assert keys["base_template_name"] == pool.record("VM", template)["name_label"]
    assert (record["is_a_template"], record["is_default_template"]) == (True, False)
    assert record["parent"] == "OpaqueRef:NULL"


def test_destroying_a_vm_gives_its_children_its_parent(pool: Pool) -> None:
    vm = pool.vm()
    first = pool.call("VM.snapshot", vm, "first", [])
    second = pool.call("VM.snapshot", vm, "second", [])
    assert pool.record("VM", second)["parent"] == first
    assert pool.record("VM", vm)["parent"] == second
    pool.call("VM.destroy", second)
    assert pool.record("VM", vm)["parent"] == first
    assert pool.record("VM", first)["children"] == [vm]
    assert pool.record("VM", vm)["snapshots"] == [first]
