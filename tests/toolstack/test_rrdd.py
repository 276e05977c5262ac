"""The pool's RRDs: what each sample records, which RRDs exist when, and keeping them."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Collection
from pathlib import Path

import pytest

from tests.support import simulated
from tests.toolstack.harness import GIB, Pool, small_pool
from xenmem.rrd import Cf, NoArchiveAvailableError
from xenmem.toolstack.rrdd import MIN_MAX_KEY, Rrdd
from xenmem.xen import domain_path

T0 = 1_800_000_000.0


class Wall:
    """Wall time that moves only when told."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def pool(wall: Wall) -> Pool:
    pool = Pool(small_pool())
    pool.runtime.rrdd = rrdd_of(pool, wall)
    return pool


def rrdd_of(pool: Pool, wall: Wall, path: Path | None = None) -> Rrdd:
    runtime = pool.runtime
    return Rrdd(pool.store, runtime.agents, runtime.coordinator, path=path, wall_time=wall)


def samples(pool: Pool, wall: Wall, count: int) -> None:
    """`count` samples 5 s apart, the first at the current wall time."""
    for index in range(count):
        if index:
            wall.now += 5
        pool.runtime.rrdd.sample()


def uuid(pool: Pool, cls: str, ref: str) -> str:
    return str(pool.record(cls, ref)["uuid"])


def newest(
    pool: Pool, wall: Wall, *, hosts: bool = True, vm_uuids: Collection[str] | None = None
) -> dict[str, float]:
    """Legend → value of the newest 5-s row."""
    updates = pool.runtime.rrdd.updates(
        start=int(wall.now) - 5,
        interval=5,
        cf=None,
        hosts=hosts,
        vm_uuids=vm_uuids,
    )
    return dict(zip(updates.legend, updates.rows[0].values, strict=True))


def running_vm(pool: Pool, host: str) -> str:
    vm = pool.vm()
    pool.call("VM.start_on", vm, host, False, False)
    return vm


def test_host_sources_are_xens_totals_and_squeezeds_reclaim(pool: Pool, wall: Wall) -> None:
    host = pool.hosts[0]
    vms = [running_vm(pool, host) for _ in range(4)]  # 4 × 4 GiB wanted, less available
    pool.advance(120)
    samples(pool, wall, 2)
    physinfo = simulated(pool.runtime.agent(host)).physinfo()
    host_uuid = uuid(pool, "host", host)
    row = newest(pool, wall)
    assert row[f"AVERAGE:host:{host_uuid}:memory_total_kib"] == physinfo.total_kib
    assert row[f"AVERAGE:host:{host_uuid}:memory_free_kib"] == physinfo.free_kib
    targets = [pool.int_field("VM", vm, "memory_target") for vm in vms]
    assert min(targets) < 4 * GIB  # squeezed had to hold some below dynamic_max
    # Σ dynamic_max − target and Σ target − dynamic_min over the VMs (dom0 has no range)
    assert row[f"AVERAGE:host:{host_uuid}:memory_reclaimed"] == sum(4 * GIB - t for t in targets)
    assert row[f"AVERAGE:host:{host_uuid}:memory_reclaimed_max"] == sum(
        t - 2 * GIB for t in targets
    )


def test_vm_sources_are_the_domains_memory_and_target(pool: Pool, wall: Wall) -> None:
    vm = running_vm(pool, pool.hosts[0])
    pool.advance(60)
    samples(pool, wall, 2)
    info = pool.runtime.agent(pool.hosts[0]).domains.info(vm)
    vm_uuid = uuid(pool, "VM", vm)
    row = newest(pool, wall, hosts=False)
    assert row[f"AVERAGE:vm:{vm_uuid}:memory"] == info.tot_kib * 1024
    assert row[f"AVERAGE:vm:{vm_uuid}:memory_target"] == 4 * GIB
    assert f"AVERAGE:vm:{vm_uuid}:memory_internal_free" not in row  # no guest agent yet
    dom0 = uuid(pool, "VM", str(pool.record("host", pool.hosts[0])["control_domain"]))
    assert f"AVERAGE:vm:{dom0}:memory" in row


