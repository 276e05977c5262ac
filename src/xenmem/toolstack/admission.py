"""Admission control and host selection (xapi-memory.md §3.3, §4.3–4.6).

Everything here is synchronous on purpose: a caller checks and then marks
scheduled_to_be_resident_on inside one store transaction, with no await between, so
concurrent starts, resumes and migrations can never overcommit a host (§4.5).
"""

from __future__ import annotations

from collections.abc import Callable

from xenmem.db import NULL_REF
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
from xenmem.toolstack.records import PowerState, VmView, read_pool

__all__ = [
    "assert_can_boot_here",
    "available_for",
    "choose_host",
    "validate_for_boot",
]


def validate_for_boot(vm: VmView) -> None:
    """The boot-time checks: vCPUs, memory, shadow multiplier, in xapi's order (§3.3)."""
    validate_basic_parameters(
        vcpus_max=vm.memory.vcpus_max,
        vcpus_at_startup=vm.vcpus_at_startup,
        constraints=vm.constraints,
        shadow_multiplier=vm.memory.shadow_multiplier,
    )


def available_for(ctx: Context, host: str, vm: VmView) -> int:
    """The host's free memory for `vm`: compute_free_memory without the VM's own
    scheduled reservation there (it still counts if resident, §4.3)."""
    return host_free_bytes(ctx, host, ignoring_scheduled=vm)


def assert_can_boot_here(ctx: Context, vm: str, host: str, *, memory_check: bool = True) -> None:
    """VM.assert_can_boot_here's checks, in xapi's order (§4.4)."""
    view = ctx.vm(vm)
    host_view = ctx.host(host)
    validate_for_boot(view)
    if host not in ctx.pool.agents:
        raise HOST_NOT_LIVE()
    already_here = view.power_state is PowerState.RUNNING and view.resident_on == host
    if not (host_view.enabled or view.is_control_domain or already_here):
        raise HOST_DISABLED(host)
    if memory_check:
        assert_enough_memory(view.memory, available_for(ctx, host, view))
    vcpus, pcpus = view.memory.vcpus_max, host_view.cpu_count
    if vcpus > pcpus and view.platform.get("vcpu-unrestricted") != "true":
        raise HOST_NOT_ENOUGH_PCPUS(vcpus, pcpus)


def _guests(ctx: Context, host: str) -> list[GuestLimits]:
    refs = list(ctx.store.refs_where("VM", "resident_on", host))
    refs += list(ctx.store.refs_where("VM", "scheduled_to_be_resident_on", host))
    return [_limits(ctx.vm(ref)) for ref in refs]


def _limits(vm: VmView) -> GuestLimits:
    return GuestLimits(constraints=vm.constraints, overhead=vm.memory_overhead)


def choose_host(ctx: Context, vm: str) -> str:
    """The host VM.start / resume picks (§4.6): by category and score, then, if no host
    passes, again without xapi's memory check (squeezed has the last word)."""
    view = ctx.vm(vm)
    hosts = list(ctx.pool.agents)
    summaries = {}
    for host in hosts:
        host_view = ctx.host(host)
        guests = [*_guests(ctx, host), _limits(view)]
        summaries[host] = summarize_host(host_view.memory_total, host_view.memory_overhead, guests)
    pool = read_pool(ctx.store)
    coordinator_bias = pool is not None and pool.coordinator_bias

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
            affinity=view.affinity if view.affinity != NULL_REF else None,
            coordinator=ctx.pool.coordinator,
            coordinator_bias=coordinator_bias,
        )
        if chosen is not None:
            return chosen
    raise NO_HOSTS_AVAILABLE()
