"""A Prometheus exporter's scrape of `/rrd_updates`, made as xen-exporter makes it: HTTP
Basic credentials, `start=now-10&json=true&host=true&cf=AVERAGE`, the newest row
(`data[0]`), names looked up with the SDK, and one exposition line per legend entry.

xen-exporter asks one host at a time and labels every host series with the first host
of the answer; xenmem answers for the whole pool, so the scrape is made of a one-host
pool (README: what a pool of several hosts gives such an exporter).
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.rrd_client import float32, wait_for
from tests.serving import ROOT_PASSWORD, RunningServer, start_server, vm_record

GIB = 2**30
ONE_HOST = """
[pool]
name = "scraped"

[[host]]
name = "solo"
memory = "32GiB"
cpus = 8
"""
# A sample line of the text exposition format: name{labels} value.
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*\{(?:[a-zA-Z_]\w*="[^"]*"(?:, )?)*\} (\S+)$')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("scraped")
    pool_file = Path(state.parent / "one-host.toml")
    pool_file.write_text(ONE_HOST)
    running = start_server(state / "state", "--pool", str(pool_file))
    yield running
    assert "Traceback" not in running.stop()


def scrape(server: RunningServer, user: str, password: str) -> str:
    """xen-exporter's collect_metrics for one host, less the SR part."""
    url = f"{server.url}rrd_updates?start={int(time.time() - 10)}&json=true&host=true&cf=AVERAGE"
    request = urllib.request.Request(url)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        metrics: dict[str, Any] = json.load(response)
    session = server.client()
    session.xenapi.login_with_password(user, password, "1.0", "xen-exporter")
    api = session.xenapi
    try:
        legends = [entry.split(":")[1:] for entry in metrics["meta"]["legend"]]
        host_uuid = next(collector for kind, collector, _ in legends if kind == "host")
        host_name = api.host.get_name_label(api.host.get_by_uuid(host_uuid))
        output = []
        for index, (kind, collector, metric_type) in enumerate(legends):
            tags = {kind: collector}
            if kind == "vm":
                tags["vm"] = api.VM.get_name_label(api.VM.get_by_uuid(collector))
                tags["vm_uuid"] = collector
            tags |= {"host": host_name, "host_uuid": host_uuid}
            labels = ", ".join(sorted(f'{k}="{v}"' for k, v in tags.items()))
            value = metrics["data"][0]["values"][index]
            output.append(f"xen_{kind}_{metric_type.lower().replace('-', '_')}{{{labels}}} {value}")
        return "\n".join(output) + "\n"
    finally:
        api.session.logout()


def samples(exposition: str) -> dict[str, float]:
    """Series (name and labels) → value, every line checked against the text format."""
    found = {}
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        assert match, line
        series, _ = line.rsplit(" ", 1)
        assert series not in found, f"duplicate series {series}"
        found[series] = float(match.group(1))  # Prometheus reads NaN and Infinity too
    return found


def test_a_scrape_reports_the_hosts_and_vms_memory(server: RunningServer) -> None:
    api = server.session().xenapi
    vm = api.VM.create(
        vm_record(
            "scraped-vm",
            memory_static_min=str(GIB),
            memory_dynamic_min=str(GIB),
            memory_dynamic_max=str(GIB),
            memory_static_max=str(GIB),
            other_config={"xenmem_boot_seconds": "0"},
        )
    )
    api.VM.start(vm, False, False)
    host = api.host.get_all()[0]
    host_uuid, vm_uuid = api.host.get_uuid(host), api.VM.get_uuid(vm)
    wait_for(server, f"AVERAGE:vm:{vm_uuid}:memory")
    found = samples(scrape(server, "root", ROOT_PASSWORD))
    host_labels = f'host="solo", host_uuid="{host_uuid}"'
    assert found[f"xen_host_memory_total_kib{{{host_labels}}}"] == 32 * 1024 * 1024
    assert 0 < found[f"xen_host_memory_free_kib{{{host_labels}}}"] < 32 * 1024 * 1024
    assert found[f"xen_host_memory_reclaimed{{{host_labels}}}"] == 0.0
    vm_labels = f'{host_labels}, vm="scraped-vm", vm_uuid="{vm_uuid}"'
    target = int(api.VM.get_memory_target(vm))
    assert found[f"xen_vm_memory_target{{{vm_labels}}}"] == float32(target) == GIB
    actual = int(api.VM_metrics.get_memory_actual(api.VM.get_metrics(vm)))
    assert found[f"xen_vm_memory{{{vm_labels}}}"] == float32(actual)
    dom0_series = [s for s in found if s.startswith("xen_vm_memory{") and "Control domain" in s]
    assert len(dom0_series) == 1 and not math.isnan(found[dom0_series[0]])
    api.session.logout()


def test_a_scrape_with_a_wrong_password_is_refused(server: RunningServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(server, "root", "wrong")
    assert refused.value.code == 401
    refused.value.close()
