"""Kill the server with SIGKILL at random moments of VM starts, migrations and range
changes; after every restart the records and the simulated hosts agree and every byte
is accounted for once.

Guests keep running while the toolstack is dead: each host's state is kept beside the
database, and a restart reconciles (a finished build is completed, an unfinished one
cleaned up, reservations and scheduled markers of the dead process released).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from tests.serving import RunningServer, start_server
from xenmem.toolstack.ledger import PARTS

MIB = 2**20
GIB = 2**30
XEN = 512 * MIB
POOL = """
[pool]
name = "crash"
""" + "".join(
    f"""
[[host]]
name = "{name}"
memory = "8GiB"
cpus = 8
dom0_memory = "1GiB"
xen_memory = "512MiB"
"""
    for name in ("alpha", "beta")
)
KILL_POINTS = 8


def create_vms(api: Any, count: int) -> list[str]:
    vms = []
    for i in range(count):
        vms.append(
            api.VM.create(
                {
                    "name_label": f"vm{i}",
                    "memory_static_min": str(512 * MIB),
                    "memory_dynamic_min": str(GIB),
                    "memory_dynamic_max": str(2 * GIB),
                    "memory_static_max": str(3 * GIB),
                    "VCPUs_max": "2",
                    "VCPUs_at_startup": "2",
                    "HVM_boot_policy": "BIOS order",
                    "other_config": {"xenmem_boot_seconds": "0"},
                }
            )
        )
    return vms


def storm(api: Any, vms: list[str], hosts: list[str], rng: random.Random) -> set[str]:
    """Fire asynchronous lifecycle and memory operations at some of the VMs, without
    waiting for them; the VMs touched."""
    touched = set(rng.sample(vms, k=rng.randint(1, len(vms) - 1)))
    for vm in touched:
        state = api.VM.get_power_state(vm)
        choice = rng.random()
        if state == "Halted":
            api.Async.VM.start_on(vm, rng.choice(hosts), False, False)
        elif state == "Suspended":
            api.Async.VM.resume(vm, False, False)
        elif choice < 0.3:
            api.Async.VM.pool_migrate(vm, rng.choice(hosts), {})
        elif choice < 0.6:
            low = rng.choice([GIB, 1536 * MIB])
            api.Async.VM.set_memory_dynamic_range(vm, str(low), str(2 * GIB))
        elif choice < 0.8:
            api.Async.VM.suspend(vm)
        else:
            api.Async.VM.clean_shutdown(vm)
    return touched


def assert_books_balance(api: Any) -> None:
    hosts = api.host.get_all()
    ledgers = {h: {k: int(v) for k, v in api.host.get_memory_ledger(h).items()} for h in hosts}
    records = api.VM.get_all_records()
    for host, ledger in ledgers.items():
        guests = sum(
            v
            for k, v in ledger.items()
            if k.startswith("vm:") and k.endswith((":ram", ":overhead"))
        )
        assert sum(ledger[part] for part in PARTS) + guests == ledger["total"]
        # A domain left behind or counted twice would show here.
        assert ledger["unaccounted"] == 0
        assert ledger["xen"] == XEN
        assert ledger["reservations"] == 0
        free = int(api.host_metrics.get_memory_total(api.host.get_metrics(host)))
        free -= int(api.host.get_memory_overhead(host))
        for record in records.values():
            if record["resident_on"] == host:
                free -= int(record["memory_dynamic_min"]) + int(record["memory_overhead"])
        assert int(api.host.compute_free_memory(host)) == max(0, free)
    for vm, record in records.items():
        if record["is_control_domain"] or record["is_a_template"]:
            continue
        assert record["scheduled_to_be_resident_on"] == "OpaqueRef:NULL"
        assert record["current_operations"] == {}
        holders = [h for h, ledger in ledgers.items() if f"vm:{vm}:ram" in ledger]
        if record["power_state"] in ("Running", "Paused"):
            assert holders == [record["resident_on"]]
            ledger = ledgers[record["resident_on"]]
            assert ledger[f"vm:{vm}:dynamic_min"] == int(record["memory_dynamic_min"])
        else:
            assert holders == []
            assert record["resident_on"] == "OpaqueRef:NULL"


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(POOL)
    state = tmp_path / "state"
    server: RunningServer = start_server(state, "--pool", str(pool_file))
    api = server.session().xenapi
    vms = create_vms(api, 4)
    survivors_seen = 0
    for _ in range(KILL_POINTS):
        hosts = api.host.get_all()
        touched = storm(api, vms, hosts, rng)
        time.sleep(rng.uniform(0.0, 0.25))
        running = {
            vm: api.VM.get_resident_on(vm)
            for vm in set(vms) - touched
            if api.VM.get_power_state(vm) == "Running"
        }
        server.process.kill()
        server.process.wait(timeout=10)
        server.stop()
        server = start_server(state, "--pool", str(pool_file))
        api = server.session().xenapi
        assert_books_balance(api)
        # Guests nobody touched ran on while the toolstack was dead.
        for vm, host in running.items():
            assert (api.VM.get_power_state(vm), api.VM.get_resident_on(vm)) == ("Running", host)
        survivors_seen += len(running)
    assert survivors_seen > 0
    server.stop()
