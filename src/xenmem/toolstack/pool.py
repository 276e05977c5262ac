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

Each host is simulated (`xenmem.xen.simulator`); the file's sizes are stored with the
host so that every later start boots the same simulated hardware. The memory numbers of
the records (host_metrics.memory_total, host.memory_overhead, dom0's limits) are written
when the host boots (`toolstack.runtime`), from what the simulated Xen reports (§5).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from xenmem.db import Store
from xenmem.memory import parse_size
from xenmem.memory.units import BYTES_PER_MIB, SizeParseError, bytes_of_kib, kib_of_bytes_free
from xenmem.toolstack.internal import SIMULATED_HOST
from xenmem.toolstack.templates import create_templates
from xenmem.xen.simulator import HostSpec, default_dom0_kib, default_xen_kib

__all__ = [
    "API_VERSION",
    "DEFAULT_POOL",
    "PoolFileError",
    "PoolHost",
    "PoolSpec",
    "boot_pool",
    "dom0_memory_default",
    "load_pool_file",
    "simulated_host",
    "xen_memory_default",
]

API_VERSION = (2, 23)  # host.API_version_major/minor of the xapi the spec describes (§5.1)
_GIB = 1024 * BYTES_PER_MIB


class PoolFileError(ValueError):
    """The pool file is unreadable or says something impossible; the message says what."""


@dataclass(frozen=True, kw_only=True)
class PoolHost:
    """One [[host]] of the pool file; sizes in bytes."""

    name: str
    memory: int
    cpus: int
    dom0_memory: int
    xen_memory: int

    @property
    def simulated(self) -> HostSpec:
        return HostSpec(
            total_kib=kib_of_bytes_free(self.memory),
            xen_kib=kib_of_bytes_free(self.xen_memory),
            dom0_kib=kib_of_bytes_free(self.dom0_memory),
        )


@dataclass(frozen=True, kw_only=True)
class PoolSpec:
    name: str
    dmc: bool
    hosts: tuple[PoolHost, ...]


def dom0_memory_default(memory: int) -> int:
    """The installer's dom0 size for a host of `memory` bytes (simulator-defaults.md)."""
    return bytes_of_kib(default_dom0_kib(kib_of_bytes_free(memory)))


def xen_memory_default(memory: int) -> int:
    """Xen's own memory (an estimate) plus the crash kernel, for a host of `memory` bytes."""
    return bytes_of_kib(default_xen_kib(kib_of_bytes_free(memory)))


def _host(name: str, memory: int, cpus: int) -> PoolHost:
    return PoolHost(
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
"""Two 64 GiB, 16-CPU hosts, each with the installer's dom0 (4304 MiB) and Xen's estimated share."""


def _size(table: dict[str, object], key: str, default: int | None = None) -> int:
    value = table.get(key)
    if value is None and default is not None:
        return default
    try:
        return parse_size(str(value)) if isinstance(value, str | int) else -1
    except SizeParseError:
        return -1


def _parse_host(table: dict[str, object]) -> PoolHost:
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
    return PoolHost(name=name, memory=memory, cpus=cpus, dom0_memory=dom0, xen_memory=xen)


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
                "power_state": "Running",
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


def simulated_host(store: Store, host: str) -> tuple[PoolHost, HostSpec]:
    """The hardware a host record stands for, as the pool file declared it."""
    stored = store.get(SIMULATED_HOST, host)
    record = store.get("host", host)
    assert stored is not None and record is not None
    spec = PoolHost(
        name=str(record["name_label"]),
        memory=int(str(stored["memory"])),
        cpus=int(str(stored["cpus"])),
        dom0_memory=int(str(stored["dom0_memory"])),
        xen_memory=int(str(stored["xen_memory"])),
    )
    return spec, spec.simulated


def boot_pool(store: Store, spec: PoolSpec, now: datetime | None = None) -> str:
    """Create the pool's records on the first start; later starts keep what is stored.

    Returns the pool's master host.
    """
    for pool in store.records("pool").values():
        return str(pool["master"])
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
