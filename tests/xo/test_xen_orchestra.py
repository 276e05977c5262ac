"""Xen Orchestra's connector (npm `xen-api` 4.7.6) against `xenmem serve` (protocol §8):
events, and the stats xo-server reads from /rrd_updates.

Needs node and npm: the connector is installed from the committed package-lock.json into
tests/xo/node_modules on first use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server.rrd_client import float32, wait_for
from tests.serving import PATIENCE_S, ROOT_PASSWORD, RunningServer, vm_record

HERE = Path(__file__).parent
GIB = 2**30


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are required for the Xen Orchestra connector test")
    if not (HERE / "node_modules" / "xen-api").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return node


def _line(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "the connector exited early"
    value: dict[str, object] = json.loads(line)
    assert "error" not in value, value
    return value


@pytest.mark.parametrize("transport", ["json-rpc", "xml-rpc"])
def test_connect_watch_and_see_a_mod(node: str, server: RunningServer, transport: str) -> None:
    api = server.session()
    vm = api.xenapi.VM.create(
        {
            "name_label": f"xo-{transport}",
            "memory_static_min": str(GIB),
            "memory_static_max": str(6 * GIB),
            "memory_dynamic_min": str(GIB),
            "memory_dynamic_max": str(6 * GIB),
            "VCPUs_max": "1",
            "VCPUs_at_startup": "1",
        }
    )
    expected = f"changed over {transport}"
    process = subprocess.Popen(
        [node, str(HERE / "watch.mjs"), server.url, "root", ROOT_PASSWORD, transport, vm, expected],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = _line(process)
        counts = ready["counts"]
        assert isinstance(counts, dict)
        assert counts["pool"] == 1
        assert counts["host"] == 2
        assert counts["host_metrics"] == 2
        assert counts["VM"] == len(api.xenapi.VM.get_all())
        assert counts["VM_metrics"] == len(api.xenapi.VM_metrics.get_all())
        assert ready["pool_master"] == api.xenapi.pool.get_master(api.xenapi.pool.get_all()[0])
        assert ready["vm_fields"] == len(api.xenapi.VM.get_record(vm))
        # int64: a number over JSON-RPC, a decimal string over XML-RPC (protocol §2.3, §3).
        six = 6 * GIB
        assert ready["memory_static_max"] == (six if transport == "json-rpc" else str(six))
        assert ready["shadow_multiplier"] == 1
        api.xenapi.VM.set_name_description(vm, expected)
        assert _line(process)["update"] == {"ref": vm, "name_description": expected}
        assert process.wait(timeout=PATIENCE_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=10)
        api.xenapi.session.logout()
    assert "Error" not in stderr, stderr


@pytest.mark.parametrize(
    ("granularity", "step"), [("seconds", 5), ("minutes", 60), ("hours", 3600), ("days", 86400)]
)
def test_stats_read_and_parsed_as_xo_does(
    node: str, server: RunningServer, granularity: str, step: int
) -> None:
    api = server.session()
    xenapi = api.xenapi
    try:
        vm = _stats_vm(xenapi)
        host = xenapi.pool.get_master(xenapi.pool.get_all()[0])
        host_uuid, vm_uuid = xenapi.host.get_uuid(host), xenapi.VM.get_uuid(vm)
        wait_for(server, f"AVERAGE:vm:{vm_uuid}:memory")
        done = subprocess.run(
            [node, str(HERE / "rrd_stats.mjs"), server.url, "root", ROOT_PASSWORD, granularity]
            + [host_uuid, vm_uuid],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        stats = json.loads(done.stdout)
        assert stats["interval"] == step  # XO refuses any other step
        assert set(stats["host"]) == {
            "memory",
            "memoryFree",
            "memoryReclaimed",
            "memoryReclaimedMax",
        }
        assert set(stats["vm"]) == {"memory", "memoryTarget"}  # no guest agent: no memoryFree
        assert all(len(series) == stats["rows"] for series in stats["host"].values())
        if step == 5:  # the finer archives fill over minutes, hours, days
            known = [v for v in stats["host"]["memory"] if v is not None]
            assert known and set(known) == {64 * GIB}
            assert stats["vm"]["memoryTarget"][-1] == GIB
            actual = int(xenapi.VM_metrics.get_memory_actual(xenapi.VM.get_metrics(vm)))
            assert stats["vm"]["memory"][-1] == float32(actual)
    finally:
        xenapi.session.logout()


def _stats_vm(xenapi: Any) -> str:
    """A running VM of 1 GiB fixed without tools (so no guest agent reports its free
    memory), made once for the stats tests."""
    for vm in xenapi.VM.get_by_name_label("xo-stats"):
        return str(vm)
    vm = xenapi.VM.create(
        vm_record(
            "xo-stats",
            memory_static_min=str(GIB),
            memory_dynamic_min=str(GIB),
            memory_dynamic_max=str(GIB),
            memory_static_max=str(GIB),
            other_config={"xenmem_boot_seconds": "0", "xenmem_balloon": "none"},
        )
    )
    xenapi.VM.start(vm, False, False)
    return str(vm)
