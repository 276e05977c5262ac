"""The pool at run time: one host agent per host, booted like xapi's hosts, and a monitor.

A start boots every simulated host (Xen takes its share, dom0 its memory, squeezed samples
the boot-time free memory) and records what xapi's dbsync records (xapi-memory.md §5):
host_metrics.memory_total, host.memory_overhead and dom0's limits. The simulated hosts
start afresh, so VMs the database shows running are reset as after a host reboot. The
monitor then keeps the live numbers (VM.memory_target, VM_metrics.memory_actual,
host_metrics.memory_free, balloon health) in step with the hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from xenmem.balloon import SqueezerConfig
from xenmem.db import NULL_REF, Store
from xenmem.errors import HOST_NOT_LIVE
from xenmem.memory import compute_memory_overhead
from xenmem.memory.units import bytes_of_kib
from xenmem.toolstack.host_agent import DomainStat, HostAgent, HostBoot
from xenmem.toolstack.pool import PoolSpec, boot_pool, simulated_host
from xenmem.toolstack.vm import memory_of
from xenmem.xen import Clock

__all__ = ["MONITOR_INTERVAL_S", "PoolRuntime", "balloon_health", "start_pool"]

# Real seconds between two monitor passes: changes show within a second (dashboard).
MONITOR_INTERVAL_S = 0.5


@dataclass(kw_only=True)
class PoolRuntime:
    """What the toolstack's messages act on besides the store."""

    store: Store
    clock: Clock
    agents: Mapping[str, HostAgent]
    coordinator: str
    dmc_enabled: bool
    draw: Callable[[], float] = random.random
    _monitor: asyncio.Task[None] | None = field(default=None, repr=False)

    def agent(self, host: str) -> HostAgent:
        agent = self.agents.get(host)
        if agent is None:
            raise HOST_NOT_LIVE()
        return agent

    def start_background(self) -> None:
        """squeezed's periodic rebalance on every host, and the monitor."""
        for agent in self.agents.values():
            agent.start_balancing()
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._monitor_forever())

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
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

    def _refresh_host(self, host: str, agent: HostAgent) -> None:
        stats = agent.stats()
        host_record = self.store.get("host", host)
        assert host_record is not None
        changes: list[tuple[str, str, dict[str, object]]] = [
            ("host_metrics", str(host_record["metrics"]), {"memory_free": agent.free_bytes})
        ]
        for vm, stat in stats.items():
            record = self.store.get("VM", vm)
            if record is None:
                continue
            changes.append(("VM", vm, {"memory_target": stat.target_bytes}))
            changes.append(
                (
                    "VM_metrics",
                    str(record["metrics"]),
                    {"memory_actual": stat.actual_bytes, "other_config": balloon_health(stat)},
                )
            )
        with self.store.transaction() as tx:
            for cls, ref, wanted in changes:
                if tx.get(cls, ref) is not None:
                    tx.update(cls, ref, wanted)


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


def _record_boot(store: Store, host: str, agent: HostAgent, boot: HostBoot) -> None:
    """What dbsync writes at start: totals, the host overhead, dom0's Fixed_size limits."""
    host_record = store.get("host", host)
    assert host_record is not None
    dom0_bytes = bytes_of_kib(next(d.tot_kib for d in agent.xen.domains() if d.domid == 0))
    dom0 = str(host_record["control_domain"])
    with store.transaction() as tx:
        tx.update(
            "host_metrics",
            str(host_record["metrics"]),
            {"memory_total": boot.total_bytes, "memory_free": agent.free_bytes},
        )
        tx.update("host", host, {"memory_overhead": boot.memory_overhead})
        limits = {
            f"memory_{k}": dom0_bytes
            for k in ("static_min", "dynamic_min", "target", "dynamic_max", "static_max")
        }
        current = tx.get("VM", dom0)
        assert current is not None
        overhead = compute_memory_overhead(memory_of({**current, **limits}))
        tx.update("VM", dom0, {**limits, "memory_overhead": overhead})
        tx.update("VM_metrics", str(current["metrics"]), {"memory_actual": dom0_bytes})


def _reset_after_host_reboot(store: Store) -> None:
    """The hosts started empty: running and paused guests are gone, reservations too."""
    with store.transaction() as tx:
        for vm, record in store.records("VM").items():
            changes: dict[str, object] = {}
            if record["current_operations"]:
                changes["current_operations"] = {}
            if record["scheduled_to_be_resident_on"] != NULL_REF:
                changes["scheduled_to_be_resident_on"] = NULL_REF
            if not record["is_control_domain"] and record["power_state"] in ("Running", "Paused"):
                changes |= {"power_state": "Halted", "resident_on": NULL_REF, "domid": -1}
                tx.update("VM_metrics", str(record["metrics"]), {"memory_actual": 0})
            if changes:
                tx.update("VM", vm, changes)


async def start_pool(
    store: Store,
    spec: PoolSpec,
    clock: Clock,
    *,
    config: SqueezerConfig | None = None,
    draw: Callable[[], float] = random.random,
) -> PoolRuntime:
    """Create the pool's records on the first start, boot every host, reconcile the VMs."""
    coordinator = boot_pool(store, spec)
    agents = {
        host: HostAgent(
            spec=simulated_host(store, host)[1], clock=clock, config=config or SqueezerConfig()
        )
        for host in store.records("host")
    }
    boots = await asyncio.gather(*(agent.boot() for agent in agents.values()))
    for (host, agent), boot in zip(agents.items(), boots, strict=True):
        _record_boot(store, host, agent, boot)
    _reset_after_host_reboot(store)
    pool = next(iter(store.records("pool").values()))
    restrictions = pool["restrictions"]
    assert isinstance(restrictions, Mapping)
    return PoolRuntime(
        store=store,
        clock=clock,
        agents=agents,
        coordinator=coordinator,
        # DMC is on only when the pool says restrict_dmc = false (xapi-memory.md §3.2).
        dmc_enabled=restrictions.get("restrict_dmc") == "false",
        draw=draw,
    )
