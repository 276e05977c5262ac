"""host messages: compute_free_memory (xapi-memory.md §4.2), compute_memory_overhead (§5)."""

from __future__ import annotations

from xenmem.db import Record, Sum
from xenmem.memory import AccountingPolicy, host_free_memory, used_memory
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.records import VmView, memory_of, stored_overhead

__all__ = [
    "INDEXES",
    "RESIDENT_COST",
    "SCHEDULED_COST",
    "SUMS",
    "host_compute_free_memory",
    "host_compute_memory_overhead",
    "host_free_bytes",
    "vm_cost",
]


def vm_cost(vm: VmView) -> int:
    """What a resident or scheduled VM costs its host: dynamic_min + stored overhead (§4.2)."""
    return used_memory(AccountingPolicy.DYNAMIC_MIN, vm.constraints, vm.memory_overhead)


def _record_cost(record: Record) -> int:
    # The store keeps these totals at every commit: read only the two fields they need.
    return used_memory(
        AccountingPolicy.DYNAMIC_MIN, memory_of(record).constraints, stored_overhead(record)
    )


# Running totals of vm_cost per host, kept by the store (see `SUMS`).
RESIDENT_COST = "VM cost by resident_on"
SCHEDULED_COST = "VM cost by scheduled_to_be_resident_on"
# The toolstack looks VMs up by the host they are scheduled to (placement, ledger).
INDEXES = (("VM", "scheduled_to_be_resident_on"),)
SUMS = (
    Sum(name=RESIDENT_COST, cls="VM", group_by="resident_on", value=_record_cost),
    Sum(name=SCHEDULED_COST, cls="VM", group_by="scheduled_to_be_resident_on", value=_record_cost),
)


def host_free_bytes(ctx: Context, host: str, *, ignoring_scheduled: VmView | None = None) -> int:
    """Free memory of `host` from the database, as Host.compute_free_memory (§4.2).

    Every VM resident on the host and every VM scheduled to it costs `vm_cost`; the two
    totals are added, so a VM in both lists counts twice, as in xapi. The VM
    `ignoring_scheduled`, if scheduled to this host, is left out of the scheduled total
    (admission of that very VM, §4.3).
    """
    view = ctx.host(host)
    scheduled = ctx.store.total(SCHEDULED_COST, host)
    if ignoring_scheduled is not None and ignoring_scheduled.scheduled_to_be_resident_on == host:
        scheduled -= vm_cost(ignoring_scheduled)
    costs = (ctx.store.total(RESIDENT_COST, host), scheduled)
    return host_free_memory(view.memory_total, view.memory_overhead, costs)


@implements("host.compute_free_memory")
def host_compute_free_memory(ctx: Context, host: str) -> int:
    return host_free_bytes(ctx, host)


@implements("host.compute_memory_overhead")
def host_compute_memory_overhead(ctx: Context, host: str) -> int:
    """The stored host.memory_overhead: xapi samples it once at start-up (§5)."""
    return ctx.host(host).memory_overhead
