"""VM.clone, VM.copy and VM.snapshot of a VM without disks (xapi_vm_clone.ml, xapi_vm.ml).

xapi makes the new VM in `copy_vm_record`: the memory settings, the stored overhead (not
recomputed), the vCPUs, platform, domain type and most other fields are copied verbatim;
the new VM gets its own metrics, a copy of the source's (so it inherits nested_virt and
nomigrate); it has no blocked operations. A snapshot is a template that is a snapshot of
its source, taken now, and becomes the source's parent (its own parent is the source's
old one); a clone or copy is a new top-level VM (CA-52668), a template when its source is
one, with a fresh other_config:mac_seed. Every kind drops other_config:default_template
and xensource_internal, and a copy of a template records base_template_name.

Every result is Halted: a snapshot always is, and only a suspended snapshot may be cloned
or copied suspended, which xenmem never has (its snapshots never run). Disks, VIFs and the
VM_SNAPSHOTTED message are not modelled.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from datetime import UTC, datetime

from xenmem.db import NULL_REF, Record
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.guard import vm_operation
from xenmem.toolstack.records import PowerState, VmOperation
from xenmem.toolstack.vm import with_mac_seed

__all__ = ["CloneKind", "clone", "copy", "snapshot"]

_DROPPED_KEYS = ("default_template", "xensource_internal")
_BASE_TEMPLATE_NAME = "base_template_name"
_INT64_MAX = 2**63 - 1


class CloneKind(enum.Enum):
    """xapi_vm_clone's disk operations, as the VM operation each runs under."""

    CLONE = VmOperation.CLONE
    COPY = VmOperation.COPY
    SNAPSHOT = VmOperation.SNAPSHOT


# The fields a new VM does not take from its source; the rest is copied verbatim.
_FRESH: Mapping[str, object] = {
    "uuid": "",
    "power_state": PowerState.HALTED.value,
    "allowed_operations": [],
    "current_operations": {},
    "blocked_operations": {},
    "is_default_template": False,
    "transportable_snapshot_id": "",
    "snapshot_metadata": "",  # xapi: the source's record, serialised, for a snapshot
    "resident_on": NULL_REF,
    "scheduled_to_be_resident_on": NULL_REF,
    "suspend_VDI": NULL_REF,
    "domid": -1,
    "domarch": "",
    "guest_metrics": NULL_REF,  # xenmem keeps no guest metrics to copy
    "blobs": {},
    "ha_always_run": False,
    "protection_policy": NULL_REF,
    "is_snapshot_from_vmpp": False,
    "snapshot_schedule": NULL_REF,
    "is_vmss_snapshot": False,
    "appliance": NULL_REF,
    "start_delay": 0,
    "shutdown_delay": 0,
    "order": 0,
    "suspend_SR": NULL_REF,
    "version": 0,
    "requires_reboot": False,
    "pending_guidances": [],
    "pending_guidances_recommended": [],
    "pending_guidances_full": [],
}


def _fresh_generation_id(current: str) -> str:
    """xapi_vm_helpers `fresh_genid`: two random int64s, or "" when the source has none."""
    if current == "":
        return ""
    return f"{random.randrange(_INT64_MAX)}:{random.randrange(_INT64_MAX)}"


def _other_config(source: Record, kind: CloneKind) -> dict[str, str]:
    other_config = source["other_config"]
    assert isinstance(other_config, Mapping)
    keys: dict[str, str] = dict(other_config)
    if kind is not CloneKind.SNAPSHOT:
        keys = with_mac_seed(keys)
    keys = {k: v for k, v in keys.items() if k not in _DROPPED_KEYS}
    if source["is_a_template"] and _BASE_TEMPLATE_NAME not in keys:
        keys = {_BASE_TEMPLATE_NAME: str(source["name_label"]), **keys}
    return keys


def _snapshot_fields(ctx: Context, vm: str, source: Record, kind: CloneKind) -> dict[str, object]:
    defaults = ctx.store.schema("VM").defaults
    if kind is not CloneKind.SNAPSHOT:
        return {
            name: defaults[name]
            for name in ("is_a_snapshot", "snapshot_of", "snapshot_time", "snapshot_info")
        } | {"parent": NULL_REF}
    return {
        "is_a_snapshot": True,
        "snapshot_of": vm,
        "snapshot_time": datetime.now(UTC),
        "snapshot_info": {
            "disk-snapshot-type": "crash_consistent",
            "power-state-at-snapshot": str(source["power_state"]),
        },
        "parent": source["parent"],
    }


def copy_vm(ctx: Context, vm: str, kind: CloneKind, new_name: str) -> str:
    """The new VM's ref; `vm` must be marked with the kind's operation."""
    source = ctx.record("VM", vm)
    with ctx.store.transaction() as tx:
        metrics = tx.get("VM_metrics", str(source["metrics"]))
        copied_metrics = {} if metrics is None else {**metrics, "uuid": ""}
        new_metrics = tx.create("VM_metrics", copied_metrics)
        new_vm = tx.create(
            "VM",
            {
                **source,
                **_FRESH,
                **_snapshot_fields(ctx, vm, source, kind),
                "name_label": new_name,
                "is_a_template": kind is CloneKind.SNAPSHOT or bool(source["is_a_template"]),
                "other_config": _other_config(source, kind),
                "metrics": new_metrics,
                "generation_id": _fresh_generation_id(str(source["generation_id"])),
                "snapshots": [],
                "children": [],
            },
        )
        if kind is CloneKind.SNAPSHOT:
            tx.update("VM", vm, {"parent": new_vm})
        return new_vm


async def _run(ctx: Context, vm: str, kind: CloneKind, new_name: str) -> str:
    async with vm_operation(ctx, vm, kind.value):
        return copy_vm(ctx, vm, kind, new_name)


@implements("VM.clone")
async def clone(ctx: Context, vm: str, new_name: str) -> str:
    """A new halted VM like `vm` (a halted VM, template or snapshot)."""
    return await _run(ctx, vm, CloneKind.CLONE, new_name)


@implements("VM.copy")
async def copy(ctx: Context, vm: str, new_name: str, sr: str) -> str:
    """As clone: with no disks, the SR does not matter (xapi treats a ref that names no
    SR as "the disks' own SRs", and xenmem has no SR)."""
    return await _run(ctx, vm, CloneKind.COPY, new_name)


@implements("VM.snapshot")
async def snapshot(ctx: Context, vm: str, new_name: str, ignore_vdis: list[str]) -> str:
    """A snapshot of `vm` in any power state: a halted template with its memory settings."""
    return await _run(ctx, vm, CloneKind.SNAPSHOT, new_name)
