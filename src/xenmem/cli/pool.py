"""The composition root: which hypervisor each host of the pool runs on.

The only module above the hypervisor port that knows the backends. The default pool is
simulated: each host is a `SimulatedHost` with its lab, declared by a pool file (TOML;
sizes take xe's suffixes, xapi-memory.md §1):

    [pool]
    name = "lab"
    dmc = true

    [[host]]
    name = "host1"
    memory = "64GiB"
    cpus = 16
    dom0_memory = "4304MiB"   # optional: the installer's rule, see dom0_memory_default
    xen_memory = "987MiB"     # optional: Xen + crash kernel, see xen_memory_default

With a state directory, each simulated host is kept in `hosts/<host uuid>.json` there, so
that its guests outlive the toolstack; deleting a host's file reboots it.
"""

from __future__ import annotations

import random
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path

from xenmem.balloon import SqueezerConfig
from xenmem.db import Store
from xenmem.memory import parse_size
from xenmem.memory.units import BYTES_PER_MIB, SizeParseError, bytes_of_kib, kib_of_bytes_free
from xenmem.toolstack.pool import PoolHost, PoolSpec
from xenmem.toolstack.records import HostView
from xenmem.toolstack.runtime import BackendOf, HostBackend, PoolRuntime, start_pool
from xenmem.toolstack.waiting import RetryPolicy
from xenmem.xen import Clock, RealClock
from xenmem.xen.simulator import (
    HostSpec,
    KeptHostError,
    SimulatedHost,
    SimulatedLab,
    default_dom0_kib,
    default_xen_kib,
    load_host,
    resume_time,
)

__all__ = [
    "DEFAULT_POOL",
    "HostStateError",
    "PoolFileError",
    "dom0_memory_default",
    "host_spec",
    "load_pool_file",
    "simulated_pool",
    "start_simulated_pool",
    "xen_memory_default",
]

_GIB = 1024 * BYTES_PER_MIB


class PoolFileError(ValueError):
    """The pool file is unreadable or says something impossible; the message says what."""


class HostStateError(ValueError):
    """A kept host cannot be resumed (malformed, or its memory does not add up); the
    message names the file."""


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


def host_spec(host: PoolHost) -> HostSpec:
    """The simulated hardware of a declared host."""
    return HostSpec(
        total_kib=kib_of_bytes_free(host.memory),
        xen_kib=kib_of_bytes_free(host.xen_memory),
        dom0_kib=kib_of_bytes_free(host.dom0_memory),
    )


def _simulated_backend(clock: Clock, hosts_dir: Path | None) -> BackendOf:
    def backend_of(host: HostView, declared: PoolHost) -> HostBackend:
        spec = host_spec(declared)
        path = None if hosts_dir is None else hosts_dir / f"{host.uuid}.json"
        kept = None if path is None else load_host(spec, clock, path)
        simulated = SimulatedHost(spec, clock) if kept is None else kept
        return HostBackend(xen=simulated, lab=SimulatedLab(simulated, path))

    return backend_of


async def start_simulated_pool(
    store: Store,
    spec: PoolSpec,
    clock: Clock,
    *,
    config: SqueezerConfig | None = None,
    draw: Callable[[], float] = random.random,
    hosts_dir: Path | None = None,
    rrd_path: Path | None = None,
    wall_time: Callable[[], float] = time.time,
    retry: RetryPolicy | None = None,
) -> PoolRuntime:
    """Start a pool of simulated hosts; with `hosts_dir` each host is kept there (and
    resumed from there), and `clock` must start at `resume_time(hosts_dir, scale)`; the
    RRDs are kept in `rrd_path`, on `wall_time`."""
    backend_of = _simulated_backend(clock, hosts_dir)
    return await start_pool(
        store,
        spec,
        clock,
        backend_of,
        config=config,
        draw=draw,
        rrd_path=rrd_path,
        wall_time=wall_time,
        retry=retry,
    )


def simulated_pool(
    spec: PoolSpec, state_dir: Path, time_scale: float, retry: RetryPolicy | None = None
) -> Callable[[Store], Awaitable[PoolRuntime]]:
    """What `xenmem serve` starts by default: the simulated pool `spec` (on its first
    start), its hosts kept in `state_dir/hosts/`, on a clock running `time_scale`
    simulated seconds per real second and resuming where the hosts were left; the RRDs
    kept in `state_dir/rrds.json`; calls wait for other operations as `retry` says. A kept
    host that cannot be resumed raises `HostStateError`."""

    async def start(store: Store) -> PoolRuntime:
        hosts_dir = state_dir / "hosts"
        hosts_dir.mkdir(mode=0o700, exist_ok=True)
        try:
            clock = RealClock(time_scale, start_s=resume_time(hosts_dir, time_scale))
            return await start_simulated_pool(
                store,
                spec,
                clock,
                hosts_dir=hosts_dir,
                rrd_path=state_dir / "rrds.json",
                retry=retry,
            )
        except KeptHostError as error:
            raise HostStateError(str(error)) from None

    return start