def test_a_guest_agents_free_memory_is_appended_once_reported(pool: Pool, wall: Wall) -> None:
    host = pool.hosts[0]
    vm = running_vm(pool, host)
    samples(pool, wall, 2)
    store = simulated(pool.runtime.agent(host)).xenstore
    free_key = domain_path(pool.runtime.agent(host).domains.info(vm).domid, "data/meminfo_free")
    store.write(free_key, "1234567")
    wall.now += 5
    samples(pool, wall, 2)
    vm_uuid = uuid(pool, "VM", vm)
    legend = f"AVERAGE:vm:{vm_uuid}:memory_internal_free"
    updates = pool.runtime.rrdd.updates(
        start=int(wall.now) - 20, interval=5, cf=None, hosts=False, vm_uuids=[vm_uuid]
    )
    assert updates.legend[-1] == legend  # appended after the sources the RRD began with
    assert [row.values[-1] for row in updates.rows][:2] == [1234567.0, 1234567.0]
    assert math.isnan(updates.rows[2].values[-1])  # the step it was added in
    # Gone again: rrd.ml keeps the last value one step, then records 0.0.
    store.remove(free_key)
    wall.now += 5
    samples(pool, wall, 2)
    assert [newest(pool, wall, hosts=False)[legend]] == [0.0]
    names = [r["name_label"] for r in pool.call("VM.get_data_sources", vm)]
    assert names == ["memory", "memory_internal_free", "memory_target"]


def test_a_paused_vm_is_not_recorded_and_a_halted_one_not_served(pool: Pool, wall: Wall) -> None:
    vm = running_vm(pool, pool.hosts[0])
    vm_uuid = uuid(pool, "VM", vm)
    samples(pool, wall, 2)
    before = pool.runtime.rrdd._vms[vm_uuid].rrd.last_updated
    pool.call("VM.pause", vm)
    wall.now += 5
    samples(pool, wall, 2)
    assert pool.runtime.rrdd._vms[vm_uuid].rrd.last_updated == before
    assert f"AVERAGE:vm:{vm_uuid}:memory" in newest(pool, wall)  # still served, stale
    pool.call("VM.hard_shutdown", vm)
    wall.now += 5
    samples(pool, wall, 1)
    assert not any(vm_uuid in legend for legend in newest(pool, wall))
    assert pool.call("VM.get_data_sources", vm) == []
    assert pool.error("VM.query_data_source", vm, "memory") == [
        "INTERNAL_ERROR",
        f"Rrd_interface.Rrdd_error([S(Datasource_missing);S(VM: {vm_uuid})])",
    ]


def test_a_restarted_vm_goes_on_with_its_history(pool: Pool, wall: Wall) -> None:
    vm = running_vm(pool, pool.hosts[0])
    vm_uuid = uuid(pool, "VM", vm)
    samples(pool, wall, 2)
    first_row_time = int(wall.now) // 5 * 5
    pool.call("VM.hard_shutdown", vm)
    wall.now += 30
    samples(pool, wall, 1)
    pool.call("VM.start_on", vm, pool.hosts[1], False, False)
    wall.now += 5
    samples(pool, wall, 2)
    updates = pool.runtime.rrdd.updates(
        start=first_row_time, interval=5, cf=None, hosts=False, vm_uuids=[vm_uuid]
    )
    assert updates.rows[-1].time == first_row_time
    assert updates.rows[-1].values[0] == 4 * GIB  # memory_target, from before the stop


def test_a_destroyed_vm_is_forgotten(pool: Pool, wall: Wall) -> None:
    vm = running_vm(pool, pool.hosts[0])
    vm_uuid = uuid(pool, "VM", vm)
    samples(pool, wall, 1)
    pool.call("VM.hard_shutdown", vm)
    pool.call("VM.destroy", vm)
    samples(pool, wall, 1)
    assert vm_uuid not in pool.runtime.rrdd._vms


