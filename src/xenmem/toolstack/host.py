"""host messages: compute_free_memory (xapi-memory.md §4.2), compute_memory_overhead (§5)."""

from __future__ import annotations

from xenmem.db import Record, Sum
from xenmem.memory import AccountingPolicy, host_free_memory, used_memory
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.vm import constraints_of

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


def _stored_overhead(record: Record) -> int:
    value = record["memory_overhead"]
    assert isinstance(value, int)
    return value


def vm_cost(record: Record) -> int:
    """What a resident or scheduled VM costs its host: dynamic_min + stored overhead (§4.2)."""
    return used_memory(
        AccountingPolicy.DYNAMIC_MIN, constraints_of(record), _stored_overhead(record)
    )


# Running totals of vm_cost per host, kept by the store (see `SUMS`).
RESIDENT_COST = "VM cost by resident_on"
SCHEDULED_COST = "VM cost by scheduled_to_be_resident_on"
# The toolstack looks VMs up by the host they are scheduled to (placement, ledger).
INDEXES = (("VM", "scheduled_to_be_resident_on"),)
SUMS = (
    Sum(name=RESIDENT_COST, cls="VM", group_by="resident_on", value=vm_cost),
    Sum(name=SCHEDULED_COST, cls="VM", group_by="scheduled_to_be_resident_on", value=vm_cost),
)


def host_free_bytes(ctx: Context, host: str, *, ignoring_scheduled: Record | None = None) -> int:
    """Free memory of `host` from the database, as Host.compute_free_memory (§4.2).

    Every VM resident on the host and every VM scheduled to it costs `vm_cost`; the two
    totals are added, so a VM in both lists counts twice, as in xapi. The VM record
    `ignoring_scheduled`, if scheduled to this host, is left out of the scheduled total
    (admission of that very VM, §4.3).
    """
    host_record = ctx.record("host", host)
    metrics = ctx.record("host_metrics", str(host_record["metrics"]))
    scheduled = ctx.store.total(SCHEDULED_COST, host)
    if ignoring_scheduled is not None and ignoring_scheduled["scheduled_to_be_resident_on"] == host:
        scheduled -= vm_cost(ignoring_scheduled)
    costs = (ctx.store.total(RESIDENT_COST, host), scheduled)
    total = metrics["memory_total"]
    assert isinstance(total, int)
    return host_free_memory(total, _stored_overhead(host_record), costs)


@implements("host.compute_free_memory")
def host_compute_free_memory(ctx: Context, host: str) -> int:
    return host_free_bytes(ctx, host)


@implements("host.compute_memory_overhead")
def host_compute_memory_overhead(ctx: Context, host: str) -> int:
    """The stored host.memory_overhead: xapi samples it once at start-up (§5)."""
    return _stored_overhead(ctx.record("host", host))
