"""The pool's first boot: the pool, host, host_metrics, dom0 and template records.

A `PoolSpec` declares the pool's hosts (name, memory, CPUs, dom0 and Xen's share); the
declared sizes are kept with each host record so that every later start brings up the same
hosts. The memory numbers of the records (host_metrics.memory_total, host.memory_overhead,
dom0's limits) are written when each host boots (`toolstack.runtime`), from what its Xen
reports (xapi-memory.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from xenmem.db import Store
from xenmem.toolstack.internal import SIMULATED_HOST
from xenmem.toolstack.records import PowerState, read_pool
from xenmem.toolstack.templates import create_templates

__all__ = ["API_VERSION", "PoolHost", "PoolSpec", "boot_pool", "declared_host"]

API_VERSION = (2, 23)  # host.API_version_major/minor of the xapi the spec describes (§5.1)


@dataclass(frozen=True, kw_only=True)
class PoolHost:
    """One host of the pool as declared; sizes in bytes."""

    name: str
    memory: int
    cpus: int
    dom0_memory: int
    xen_memory: int


@dataclass(frozen=True, kw_only=True)
class PoolSpec:
    name: str
    dmc: bool
    hosts: tuple[PoolHost, ...]


def _boot_host(store: Store, spec: PoolHost, now: datetime) -> str:
    """The host's records; their memory numbers are filled in when the host boots."""
    with store.transaction() as tx:
        metrics = tx.create("host_metrics", {"live": True, "last_updated": now})
        host = tx.create(
            "host",
            {
                "name_label": spec.name,
                "hostname": spec.name,
                "address": "127.0.0.1",
                "metrics": metrics,
                "API_version_major": API_VERSION[0],
                "API_version_minor": API_VERSION[1],
                "API_version_vendor": "XenSource",
                "software_version": {
                    "product_brand": "xenmem",
                    "xapi": f"{API_VERSION[0]}.{API_VERSION[1]}",
                },
                "cpu_info": {"cpu_count": str(spec.cpus)},
            },
        )
        tx.create(
            SIMULATED_HOST,
            {
                "memory": spec.memory,
                "cpus": spec.cpus,
                "dom0_memory": spec.dom0_memory,
                "xen_memory": spec.xen_memory,
            },
            ref=host,
        )
        vm_metrics = tx.create(
            "VM_metrics",
            {"VCPUs_number": spec.cpus, "current_domain_type": "pv", "start_time": now},
        )
        dom0 = tx.create(
            "VM",
            {
                "name_label": f"Control domain on host: {spec.name}",
                "power_state": PowerState.RUNNING.value,
                "is_control_domain": True,
                "resident_on": host,
                "domain_type": "pv",
                "domid": 0,
                "metrics": vm_metrics,
                "VCPUs_max": spec.cpus,
                "VCPUs_at_startup": spec.cpus,
            },
        )
        tx.update("host", host, {"control_domain": dom0})
    return host


def declared_host(store: Store, host: str) -> PoolHost:
    """The host a host record stands for, as it was declared at the pool's first boot."""
    stored = store.get(SIMULATED_HOST, host)
    record = store.get("host", host)
    assert stored is not None and record is not None
    return PoolHost(
        name=str(record["name_label"]),
        memory=int(str(stored["memory"])),
        cpus=int(str(stored["cpus"])),
        dom0_memory=int(str(stored["dom0_memory"])),
        xen_memory=int(str(stored["xen_memory"])),
    )


def boot_pool(store: Store, spec: PoolSpec, now: datetime | None = None) -> str:
    """Create the pool's records on the first start; later starts keep what is stored.

    Returns the pool's master host.
    """
    existing = read_pool(store)
    if existing is not None:
        return existing.coordinator
    now = now or datetime.now(UTC)
    hosts = [_boot_host(store, h, now) for h in spec.hosts]
    with store.transaction() as tx:
        create_templates(tx)
        tx.create(
            "pool",
            {
                "name_label": spec.name,
                "master": hosts[0],
                "restrictions": {"restrict_dmc": "false" if spec.dmc else "true"},
            },
        )
    return hosts[0]
