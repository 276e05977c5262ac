"""xcp-rrdd for the pool: each host's and each running VM's memory data sources,
recorded every 5 s into xcp-rrdd's archives and kept across restarts.

RRD time is wall time (seconds since the epoch), as xcp-rrdd's: clients ask for rows
since a wall-clock `start` (xen-exporter from its own clock, Xen Orchestra from
host.get_servertime) and XO refuses an answer whose step is not the interval it asked
for, which holds only when the archives span that wall-clock window. The simulated
hosts' clock (`--time-scale`) speeds up what the guests do, not the RRDs: a sample is
taken every 5 real seconds, whatever the scale.

As in xcp-rrdd, an RRD is created from the sources its first reading reports and records
readings from the next one on; a source first reported later is appended with no
history; a source of the RRD missing from a reading is recorded as unknown; a paused
domain reports nothing, so its RRD is not updated at all. A VM's RRD stays while the VM
is not running (xapi archives it) and serves again when it runs, on any host; it is
forgotten when the VM is destroyed.

One process serves every host of the pool at one address, so `updates` answers for the
whole pool: every host's RRD (the coordinator first) and every running VM's, where
xcp-rrdd answers for its own host and the VMs running there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xenmem.db import Store
from xenmem.files import write_atomically
from xenmem.rrd import (
    Cf,
    Rrd,
    Updates,
    add_source,
    archives,
    copy,
    create,
    query,
    select,
    update,
)
from xenmem.rrd.persist import RrdFormatError, dump, load
from xenmem.toolstack.host_agent import HostAgent
from xenmem.toolstack.memory_sources import (
    HOST_SOURCES,
    VM_SOURCES,
    SourceInfo,
    host_readings,
    vm_readings,
)
from xenmem.toolstack.records import read_host, read_pool, read_vm

__all__ = [
    "MIN_MAX_KEY",
    "SAMPLE_INTERVAL_S",
    "DatasourceMissingError",
    "Rrdd",
    "SourceDescription",
]

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 5.0
SAVE_INTERVAL_S = 60.0
MIN_MAX_KEY = "create_min_max_in_new_VM_RRDs"
"""pool.other_config key: "true" gives VM RRDs created from then on MIN and MAX archives."""
_FORMAT_VERSION = 1


class DatasourceMissingError(Exception):
    """No RRD is kept for that host or running VM (xcp-rrdd's Datasource_missing)."""


@dataclass(frozen=True, kw_only=True)
class SourceDescription:
    """A data source as host/VM.get_data_sources lists it."""

    name: str
    description: str
    enabled: bool
    standard: bool
    units: str
    minimum: float
    maximum: float


@dataclass(eq=False)
class _Kept:
    rrd: Rrd
    reported: set[str] = field(default_factory=set)  # sources read since this process has it


class Rrdd:
    def __init__(
        self,
        store: Store,
        agents: Mapping[str, HostAgent],
        coordinator: str,
        *,
        path: Path | None = None,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        """`path`: where the RRDs are kept (read now, written by `save`)."""
        self._store = store
        self._agents = agents
        self._coordinator = coordinator
        self._path = path
        self._wall_time = wall_time
        self._hosts: dict[str, _Kept] = {}
        self._vms: dict[str, _Kept] = {}
        self._running: set[str] = set()
        self._load()

    # -- recording ----------------------------------------------------------------------

    def sample(self) -> None:
        """Read every host once and record the readings."""
        now = self._wall_time()
        pool = read_pool(self._store)
        vm_min_max = pool is not None and pool.other_config.get(MIN_MAX_KEY) == "true"
        running = set()
        for host_ref, agent in self._agents.items():
            host = read_host(self._store, host_ref)
            memory = agent.memory_reading()
            self._record(
                self._hosts, host.uuid, now, host_readings(memory), HOST_SOURCES, min_max=True
            )
            for vm_ref, domid in {host.control_domain: 0, **agent.domains.resident}.items():
                domain = memory.domain(domid)
                if domain is None or self._store.get("VM", vm_ref) is None:
                    continue
                uuid = read_vm(self._store, vm_ref).uuid
                running.add(uuid)
                readings = vm_readings(domain)
                if readings:
                    self._record(self._vms, uuid, now, readings, VM_SOURCES, min_max=vm_min_max)
        self._running = running
        existing = {read_vm(self._store, ref).uuid for ref in self._store.records("VM")}
        for gone in set(self._vms) - existing:
            del self._vms[gone]

    @staticmethod
    def _record(
        table: dict[str, _Kept],
        uuid: str,
        now: float,
        readings: Mapping[str, float],
        sources: Mapping[str, SourceInfo],
        *,
        min_max: bool,
    ) -> None:
        kept = table.get(uuid)
        if kept is None:
            specs = [sources[name].spec for name in sorted(readings)]
            table[uuid] = _Kept(rrd=create(specs, archives(min_max), now), reported=set(readings))
            return
        rrd = kept.rrd
        for name in sorted(readings):
            if rrd.index_of(name) is None:
                add_source(rrd, now, sources[name].spec)
        kept.reported.update(readings)
        update(rrd, now, readings)
        update(rrd, now, {s.name: math.nan for s in rrd.sources if s.name not in readings})

    # -- reading ------------------------------------------------------------------------

    def updates(
        self,
        *,
        start: int,
        interval: int,
        cf: Cf | None,
        hosts: bool,
        vm_uuids: Collection[str] | None,
    ) -> Updates:
        """/rrd_updates' rows: the hosts' RRDs if `hosts`, the running VMs' (those of
        `vm_uuids` only, unless None); NoArchiveAvailableError if that is nothing or an
        RRD has no archive of `cf`."""
        prefixed: list[tuple[str, Rrd]] = []
        if hosts:
            for ref in sorted(self._agents, key=lambda ref: ref != self._coordinator):
                uuid = read_host(self._store, ref).uuid
                if uuid in self._hosts:
                    prefixed.append((f"host:{uuid}:", self._hosts[uuid].rrd))
        for uuid in sorted(self._running):
            if uuid in self._vms and (vm_uuids is None or uuid in vm_uuids):
                prefixed.append((f"vm:{uuid}:", self._vms[uuid].rrd))
        return select(prefixed, start, interval, cf)

    def host_sources(self, uuid: str) -> list[SourceDescription]:
        kept = self._hosts.get(uuid)
        return [] if kept is None else _described(kept, HOST_SOURCES)

    def vm_sources(self, uuid: str) -> list[SourceDescription]:
        kept = self._vms.get(uuid)
        return [] if kept is None or uuid not in self._running else _described(kept, VM_SOURCES)

    def query_host(self, uuid: str, name: str) -> float:
        """The newest 5-s average of `name`; DatasourceMissingError without an RRD, the
        core's InvalidDataSourceError for an unknown source."""
        kept = self._hosts.get(uuid)
        if kept is None:
            raise DatasourceMissingError("No host datasource!")
        return query(kept.rrd, self._wall_time(), name, Cf.AVERAGE)

    def query_vm(self, uuid: str, name: str) -> float:
        kept = self._vms.get(uuid)
        if kept is None or uuid not in self._running:
            raise DatasourceMissingError(f"VM: {uuid}")
        return query(kept.rrd, self._wall_time(), name, Cf.AVERAGE)

    # -- keeping ------------------------------------------------------------------------

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            kept = json.loads(self._path.read_bytes())
            if kept.get("version") != _FORMAT_VERSION:
                raise RrdFormatError(f"format version {kept.get('version')!r}")
            hosts = {str(uuid): _Kept(rrd=load(rrd)) for uuid, rrd in kept["hosts"].items()}
            vms = {str(uuid): _Kept(rrd=load(rrd)) for uuid, rrd in kept["vms"].items()}
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as error:
            log.warning("starting the RRDs afresh: cannot read %s: %s", self._path, error)
            return
        self._hosts, self._vms = hosts, vms

    async def save(self) -> None:
        """Keep the RRDs in `path`; a failure is logged. Copying them is quick and done
        here; writing them out is not, and is done off the event loop."""
        if self._path is None:
            return
        hosts = {uuid: copy(kept.rrd) for uuid, kept in self._hosts.items()}
        vms = {uuid: copy(kept.rrd) for uuid, kept in self._vms.items()}
        try:
            await asyncio.to_thread(_write, self._path, hosts, vms)
        except OSError as error:
            log.warning("cannot keep the RRDs in %s: %s", self._path, error)

    async def run_forever(self) -> None:
        """Sample every 5 s and keep the RRDs every minute, until cancelled."""
        loop = asyncio.get_running_loop()
        next_sample = last_save = loop.time()
        while True:
            try:
                self.sample()
            except Exception:  # a bug must not stop the recording
                log.exception("sampling the hosts failed")
            if loop.time() - last_save >= SAVE_INTERVAL_S:
                last_save = loop.time()
                await self.save()
            next_sample = max(next_sample + SAMPLE_INTERVAL_S, loop.time())
            await asyncio.sleep(next_sample - loop.time())


def _write(path: Path, hosts: Mapping[str, Rrd], vms: Mapping[str, Rrd]) -> None:
    kept = {
        "version": _FORMAT_VERSION,
        "hosts": {uuid: dump(rrd) for uuid, rrd in hosts.items()},
        "vms": {uuid: dump(rrd) for uuid, rrd in vms.items()},
    }
    write_atomically(path, json.dumps(kept, separators=(",", ":")).encode())


def _described(kept: _Kept, sources: Mapping[str, SourceInfo]) -> list[SourceDescription]:
    """Every source of the RRD by name; one not read since this process has the RRD is
    listed as xcp-rrdd lists an archived one."""
    described = []
    for source in sorted(kept.rrd.sources, key=lambda s: s.name):
        info = sources.get(source.name)
        live = info is not None and source.name in kept.reported
        described.append(
            SourceDescription(
                name=source.name,
                description=info.description if live and info else "description not available",
                enabled=live,
                standard=live,
                units=info.units if live and info else "unknown",
                minimum=source.minimum,
                maximum=source.maximum,
            )
        )
    return described
