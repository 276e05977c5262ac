"""The pool at run time: one host agent per host, booted like xapi's hosts, and a monitor.

A first start creates the pool's records; every start boots each host's agent (squeezed
samples the boot-time free memory once per host boot) and records what xapi's dbsync
records (xapi-memory.md §5): host_metrics.memory_total, host.memory_overhead and dom0's
limits. Domains outlive the toolstack, so a start then reconciles the records with what
the hosts run. The monitor keeps the live numbers (VM.memory_target,
VM_metrics.memory_actual, host_metrics.memory_free, balloon health) in step.

Which hypervisor each host runs on is not decided here: the caller (the composition root,
`xenmem.cli.pool`) hands each host its `HostBackend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xenmem.balloon import SqueezerConfig
from xenmem.db import NULL_REF, Store
from xenmem.errors import HOST_NOT_LIVE
from xenmem.memory import compute_memory_overhead
from xenmem.toolstack.domains import guest_config_error
from xenmem.toolstack.host_agent import BootMeasures, HostAgent, HostBoot
from xenmem.toolstack.host_stats import DomainStat
from xenmem.toolstack.internal import HOST_BOOT, SUSPEND_IMAGE
from xenmem.toolstack.pool import PoolHost, PoolSpec, boot_pool, declared_host
from xenmem.toolstack.records import (
    NO_DOMAIN_METRICS,
    HostView,
    PowerState,
    read_host,
    read_pool,
    read_vm,
)
from xenmem.toolstack.rrdd import Rrdd
from xenmem.toolstack.waiting import OperationWaits, RetryPolicy
from xenmem.xen import Clock, GuestConfigError, Hypervisor, Lab

__all__ = [
    "MONITOR_INTERVAL_S",
    "BackendOf",
    "HostBackend",
    "PoolRuntime",
    "balloon_health",
    "start_pool",
]

log = logging.getLogger(__name__)

# Real seconds between two monitor passes: changes show within a second (dashboard).
MONITOR_INTERVAL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class HostBackend:
    """What one host runs on: its hypervisor and, for a simulated host, its lab."""

    xen: Hypervisor
    lab: Lab | None = None


BackendOf = Callable[[HostView, PoolHost], HostBackend]
"""The backend of a host, given its record and how it was declared."""


@dataclass(kw_only=True)
class PoolRuntime:
    """What the toolstack's messages act on besides the store."""

    store: Store
    clock: Clock
    agents: Mapping[str, HostAgent]
    coordinator: str
    dmc_enabled: bool
    rrdd: Rrdd
    draw: Callable[[], float] = random.random
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    waits: OperationWaits = field(init=False, repr=False)
    _monitor: asyncio.Task[None] | None = field(default=None, repr=False)
    _sampler: asyncio.Task[None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.waits = OperationWaits(self.retry, self.clock, self.draw)

    def agent(self, host: str) -> HostAgent:
        agent = self.agents.get(host)
        if agent is None:
            raise HOST_NOT_LIVE()
        return agent

    def check_guest(self, other_config: Mapping[str, str]) -> None:
        """INVALID_VALUE for a lab guest setting a simulated host could not run."""
        for agent in self.agents.values():
            if agent.lab is not None:
                try:
                    agent.lab.check_guest(other_config)
                except GuestConfigError as error:
                    raise guest_config_error(error) from error
                return

    def start_background(self) -> None:
        """squeezed's periodic rebalance on every host, the monitor and the RRDs."""
        for agent in self.agents.values():
            agent.start_balancing()
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._monitor_forever())
        if self._sampler is None:
            self._sampler = asyncio.create_task(self.rrdd.run_forever())

    async def stop(self) -> None:
        for task in (self._monitor, self._sampler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._monitor = self._sampler = None
        await self.rrdd.save()
        for agent in self.agents.values():
            await agent.stop()

    async def _monitor_forever(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(MONITOR_INTERVAL_S)

    def refresh(self) -> None:
        """Copy every host's live numbers into the records that changed."""
        for host, agent in self.agents.items():
            self._refresh_host(host, agent)
            agent.save()

    def _refresh_host(self, host: str, agent: HostAgent) -> None:
        stats = agent.stats()
        with self.store.transaction() as tx:
            metrics = read_host(tx, host).metrics
            tx.update("host_metrics", metrics, {"memory_free": agent.free_bytes})
            for vm, stat in stats.items():
                record = tx.get("VM", vm)
                if record is None:
                    continue
                tx.update("VM", vm, {"memory_target": stat.target_bytes})
                tx.update(
                    "VM_metrics",
                    str(record["metrics"]),
                    {"memory_actual": stat.actual_bytes, "other_config": balloon_health(stat)},
                )


def balloon_health(stat: DomainStat) -> dict[str, str]:
    """VM_metrics.other_config keys describing the guest's balloon driver.

    `balloon_health` is `cooperative`, `ballooning` (moving toward its target),
    `inactive` (a squeeze found it stuck and it has not moved since), `uncooperative`
    (off target for > 20 s) or `no-driver` (no balloon driver has announced itself);
    times are simulated seconds.
    """
    health = stat.health
    keys: dict[str, str] = {}
    if not stat.can_balloon:
        state = "no-driver"
    elif stat.uncooperative:
        state = "uncooperative"
    elif stat.refused:
        state = "inactive"
    elif stat.on_target:
        state = "cooperative"
    else:
        state = "ballooning"
    keys["balloon_health"] = state
    if health is not None and health.refused_at_s is not None:
        keys["balloon_inactive_since"] = f"{health.refused_at_s:.1f}"
    if health is not None and health.uncooperative_since_s is not None:
        keys["balloon_uncooperative_since"] = f"{health.uncooperative_since_s:.1f}"
    return keys


def _previous_measures(store: Store, host: str) -> BootMeasures | None:
    """What was measured of the host's boot, as recorded at the toolstack's last start."""
    stored = store.get(HOST_BOOT, host)
    if stored is None:
        return None
    free, xen = stored["boot_free_bytes"], stored["xen_bytes"]
    assert isinstance(free, int) and isinstance(xen, int)
    return BootMeasures(boot_id=str(stored["boot_id"]), free_bytes=free, xen_bytes=xen)


def _record_boot(store: Store, host: str, agent: HostAgent, boot: HostBoot) -> None:
    """What dbsync writes at start: totals, the host overhead, dom0's Fixed_size limits."""
    with store.transaction() as tx:
        view = read_host(tx, host)
        tx.update(
            "host_metrics",
            view.metrics,
            {"memory_total": boot.total_bytes, "memory_free": agent.free_bytes},
        )
        tx.update("host", host, {"memory_overhead": boot.memory_overhead})
        measures = boot.measures
        measured = {
            "boot_id": measures.boot_id,
            "boot_free_bytes": measures.free_bytes,
            "xen_bytes": measures.xen_bytes,
        }
        if tx.get(HOST_BOOT, host) is None:
            tx.create(HOST_BOOT, measured, ref=host)
        else:
            tx.update(HOST_BOOT, host, measured)
        dom0 = view.control_domain
        limits = {
            f"memory_{k}": boot.dom0_bytes
            for k in ("static_min", "dynamic_min", "target", "dynamic_max", "static_max")
        }
        tx.update("VM", dom0, limits)
        dom0_view = read_vm(tx, dom0)
        tx.update("VM", dom0, {"memory_overhead": compute_memory_overhead(dom0_view.memory)})
        tx.update("VM_metrics", dom0_view.metrics, {"memory_actual": boot.dom0_bytes})


def _reconcile(store: Store, agents: Mapping[str, HostAgent]) -> None:
    """Make the records and the hosts agree after a start (xapi's resync after a restart).

    A finished build wins: its VM is resident there (a start, resume or migration that the
    toolstack could not record); an unfinished one is destroyed; a VM whose domain is gone
    is halted (after a host reboot, or a suspend cut short); a domain whose VM no longer
    exists is destroyed. Reservation markers and operations of the previous process are
    dropped, and the recorded ranges are put back. The records change in one transaction;
    the hosts are changed after it commits.
    """
    vms = {vm: read_vm(store, vm) for vm in store.records("VM")}
    doomed: list[tuple[HostAgent, str]] = []
    homes: dict[str, str] = {}
    for host, agent in agents.items():
        for vm in agent.domains.resident:
            if vm not in vms:
                log.warning("destroying a domain of unknown VM %s on host %s", vm, host)
                doomed.append((agent, vm))
    for vm, view in vms.items():
        if view.is_control_domain:
            continue
        built = [h for h, agent in agents.items() if agent.domains.is_built(vm)]
        home = view.resident_on if view.resident_on in built else (built[0] if built else None)
        if home is not None:
            homes[vm] = home
        doomed += [
            (agent, vm)
            for host, agent in agents.items()
            if host != home and agent.domains.domid_of(vm) is not None
        ]
    with store.transaction() as tx:
        for vm, view in vms.items():
            if view.is_control_domain:
                continue
            changes: dict[str, object] = {
                "current_operations": {},
                "scheduled_to_be_resident_on": NULL_REF,
            }
            home = homes.get(vm)
            if home is not None:
                domains = agents[home].domains
                paused = domains.info(vm).paused
                changes |= {
                    "resident_on": home,
                    "power_state": (PowerState.PAUSED if paused else PowerState.RUNNING).value,
                    "domid": domains.domid_of(vm),
                }
                if tx.get(SUSPEND_IMAGE, vm) is not None:
                    tx.delete(SUSPEND_IMAGE, vm)
            elif view.power_state in (PowerState.RUNNING, PowerState.PAUSED):
                changes |= {
                    "power_state": PowerState.HALTED.value,
                    "resident_on": NULL_REF,
                    "domid": -1,
                }
                tx.update("VM_metrics", view.metrics, NO_DOMAIN_METRICS)
            tx.update("VM", vm, changes)
    for agent, vm in doomed:
        agent.domains.destroy(vm)
    for vm, home in homes.items():
        limits = vms[vm].constraints
        agents[home].domains.restore_range(vm, limits.dynamic_min, limits.dynamic_max)


async def start_pool(
    store: Store,
    spec: PoolSpec,
    clock: Clock,
    backend_of: BackendOf,
    *,
    config: SqueezerConfig | None = None,
    draw: Callable[[], float] = random.random,
    rrd_path: Path | None = None,
    wall_time: Callable[[], float] = time.time,
    retry: RetryPolicy | None = None,
) -> PoolRuntime:
    """Create the pool's records on the first start, boot every host's agent, reconcile;
    the RRDs are kept in `rrd_path` (if any), on `wall_time`; `retry` says how calls wait
    for another operation to end (xapi's by default)."""
    coordinator = boot_pool(store, spec)
    squeezer_config = config or SqueezerConfig()
    agents = {}
    for host in store.records("host"):
        backend = backend_of(read_host(store, host), declared_host(store, host))
        agents[host] = HostAgent(
            xen=backend.xen, clock=clock, config=squeezer_config, lab=backend.lab
        )
    previous = {host: _previous_measures(store, host) for host in agents}
    boots = await asyncio.gather(*(agent.boot(previous[host]) for host, agent in agents.items()))
    for (host, agent), boot in zip(agents.items(), boots, strict=True):
        _record_boot(store, host, agent, boot)
    _reconcile(store, agents)
    pool = read_pool(store)
    assert pool is not None, "boot_pool created the pool"
    return PoolRuntime(
        store=store,
        clock=clock,
        agents=agents,
        coordinator=coordinator,
        dmc_enabled=pool.dmc_enabled,
        rrdd=Rrdd(store, agents, coordinator, path=rrd_path, wall_time=wall_time),
        draw=draw,
        retry=retry or RetryPolicy(),
    )
