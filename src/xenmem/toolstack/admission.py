"""Admission control and host selection (xapi-memory.md §3.3, §4.3–4.6).

Everything here is synchronous on purpose: a caller checks and then marks
scheduled_to_be_resident_on inside one store transaction, with no await between, so
concurrent starts, resumes and migrations can never overcommit a host (§4.5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from xenmem.db import NULL_REF, Record
from xenmem.errors import (
    HOST_DISABLED,
    HOST_NOT_ENOUGH_PCPUS,
    HOST_NOT_LIVE,
    NO_HOSTS_AVAILABLE,
    XenAPIError,
)
from xenmem.memory import (
    GuestLimits,
    assert_enough_memory,
    select_host,
    summarize_host,
    validate_basic_parameters,
)
from xenmem.toolstack.context import Context
from xenmem.toolstack.host import host_free_bytes
from xenmem.toolstack.vm import constraints_of, memory_of

__all__ = [
    "assert_can_boot_here",
    "available_for",
    "choose_host",
    "validate_for_boot",
]


def _int(record: Record, name: str) -> int:
    value = record[name]
    assert isinstance(value, int)
    return value


def validate_for_boot(record: Record) -> None:
    """The boot-time checks: vCPUs, memory, shadow multiplier, in xapi's order (§3.3)."""
    multiplier = record["HVM_shadow_multiplier"]
    assert isinstance(multiplier, float)
    validate_basic_parameters(
        vcpus_max=_int(record, "VCPUs_max"),
        vcpus_at_startup=_int(record, "VCPUs_at_startup"),
        constraints=constraints_of(record),
        shadow_multiplier=multiplier,
    )


def available_for(ctx: Context, host: str, vm: str) -> int:
    """The host's free memory for `vm`: compute_free_memory without the VM's own
    scheduled reservation there (it still counts if resident, §4.3)."""
    return host_free_bytes(ctx, host, ignoring_scheduled=ctx.record("VM", vm))


def _pcpus(host_record: Record) -> int:
    cpu_info = host_record["cpu_info"]
    assert isinstance(cpu_info, Mapping)
    return int(str(cpu_info.get("cpu_count", "1")))


def assert_can_boot_here(ctx: Context, vm: str, host: str, *, memory_check: bool = True) -> None:
    """VM.assert_can_boot_here's checks, in xapi's order (§4.4)."""
    record = ctx.record("VM", vm)
    host_record = ctx.record("host", host)
    validate_for_boot(record)
    if host not in ctx.pool.agents:
        raise HOST_NOT_LIVE()
    already_here = record["power_state"] == "Running" and record["resident_on"] == host
    if not (host_record["enabled"] or record["is_control_domain"] or already_here):
        raise HOST_DISABLED(host)
    if memory_check:
        assert_enough_memory(memory_of(record), available_for(ctx, host, vm))
    platform = record["platform"]
    assert isinstance(platform, Mapping)
    vcpus, pcpus = _int(record, "VCPUs_max"), _pcpus(host_record)
    if vcpus > pcpus and platform.get("vcpu-unrestricted") != "true":
        raise HOST_NOT_ENOUGH_PCPUS(vcpus, pcpus)


def _guests(ctx: Context, host: str) -> list[GuestLimits]:
    refs = list(ctx.store.refs_where("VM", "resident_on", host))
    refs += list(ctx.store.refs_where("VM", "scheduled_to_be_resident_on", host))
    return [_limits(ctx.record("VM", ref)) for ref in refs]


def _limits(record: Record) -> GuestLimits:
    return GuestLimits(constraints=constraints_of(record), overhead=_int(record, "memory_overhead"))


def choose_host(ctx: Context, vm: str) -> str:
    """The host VM.start / resume picks (§4.6): by category and score, then, if no host
    passes, again without xapi's memory check (squeezed has the last word)."""
    record = ctx.record("VM", vm)
    hosts = list(ctx.pool.agents)
    summaries = {}
    for host in hosts:
        host_record = ctx.record("host", host)
        metrics = ctx.record("host_metrics", str(host_record["metrics"]))
        guests = [*_guests(ctx, host), _limits(record)]
        summaries[host] = summarize_host(
            _int(metrics, "memory_total"), _int(host_record, "memory_overhead"), guests
        )
    pool = next(iter(ctx.store.records("pool").values()))
    affinity = str(record["affinity"])

    def passes(memory_check: bool) -> Callable[[str], bool]:
        def validate(host: str) -> bool:
            try:
                assert_can_boot_here(ctx, vm, host, memory_check=memory_check)
            except XenAPIError:
                return False
            return True

        return validate

    for memory_check in (True, False):
        chosen = select_host(
            hosts,
            summaries,
            validate=passes(memory_check),
            draw=ctx.pool.draw,
            affinity=affinity if affinity != NULL_REF else None,
            coordinator=ctx.pool.coordinator,
            coordinator_bias=bool(pool["coordinator_bias"]),
        )
        if chosen is not None:
            return chosen
    raise NO_HOSTS_AVAILABLE()