def test_vm_rrds_get_min_and_max_only_when_the_pool_asks(pool: Pool, wall: Wall) -> None:
    plain = running_vm(pool, pool.hosts[0])
    samples(pool, wall, 1)
    pool_ref = next(iter(pool.store.records("pool")))
    with pool.store.transaction() as tx:
        tx.update("pool", pool_ref, {"other_config": {MIN_MAX_KEY: "true"}})
    with_min_max = running_vm(pool, pool.hosts[0])
    samples(pool, wall, 2)

    def functions(vm: str) -> set[str]:
        vm_uuid = uuid(pool, "VM", vm)
        updates = pool.runtime.rrdd.updates(
            start=int(wall.now) - 60, interval=60, cf=None, hosts=False, vm_uuids=[vm_uuid]
        )
        return {legend.split(":")[0] for legend in updates.legend}

    assert functions(plain) == {"AVERAGE"}
    assert functions(with_min_max) == {"AVERAGE", "MIN", "MAX"}
    host_only = pool.runtime.rrdd.updates(
        start=int(wall.now) - 60, interval=60, cf=Cf.MIN, hosts=True, vm_uuids=[]
    )
    assert len(host_only.legend) == 2 * 4
    with pytest.raises(NoArchiveAvailableError):  # a VM RRD without MIN fails the export
        pool.runtime.rrdd.updates(
            start=int(wall.now) - 60, interval=60, cf=Cf.MIN, hosts=True, vm_uuids=None
        )


def test_hosts_come_coordinator_first_and_unknown_vms_are_left_out(pool: Pool, wall: Wall) -> None:
    samples(pool, wall, 2)
    updates = pool.runtime.rrdd.updates(
        start=int(wall.now) - 5, interval=5, cf=None, hosts=True, vm_uuids=["no-such-vm"]
    )
    coordinator = uuid(pool, "host", pool.runtime.coordinator)
    assert updates.legend[0].startswith(f"AVERAGE:host:{coordinator}:")
    assert {legend.split(":")[1] for legend in updates.legend} == {"host"}
    assert len({legend.split(":")[2] for legend in updates.legend}) == 2
    with pytest.raises(NoArchiveAvailableError):
        pool.runtime.rrdd.updates(
            start=int(wall.now) - 5, interval=5, cf=None, hosts=False, vm_uuids=["no-such-vm"]
        )


def test_data_source_records_and_queries(pool: Pool, wall: Wall) -> None:
    host = pool.hosts[0]
    assert pool.call("host.get_data_sources", host) == []
    assert pool.error("host.query_data_source", host, "memory_free_kib") == [
        "INTERNAL_ERROR",
        "Rrd_interface.Rrdd_error([S(Datasource_missing);S(No host datasource!)])",
    ]
    samples(pool, wall, 2)
    records = pool.call("host.get_data_sources", host)
    assert [r["name_label"] for r in records] == [
        "memory_free_kib",
        "memory_reclaimed",
        "memory_reclaimed_max",
        "memory_total_kib",
    ]
    total = records[-1]
    assert total["units"] == "KiB"
    assert (total["enabled"], total["standard"], total["value"]) == (True, True, 0.0)
    assert (total["min"], total["max"]) == (0.0, math.inf)
    assert records[1]["min"] == -math.inf
    total_kib = simulated(pool.runtime.agent(host)).physinfo().total_kib
    assert pool.call("host.query_data_source", host, "memory_total_kib") == total_kib
    assert pool.error("host.query_data_source", host, "nope") == [
        "INTERNAL_ERROR",
        'Rrd_interface.Rrdd_error([S(Rrdd_internal_error);S(Rrd.Invalid_data_source("nope"))])',
    ]


def test_kept_rrds_come_back_and_a_damaged_file_starts_afresh(
    pool: Pool, wall: Wall, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rrds.json"
    pool.runtime.rrdd = rrdd_of(pool, wall, path)
    running_vm(pool, pool.hosts[0])
    samples(pool, wall, 3)
    asyncio.run(pool.runtime.rrdd.save())
    before = newest(pool, wall)
    pool.runtime.rrdd = rrdd_of(pool, wall, path)
    samples(pool, wall, 1)  # the first sample after a restart, at the same time
    assert newest(pool, wall) == before
    path.write_text(json.dumps({"version": 1, "hosts": {"h": {"step": 5}}, "vms": {}}))
    again = rrdd_of(pool, wall, path)
    assert "starting the RRDs afresh" in caplog.text
    assert again.host_sources(uuid(pool, "host", pool.hosts[0])) == []
