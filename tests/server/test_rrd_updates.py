"""`/rrd_updates` and the data source calls of a real `xenmem serve`: values from the
live hosts, xcp-rrdd's formats and parameters, the bad-input rules, and RRDs that
survive a restart."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import XenAPI

from tests.server.rrd_client import basic, float32, get, wait_for
from tests.serving import RunningServer, start_server, vm_record

GIB = 2**30


@pytest.fixture(scope="module")
def rrd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of its own: nothing else changes its hosts, and its stderr is checked."""
    running = start_server(tmp_path_factory.mktemp("rrd-state"))
    yield running
    assert "Traceback" not in running.stop()


@pytest.fixture(scope="module")
def api(rrd_server: RunningServer) -> Iterator[Any]:
    session = rrd_server.session()
    yield session.xenapi
    session.xenapi.session.logout()


@pytest.fixture(scope="module")
def running_vm(api: Any) -> str:
    """A running VM whose memory does not move: 1 GiB fixed, a guest without tools (no
    balloon driver, no agent writing data/meminfo_free)."""
    vm = api.VM.create(
        vm_record(
            "rrd",
            memory_static_min=str(GIB),
            memory_dynamic_min=str(GIB),
            memory_dynamic_max=str(GIB),
            memory_static_max=str(GIB),
            other_config={"xenmem_boot_seconds": "0", "xenmem_balloon": "none"},
        )
    )
    api.VM.start(vm, False, False)
    return str(vm)


def now() -> int:
    return int(time.time())


def host_uuids(api: Any) -> list[str]:
    coordinator = api.pool.get_master(api.pool.get_all()[0])
    others = [h for h in api.host.get_all() if h != coordinator]
    return [api.host.get_uuid(h) for h in [coordinator, *others]]


def test_host_values_are_the_live_hosts(rrd_server: RunningServer, api: Any) -> None:
    coordinator, *_ = host_uuids(api)
    values = wait_for(rrd_server, f"AVERAGE:host:{coordinator}:memory_total_kib")
    host = api.host.get_by_uuid(coordinator)
    metrics = api.host_metrics.get_record(api.host.get_metrics(host))
    assert values[f"AVERAGE:host:{coordinator}:memory_total_kib"] * 1024 == int(
        metrics["memory_total"]
    )
    # Xen's free memory less what awaits scrubbing, in KiB, kept as float32; the host is
    # idle, so the monitor's copy (free + scrub) is the same amount.
    free_kib = values[f"AVERAGE:host:{coordinator}:memory_free_kib"]
    assert free_kib == float32(int(metrics["memory_free"]) // 1024)
    assert values[f"AVERAGE:host:{coordinator}:memory_reclaimed"] == 0.0


def test_vm_values_are_its_domains(rrd_server: RunningServer, api: Any, running_vm: str) -> None:
    vm_uuid = api.VM.get_uuid(running_vm)
    values = wait_for(rrd_server, f"AVERAGE:vm:{vm_uuid}:memory")
    actual = int(api.VM_metrics.get_memory_actual(api.VM.get_metrics(running_vm)))
    assert values[f"AVERAGE:vm:{vm_uuid}:memory"] == float32(actual)
    target = int(api.VM.get_memory_target(running_vm))
    assert values[f"AVERAGE:vm:{vm_uuid}:memory_target"] == float32(target) == GIB
    # Only a guest agent writes data/meminfo_free: without one there is no such source.
    assert f"AVERAGE:vm:{vm_uuid}:memory_internal_free" not in values


def test_data_source_calls(rrd_server: RunningServer, api: Any, running_vm: str) -> None:
    coordinator, *_ = host_uuids(api)
    wait_for(rrd_server, f"AVERAGE:host:{coordinator}:memory_total_kib")
    host = api.host.get_by_uuid(coordinator)
    sources = api.host.get_data_sources(host)
    assert [s["name_label"] for s in sources] == [
        "memory_free_kib",
        "memory_reclaimed",
        "memory_reclaimed_max",
        "memory_total_kib",
    ]
    assert {s["units"] for s in sources} == {"KiB", "B"}
    assert api.host.query_data_source(host, "memory_total_kib") == 64 * 1024 * 1024
    with pytest.raises(XenAPI.Failure) as failure:
        api.host.query_data_source(host, "cpu0")
    assert failure.value.details[0] == "INTERNAL_ERROR"
    vm_uuid = api.VM.get_uuid(running_vm)
    wait_for(rrd_server, f"AVERAGE:vm:{vm_uuid}:memory")
    assert [s["name_label"] for s in api.VM.get_data_sources(running_vm)] == [
        "memory",
        "memory_target",
    ]
    assert api.VM.query_data_source(running_vm, "memory_target") == GIB
    halted = api.VM.create(vm_record("halted"))
    assert api.VM.get_data_sources(halted) == []


def test_formats_and_selection(rrd_server: RunningServer, api: Any, running_vm: str) -> None:
    vm_uuid = api.VM.get_uuid(running_vm)
    wait_for(rrd_server, f"AVERAGE:vm:{vm_uuid}:memory")
    start = str(now() - 60)
    xml = get(rrd_server, [("start", start), ("host", "true")], basic())
    assert xml.status == 200
    assert xml.headers["content-type"] == "text/xml"
    assert "access-control-allow-origin" not in xml.headers  # no other origin may read it
    assert xml.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<xport><meta><start>')
    # `json` present in any form, or an Accept preferring JSON, gives JSON; an Accept
    # preferring XML wins over `json`.
    for query, accept, kind in (
        ([("json", "false")], None, "application/json"),
        ([], "application/json", "application/json"),
        ([("json", "")], "text/xml", "text/xml"),
        ([("json", "")], "text/html", "application/json"),
    ):
        headers = basic() | ({} if accept is None else {"Accept": accept})
        answer = get(rrd_server, [("start", start), *query], headers)
        assert answer.headers["content-type"] == kind, (query, accept)
    only = get(rrd_server, [("start", start), ("json", ""), ("vm_uuid", vm_uuid)], basic()).json()
    legend = only["meta"]["legend"]
    assert legend == [f"AVERAGE:vm:{vm_uuid}:memory", f"AVERAGE:vm:{vm_uuid}:memory_target"]
    # host=true adds every host (one process serves the pool); only "true" counts.
    for host, hosts in (("true", 2), ("TRUE", 0), ("1", 0)):
        document = get(
            rrd_server,
            [("start", start), ("json", ""), ("host", host), ("vm_uuid", vm_uuid)],
            basic(),
        ).json()
        entries = document["meta"]["legend"]
        assert len({e.split(":")[2] for e in entries if e.split(":")[1] == "host"}) == hosts
    minutes = get(
        rrd_server, [("start", start), ("json", ""), ("interval", "60"), ("host", "true")], basic()
    ).json()
    assert minutes["meta"]["step"] == 60
    assert {e.split(":")[0] for e in minutes["meta"]["legend"]} == {
        "AVERAGE",
        "MIN",
        "MAX",
    }


def test_an_unknown_vm_is_left_out(rrd_server: RunningServer, api: Any) -> None:
    coordinator, *_ = host_uuids(api)
    wait_for(rrd_server, f"AVERAGE:host:{coordinator}:memory_total_kib")
    query = [("start", str(now() - 10)), ("json", ""), ("host", "true")]
    answer = get(rrd_server, [*query, ("vm_uuid", "0e0e0e0e-no-such-vm")], basic())
    assert answer.status == 200
    legend = answer.json()["meta"]["legend"]
    assert legend and all(e.split(":")[1] == "host" for e in legend)
    assert get(rrd_server, [*query, ("vm_uuid", "none")], basic()).status == 200


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("json=true&host=true", 400),  # no start
        ("start=&host=true", 400),
        ("start=yesterday&host=true", 400),
        ("start=1.5&host=true", 400),
        ("start=99999999999999999999&host=true", 400),
        ("start=0&vm_uuid=0e0e0e0e-no-such-vm", 500),  # nothing to export, as xcp-rrdd
        ("start=0&host=true&cf=LAST", 500),  # xcp-rrdd keeps no LAST archive
        ("start=0&host=true&interval=31536000", 500),  # longer than any archive's rows
        ("start=0&host=true&cf=average&interval=x", 200),  # unknown cf: every function
        ("start=-30&host=true", 200),  # counted back from the last update
    ],
)
def test_bad_parameters(rrd_server: RunningServer, query: str, status: int) -> None:
    answer = get(rrd_server, query, basic())
    assert answer.status == status, answer
    if status != 200:
        assert b"Traceback" not in answer.body


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(password="wrong"),
        basic(user="nobody"),
        {"Authorization": "Basic !!not-base64!!"},
        {"Authorization": "Bearer abc"},
        {"Cookie": "session_id=OpaqueRef:not-a-session"},
    ],
)
def test_no_or_bad_credentials_are_refused(
    rrd_server: RunningServer, headers: dict[str, str]
) -> None:
    answer = get(rrd_server, f"start={now()}&host=true", headers)
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="rrd_updates"'
    assert b"Traceback" not in answer.body


