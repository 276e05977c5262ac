"""The pool at run time: one host agent per host, booted like xapi's hosts, and a monitor.

A first start boots every simulated host (Xen takes its share, dom0 its memory, squeezed
samples the boot-time free memory) and records what xapi's dbsync records (xapi-memory.md
§5): host_metrics.memory_total, host.memory_overhead and dom0's limits. The hosts' state
is kept beside the database, so a later start (after a clean stop or a crash) finds the
guests still running, with the time that passed meanwhile; it then reconciles the records
with the hosts. The monitor keeps the live numbers (VM.memory_target,
VM_metrics.memory_actual, host_metrics.memory_free, balloon health) in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xenmem.balloon import SqueezerConfig
from xenmem.db import NULL_REF, Store
from xenmem.errors import HOST_NOT_LIVE
from xenmem.memory import compute_memory_overhead
from xenmem.memory.units import bytes_of_kib
from xenmem.toolstack.host_agent import DomainStat, HostAgent, HostBoot
from xenmem.toolstack.internal import SUSPEND_IMAGE
from xenmem.toolstack.pool import PoolSpec, boot_pool, simulated_host
from xenmem.toolstack.vm import constraints_of, memory_of
from xenmem.xen import Clock

__all__ = ["MONITOR_INTERVAL_S", "PoolRuntime", "balloon_health", "resume_time", "start_pool"]

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
            agent.save()

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


def _reconcile(store: Store, agents: Mapping[str, HostAgent]) -> None:
    """Make the records and the hosts agree after a start (xapi's resync after a restart).

    A finished build wins: its VM is resident there (a start, resume or migration that the
    toolstack could not record); an unfinished one is destroyed; a VM whose domain is gone
    is halted (after a host reboot, or a suspend cut short). Reservation markers and
    operations of the previous process are dropped, and the recorded ranges are put back.
    """
    known_vms = set(store.records("VM"))
    for agent in agents.values():
        for vm in set(agent.resident) - known_vms:
            agent.destroy(vm)  # its VM was destroyed meanwhile
    with store.transaction() as tx:
        for vm, record in store.records("VM").items():
            if record["is_control_domain"]:
                continue
            changes: dict[str, object] = {
                "current_operations": {},
                "scheduled_to_be_resident_on": NULL_REF,
            }
            built = [h for h, agent in agents.items() if agent.is_built(vm)]
            home = str(record["resident_on"]) if record["resident_on"] in built else None
            home = home or (built[0] if built else None)
            for host, agent in agents.items():
                if host != home and agent.domid_of(vm) is not None:
                    agent.destroy(vm)
            if home is not None:
                agent = agents[home]
                limits = constraints_of(record)
                agent.restore_range(vm, limits.dynamic_min, limits.dynamic_max)
                paused = agent.is_paused(vm)
                changes |= {
                    "resident_on": home,
                    "power_state": "Paused" if paused else "Running",
                    "domid": agent.domid_of(vm),
                }
                if tx.get(SUSPEND_IMAGE, vm) is not None:
                    tx.delete(SUSPEND_IMAGE, vm)
            elif record["power_state"] in ("Running", "Paused"):
                changes |= {"power_state": "Halted", "resident_on": NULL_REF, "domid": -1}
                tx.update("VM_metrics", str(record["metrics"]), {"memory_actual": 0})
            tx.update("VM", vm, changes)


def resume_time(hosts_dir: Path, scale: float) -> float:
    """The simulated time to resume at: the latest saved host time plus the time that
    passed since, at the time scale (guests run on while the toolstack is down)."""
    latest = 0.0
    for path in hosts_dir.glob("*.json"):
        saved = HostAgent.load_saved(path)
        if saved is not None:
            downtime = max(0.0, time.time() - float(saved["saved_at"]))
            latest = max(latest, float(saved["host"]["time_s"]) + downtime * scale)
    return latest


async def start_pool(
    store: Store,
    spec: PoolSpec,
    clock: Clock,
    *,
    config: SqueezerConfig | None = None,
    draw: Callable[[], float] = random.random,
    hosts_dir: Path | None = None,
) -> PoolRuntime:
    """Create the pool's records on the first start, boot or resume every host, reconcile.

    With `hosts_dir`, each host's state is kept there (and resumed from there); `clock`
    must then start at `resume_time(hosts_dir, scale)`.
    """
    coordinator = boot_pool(store, spec)
    squeezer_config = config or SqueezerConfig()
    agents = {}
    for host, record in store.records("host").items():
        save_path = None if hosts_dir is None else hosts_dir / f"{record['uuid']}.json"
        agents[host] = HostAgent(
            spec=simulated_host(store, host)[1],
            clock=clock,
            config=squeezer_config,
            save_path=save_path,
            saved=None if save_path is None else HostAgent.load_saved(save_path),
        )
    boots = await asyncio.gather(*(agent.boot() for agent in agents.values()))
    for (host, agent), boot in zip(agents.items(), boots, strict=True):
        _record_boot(store, host, agent, boot)
    _reconcile(store, agents)
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
