"""The pool file and the pool's first boot: pool, hosts, host_metrics and dom0 records.

Pool file (TOML; sizes take xe's suffixes, xapi-memory.md §1):

    [pool]
    name = "lab"
    dmc = true

    [[host]]
    name = "host1"
    memory = "64GiB"
    cpus = 16
    dom0_memory = "4304MiB"   # optional: the installer's rule, see dom0_memory_default
    xen_memory = "987MiB"     # optional: Xen + crash kernel, see xen_memory_default

Until hosts are simulated, host_metrics.memory_total is the file's `memory` and
host.memory_overhead = (total - boot_free) + 73728 KiB with boot_free = total - xen_memory:
dom0 is part of the boot-time free memory (§5).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from xenmem.db import Store
from xenmem.memory import compute_memory_overhead, host_memory_overhead, parse_size
from xenmem.memory.units import BYTES_PER_MIB, SizeParseError
from xenmem.toolstack.vm import memory_of

__all__ = [
    "API_VERSION",
    "DEFAULT_POOL",
    "HostSpec",
    "PoolFileError",
    "PoolSpec",
    "boot_pool",
    "dom0_memory_default",
    "load_pool_file",
    "xen_memory_default",
]

API_VERSION = (2, 23)  # host.API_version_major/minor of the xapi the spec describes (§5.1)
_GIB = 1024 * BYTES_PER_MIB
_CRASH_KERNEL = 256 * BYTES_PER_MIB


class PoolFileError(ValueError):
    """The pool file is unreadable or says something impossible; the message says what."""


@dataclass(frozen=True, kw_only=True)
class HostSpec:
    name: str
    memory: int
    cpus: int
    dom0_memory: int
    xen_memory: int


@dataclass(frozen=True, kw_only=True)
class PoolSpec:
    name: str
    dmc: bool
    hosts: tuple[HostSpec, ...]


def dom0_memory_default(memory: int) -> int:
    """The installer's dom0 size: 1 GiB + 5 % of (RAM + 256 MiB), down to 16 MiB, ≤ 8 GiB."""
    size = _GIB + (memory + 256 * BYTES_PER_MIB) * 5 // 100
    return min(size - size % (16 * BYTES_PER_MIB), 8 * _GIB)


def xen_memory_default(memory: int) -> int:
    """Xen's own memory (an estimate: 30 MiB + 1.07 % of RAM) plus a 256 MiB crash kernel."""
    xen = 30 * BYTES_PER_MIB + memory * 107 // 10000
    return xen - xen % BYTES_PER_MIB + _CRASH_KERNEL


def _host(name: str, memory: int, cpus: int) -> HostSpec:
    return HostSpec(
        name=name,
        memory=memory,
        cpus=cpus,
        dom0_memory=dom0_memory_default(memory),
        xen_memory=xen_memory_default(memory),
    )


DEFAULT_POOL = PoolSpec(
    name="xenmem",
    dmc=True,
    hosts=(_host("host1", 64 * _GIB, 16), _host("host2", 64 * _GIB, 16)),
)
"""Two 64 GiB, 16-CPU hosts: dom0 4304 MiB each, Xen + crash kernel 987 MiB each."""


def _size(table: dict[str, object], key: str, default: int | None = None) -> int:
    value = table.get(key)
    if value is None and default is not None:
        return default
    try:
        return parse_size(str(value)) if isinstance(value, str | int) else -1
    except SizeParseError:
        return -1


def _parse_host(table: dict[str, object]) -> HostSpec:
    name = table.get("name")
    cpus = table.get("cpus", 1)
    memory = _size(table, "memory")
    if not isinstance(name, str) or not name:
        raise PoolFileError("every [[host]] needs a name")
    if memory <= 0 or not isinstance(cpus, int) or cpus < 1:
        raise PoolFileError(f"host {name}: memory and cpus must be positive")
    dom0 = _size(table, "dom0_memory", dom0_memory_default(memory))
    xen = _size(table, "xen_memory", xen_memory_default(memory))
    if dom0 < 0 or xen < 0 or dom0 + xen >= memory:
        raise PoolFileError(f"host {name}: dom0_memory + xen_memory must fit in memory")
    return HostSpec(name=name, memory=memory, cpus=cpus, dom0_memory=dom0, xen_memory=xen)


def load_pool_file(path: Path) -> PoolSpec:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PoolFileError(f"{path}: {error}") from None
    pool = document.get("pool", {})
    hosts = document.get("host", [])
    if not isinstance(pool, dict) or not isinstance(hosts, list) or not hosts:
        raise PoolFileError(f"{path}: needs a [pool] table and at least one [[host]]")
    specs = tuple(_parse_host(h) if isinstance(h, dict) else _parse_host({}) for h in hosts)
    if len({h.name for h in specs}) != len(specs):
        raise PoolFileError(f"{path}: host names must be unique")
    name, dmc = pool.get("name", "xenmem"), pool.get("dmc", True)
    if not isinstance(name, str) or not isinstance(dmc, bool):
        raise PoolFileError(f"{path}: [pool] name is a string and dmc a boolean")
    return PoolSpec(name=name, dmc=dmc, hosts=specs)


def _boot_host(store: Store, spec: HostSpec, now: datetime) -> str:
    boot_free = spec.memory - spec.xen_memory
    dom0_size = spec.dom0_memory
    with store.transaction() as tx:
        metrics = tx.create(
            "host_metrics",
            {
                "memory_total": spec.memory,
                "memory_free": boot_free - dom0_size,
                "live": True,
                "last_updated": now,
            },
        )
        host = tx.create(
            "host",
            {
                "name_label": spec.name,
                "hostname": spec.name,
                "address": "127.0.0.1",
                "metrics": metrics,
                "memory_overhead": host_memory_overhead(spec.memory, boot_free),
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
        vm_metrics = tx.create(
            "VM_metrics",
            {
                "memory_actual": dom0_size,
                "VCPUs_number": spec.cpus,
                "current_domain_type": "pv",
                "start_time": now,
            },
        )
        dom0 = tx.create(
            "VM",
            {
                "name_label": f"Control domain on host: {spec.name}",
                "power_state": "Running",
                "is_control_domain": True,
                "resident_on": host,
                "domain_type": "pv",
                "domid": 0,
                "metrics": vm_metrics,
                "VCPUs_max": spec.cpus,
                "VCPUs_at_startup": spec.cpus,
                # Fixed_size policy: all five memory fields are dom0's size (§5).
                **{
                    f"memory_{k}": dom0_size
                    for k in ("static_min", "dynamic_min", "target", "dynamic_max", "static_max")
                },
            },
        )
        created = tx.get("VM", dom0)
        assert created is not None
        tx.update("VM", dom0, {"memory_overhead": compute_memory_overhead(memory_of(created))})
        tx.update("host", host, {"control_domain": dom0})
    return host


def boot_pool(store: Store, spec: PoolSpec, now: datetime | None = None) -> str:
    """Create the pool's records on the first start; later starts keep what is stored.

    Returns the pool's master host.
    """
    for pool in store.records("pool").values():
        return str(pool["master"])
    now = now or datetime.now(UTC)
    hosts = [_boot_host(store, h, now) for h in spec.hosts]
    with store.transaction() as tx:
        tx.create(
            "pool",
            {
                "name_label": spec.name,
                "master": hosts[0],
                "restrictions": {"restrict_dmc": "false" if spec.dmc else "true"},
            },
        )
    return hosts[0]
