"""VM messages: create, destroy, the domain type, compute_memory_overhead
(xapi-memory.md §2.3, §8)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from xenmem.db import NULL_REF, Record, new_ref
from xenmem.errors import INVALID_VALUE, VM_BAD_POWER_STATE
from xenmem.memory import DomainType, compute_memory_overhead, int64_culprit
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.guard import vm_operation
from xenmem.toolstack.internal import SUSPEND_IMAGE
from xenmem.toolstack.records import PowerState, VmOperation, memory_of

__all__ = [
    "MAC_SEED",
    "create",
    "destroy",
    "set_domain_type",
    "set_hvm_boot_policy",
    "vm_compute_memory_overhead",
    "with_mac_seed",
]


MAC_SEED = "mac_seed"


def _domain_type_of(hvm_boot_policy: str) -> DomainType:
    """xapi_vm_helpers `derive_domain_type`: pv without an HVM boot policy, else hvm."""
    return DomainType.PV if hvm_boot_policy == "" else DomainType.HVM


def derived_domain_type(record: Record) -> str:
    """VM.create's domain type: as given, or derived from the HVM boot policy (§8)."""
    if record["domain_type"] != DomainType.UNSPECIFIED:
        return str(record["domain_type"])
    return _domain_type_of(str(record["HVM_boot_policy"])).value


def with_mac_seed(other_config: Mapping[str, str]) -> dict[str, str]:
    """other_config with a fresh `mac_seed`, in place of any it had (xapi derives the
    VIFs' MACs from it)."""
    return {MAC_SEED: str(uuid.uuid4()), **{k: v for k, v in other_config.items() if k != MAC_SEED}}


@implements("VM.create")
def create(ctx: Context, args: Record) -> str:
    """A new halted VM with its metrics, from a complete constructor record (xapi_vm
    `create`).

    blocked_operations is ignored (stored empty) and other_config gets a `mac_seed` when
    it has none. A Running or Paused power state becomes Halted; Suspended needs a suspend
    image, which xenmem's VMs cannot have: VM_BAD_POWER_STATE [new ref, "halted",
    "suspended"]. memory_overhead is computed at once; the limits are not validated here
    (xapi validates them at start, §3.3), except that settings whose overhead or footprint
    would leave int64 are refused with INVALID_VALUE [field, value].
    """
    if args["power_state"] == PowerState.SUSPENDED:
        raise VM_BAD_POWER_STATE(new_ref(), "halted", "suspended")
    other_config = args["other_config"]
    assert isinstance(other_config, Mapping)
    record = {
        **args,
        "domain_type": derived_domain_type(args),
        "power_state": PowerState.HALTED.value,
        "blocked_operations": {},
        "other_config": other_config if MAC_SEED in other_config else with_mac_seed(other_config),
    }
    memory = memory_of(record)
    # xenmem refuses what xapi's Int64 arithmetic would wrap.
    culprit = int64_culprit(memory)
    if culprit is not None:
        raise INVALID_VALUE(*culprit)
    record["memory_overhead"] = compute_memory_overhead(memory)
    with ctx.store.transaction() as tx:
        metrics = tx.create("VM_metrics", {})
        return tx.create("VM", {**record, "metrics": metrics})


@implements("VM.destroy")
async def destroy(ctx: Context, vm: str) -> None:
    """Remove a halted or suspended VM (its suspend image too) and its metrics; its
    children get its parent as theirs (xapi_vm `destroy`)."""
    async with vm_operation(ctx, vm, VmOperation.DESTROY):
        view = ctx.vm(vm)
        with ctx.store.transaction() as tx:
            for child in view.children:
                tx.update("VM", child, {"parent": view.parent})
            if view.metrics != NULL_REF and tx.get("VM_metrics", view.metrics) is not None:
                tx.delete("VM_metrics", view.metrics)
            if tx.get(SUSPEND_IMAGE, vm) is not None:
                tx.delete(SUSPEND_IMAGE, vm)
            tx.delete("VM", vm)


# xapi_vm_helpers `derive_hvm_boot_policy`: the policy a domain type implies.
_HVM_BOOT_POLICY = "BIOS order"


@implements("VM.set_domain_type")
def set_domain_type(ctx: Context, vm: str, value: str) -> None:
    """xapi_vm `set_domain_type`: any power state, no operation; HVM_boot_policy follows
    ("BIOS order" for hvm, else ""); the overhead is not recomputed, as in xapi."""
    if value == DomainType.UNSPECIFIED:
        raise INVALID_VALUE("domain_type", value)
    ctx.vm(vm)
    policy = _HVM_BOOT_POLICY if value == DomainType.HVM else ""
    with ctx.store.transaction() as tx:
        tx.update("VM", vm, {"domain_type": value, "HVM_boot_policy": policy})


@implements("VM.set_HVM_boot_policy")
def set_hvm_boot_policy(ctx: Context, vm: str, value: str) -> None:
    """xapi_vm `set_HVM_boot_policy`: the domain type follows (pv for "", else hvm);
    nothing is checked and the overhead is not recomputed, as in xapi."""
    ctx.vm(vm)
    with ctx.store.transaction() as tx:
        tx.update("VM", vm, {"domain_type": _domain_type_of(value).value, "HVM_boot_policy": value})


@implements("VM.compute_memory_overhead")
def vm_compute_memory_overhead(ctx: Context, vm: str) -> int:
    """Bytes, from the VM's current limits and its own shadow multiplier (§2.3)."""
    return compute_memory_overhead(ctx.vm(vm).memory)
