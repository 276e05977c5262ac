"""`xenmem status` against a live server: JSON equal to the API's answers, and tables."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import XenAPI
from rich.console import Console

from tests.serving import ROOT_PASSWORD, RunningServer, start_server
from xenmem.cli import status

MIB = 2**20

XENMEM = str(Path(sys.executable).parent / "xenmem")
Completed = subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("status-state"), time_scale=1000.0)
    yield server
    server.stop()


def _status(server: RunningServer, *args: str, password: str = ROOT_PASSWORD) -> Completed:
    switches = ["-p", str(server.port), "--user", "root", "--password", password]
    command = [XENMEM, "status", *switches, *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)


def test_json_summary_matches_the_api(running: RunningServer) -> None:
    api: XenAPI.Session = running.session()
    summary = json.loads(_status(running, "--json").stdout)
    hosts = api.xenapi.host.get_all_records()
    assert [h["uuid"] for h in summary["hosts"]] == [h["uuid"] for h in hosts.values()]
    for shown, (ref, record) in zip(summary["hosts"], hosts.items(), strict=True):
        metrics = api.xenapi.host_metrics.get_record(record["metrics"])
        assert shown["memory_total"] == int(metrics["memory_total"])
        assert shown["memory_overhead"] == int(record["memory_overhead"])
        assert shown["compute_free_memory"] == int(api.xenapi.host.compute_free_memory(ref))
        assert shown["ledger"]["total"] == int(metrics["memory_total"])
        assert shown["ledger"]["balanced"]
    vms = {r["uuid"]: r for r in api.xenapi.VM.get_all_records().values()}
    for vm in summary["vms"]:
        record = vms[vm["uuid"]]
        assert vm["memory_dynamic_min"] == int(record["memory_dynamic_min"])
        assert vm["memory_static_max"] == int(record["memory_static_max"])
        actual = api.xenapi.VM_metrics.get_memory_actual(record["metrics"])
        assert vm["memory_actual"] == int(actual)
    api.xenapi.session.logout()


def test_tables_and_bad_connection(running: RunningServer) -> None:
    tables = _status(running)
    assert tables.returncode == 0
    assert "Hosts (MiB)" in tables.stdout
    assert "Control domain on host: host1" in tables.stdout
    wrong = _status(running, password="wrong")
    assert (wrong.returncode, wrong.stderr) == (
        1,
        "Authentication failed\nFor usage run: 'xe help'\n",
    )


def test_unaccounted_memory_shows_in_red() -> None:
    def shown(unaccounted: int) -> str:
        ledger = {
            "total": 100 * MIB,
            **dict.fromkeys(("xen", "reserve", "dom0", "reservations", "other_domains"), 0),
            "vms": [],
            "free": 100 * MIB - unaccounted,
            "unaccounted": unaccounted,
        }
        console = Console(force_terminal=True, color_system="standard", width=80)
        with console.capture() as capture:
            console.print(status._ledger_table({"name_label": "h", "ledger": ledger}))
        line = next(line for line in capture.get().splitlines() if "unaccounted" in line)
        return line

    red = "\x1b[1;31m"
    assert red in shown(MIB)
    assert red not in shown(0)
