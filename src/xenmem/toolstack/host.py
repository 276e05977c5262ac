"""host messages: compute_free_memory (xapi-memory.md §4.2), compute_memory_overhead (§5)."""

from __future__ import annotations

from xenmem.db import Record
from xenmem.memory import AccountingPolicy, host_free_memory, used_memory
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.vm import constraints_of

__all__ = ["host_compute_free_memory", "host_compute_memory_overhead", "host_free_bytes"]


def _stored_overhead(record: Record) -> int:
    value = record["memory_overhead"]
    assert isinstance(value, int)
    return value


def host_free_bytes(ctx: Context, host: str) -> int:
    """Free memory of `host` from the database, as Host.compute_free_memory (§4.2).

    Every VM resident on the host and every VM scheduled to it costs dynamic_min plus its
    stored overhead; the two lists are concatenated, so a VM in both counts twice.
    """
    host_record = ctx.record("host", host)
    metrics = ctx.record("host_metrics", str(host_record["metrics"]))
    resident = ctx.store.refs_where("VM", "resident_on", host)
    scheduled = ctx.store.refs_where("VM", "scheduled_to_be_resident_on", host)
    vms = ctx.store.records("VM")
    costs = (
        used_memory(
            AccountingPolicy.DYNAMIC_MIN, constraints_of(vms[vm]), _stored_overhead(vms[vm])
        )
        for vm in [*resident, *scheduled]
    )
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