def test_credentials_are_checked_before_the_parameters(rrd_server: RunningServer) -> None:
    assert get(rrd_server, "host=true").status == 401
    assert get(rrd_server, "host=true", basic()).status == 400


def test_a_session_is_accepted_from_the_query_or_a_cookie(rrd_server: RunningServer) -> None:
    session = rrd_server.session()
    ref = session._session  # the SDK's session reference
    try:
        assert get(rrd_server, [("start", str(now())), ("session_id", ref)]).status == 200
        assert (
            get(rrd_server, [("start", str(now()))], {"Cookie": f"session_id={ref}"}).status == 200
        )
        bad = [("start", str(now())), ("session_id", "OpaqueRef:nope")]
        assert get(rrd_server, bad, basic()).status == 401  # a bad session is not saved by Basic
    finally:
        session.xenapi.session.logout()
    assert get(rrd_server, [("start", str(now())), ("session_id", ref)]).status == 401


def test_rrds_survive_a_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state")
    try:
        api = server.session().xenapi
        coordinator, *_ = host_uuids(api)
        legend = f"AVERAGE:host:{coordinator}:memory_total_kib"
        wait_for(server, legend)
        # Well inside the 5-s archive's 600 s, however far its last row lags behind now:
        # from further back the minute archive answers, all unknown on a fresh server.
        start = str(now() - 300)
        before = get(server, [("start", start), ("json", ""), ("host", "true")], basic())
    finally:
        assert "Traceback" not in server.stop()
    again = start_server(tmp_path / "state")
    try:
        # A row where the source waited for has its value (the others may not yet).
        column = before.json()["meta"]["legend"].index(legend)
        known = next(r for r in before.json()["data"] if r["values"][column] != "NaN")
        answer = get(
            again, [("start", str(known["t"] - 5)), ("json", ""), ("host", "true")], basic()
        )
        after = {row["t"]: row["values"] for row in answer.json()["data"]}
        assert after[known["t"]] == known["values"]
        assert not math.isnan(float(known["values"][column]))
        wait_for(again, legend)  # and it goes on recording
    finally:
        assert "Traceback" not in again.stop()
