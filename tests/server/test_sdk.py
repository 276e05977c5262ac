"""Black-box: the official XenAPI SDK against `xenmem serve` (protocol §7)."""

from __future__ import annotations

import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator

import pytest
import XenAPI

from tests.serving import ROOT_PASSWORD, RunningServer, until, vm_record
from xenmem.cli.pool import xen_memory_default
from xenmem.xenapi.model import MODEL

GIB = 2**30


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[XenAPI.Session]:
    session = server.session()
    yield session
    session.xenapi.session.logout()


def _failure(call: Callable[..., object], *args: object) -> list[str]:
    with pytest.raises(XenAPI.Failure) as info:
        call(*args)
    return list(info.value.details)


def test_get_all_records_of_every_class_carries_every_field(api: XenAPI.Session) -> None:
    for cd in MODEL.classes:
        if not (cd.database and cd.enumerable):
            continue
        records = getattr(api.xenapi, cd.name).get_all_records()
        expected = {f.name for f in cd.fields}
        for record in records.values():
            assert set(record) == expected, cd.name
    assert len(api.xenapi.host.get_all_records()) == 2
    assert len(api.xenapi.pool.get_all_records()) == 1


def test_default_pool_hosts_dom0_and_memory(api: XenAPI.Session) -> None:
    for host, record in api.xenapi.host.get_all_records().items():
        metrics = api.xenapi.host_metrics.get_record(record["metrics"])
        assert metrics["memory_total"] == str(64 * GIB)
        # (total - boot_free) + 72 MiB, where only Xen and the crash kernel are not free
        # at boot (dom0 counts as free, §5).
        assert record["memory_overhead"] == str(xen_memory_default(64 * GIB) + 73728 * 1024)
        assert api.xenapi.host.compute_memory_overhead(host) == record["memory_overhead"]
        dom0 = record["control_domain"]
        assert record["resident_VMs"] == [dom0]
        vm = api.xenapi.VM.get_record(dom0)
        assert vm["is_control_domain"] is True
        assert vm["power_state"] == "Running"
        assert vm["domain_type"] == "pv"
        assert vm["resident_on"] == host
        sizes = {
            vm[f"memory_{k}"]
            for k in ("static_min", "dynamic_min", "target", "dynamic_max", "static_max")
        }
        assert sizes == {str(4304 * 2**20)}


def test_field_getters_and_alias(api: XenAPI.Session) -> None:
    host = api.xenapi.host.get_all()[0]
    assert api.xenapi.host.get_API_version_major(host) == "2"
    assert api.xenapi.host_get_API_version_minor(host) == "23"
    metrics = api.xenapi.host.get_metrics(host)
    assert api.xenapi.host_metrics.get_memory_total(metrics) == str(64 * GIB)
    assert api.xenapi.host_metrics.get_live(metrics) is True
    assert isinstance(api.xenapi.host_metrics.get_last_updated(metrics), xmlrpc.client.DateTime)
    assert api.xenapi.session.get_this_host(api.handle) == api.xenapi.pool.get_master(
        api.xenapi.pool.get_all()[0]
    )
    assert api.API_version == "2.23"


def test_vm_create_defaults_overhead_and_free_memory(api: XenAPI.Session) -> None:
    host = api.xenapi.host.get_all()[0]
    free_before = int(api.xenapi.host.compute_free_memory(host))
    vm = api.xenapi.VM.create(vm_record("sdk-create"))
    record = api.xenapi.VM.get_record(vm)
    assert record["power_state"] == "Halted"
    assert record["domain_type"] == "hvm"  # from HVM_boot_policy
    assert record["memory_overhead"] == "38797312" == api.xenapi.VM.compute_memory_overhead(vm)
    assert record["HVM_shadow_multiplier"] == 1.0
    assert record["resident_on"] == "OpaqueRef:NULL"
    assert api.xenapi.VM_metrics.get_memory_actual(record["metrics"]) == "0"
    # A halted VM costs its host nothing (§4.2).
    assert int(api.xenapi.host.compute_free_memory(host)) == free_before
    pv = api.xenapi.VM.create(vm_record("sdk-pv", HVM_boot_policy=""))
    assert api.xenapi.VM.get_domain_type(pv) == "pv"
    assert api.xenapi.VM.get_by_name_label("sdk-pv") == [pv]
    assert api.xenapi.VM.get_by_uuid(api.xenapi.VM.get_uuid(pv)) == pv
    api.xenapi.VM.destroy(pv)
    assert api.xenapi.VM.get_by_name_label("sdk-pv") == []
    assert _failure(api.xenapi.VM.get_record, pv) == ["HANDLE_INVALID", "VM", pv]


def test_rw_setter_and_map_calls(api: XenAPI.Session) -> None:
    vm = api.xenapi.VM.create(vm_record("sdk-rw"))
    api.xenapi.VM.set_name_label(vm, "renamed")
    assert api.xenapi.VM.get_name_label(vm) == "renamed"
    api.xenapi.VM.add_to_other_config(vm, "k", "v")
    assert _failure(api.xenapi.VM.add_to_other_config, vm, "k", "w") == [
        "MAP_DUPLICATE_KEY",
        "VM",
        "other_config",
        api.xenapi.VM.get_uuid(vm),
        "k",
    ]
    api.xenapi.VM.remove_from_other_config(vm, "absent")
    assert api.xenapi.VM.get_other_config(vm)["k"] == "v"
    api.xenapi.VM.remove_from_other_config(vm, "k")
    api.xenapi.VM.add_tags(vm, "blue")
    assert api.xenapi.VM.get_tags(vm) == ["blue"]
    # Memory fields are not RW: no generated setter (§5).
    assert _failure(api.xenapi.VM.set_memory_overhead, vm, "1") == [
        "MESSAGE_METHOD_UNKNOWN",
        "VM.set_memory_overhead",
    ]


def test_async_call_followed_through_its_task(api: XenAPI.Session) -> None:
    vm = api.xenapi.VM.create(vm_record("sdk-async"))
    task = api.xenapi.Async.VM.compute_memory_overhead(vm)
    assert task.startswith("OpaqueRef:")
    until(lambda: api.xenapi.task.get_status(task) != "pending")
    record = api.xenapi.task.get_record(task)
    assert record["status"] == "success"
    assert record["progress"] == 1.0
    assert record["result"] == "<value>38797312</value>"
    assert record["error_info"] == []
    failing = api.xenapi.Async.VM.destroy("OpaqueRef:nope")
    until(lambda: api.xenapi.task.get_status(failing) != "pending")
    assert api.xenapi.task.get_error_info(failing) == ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    assert api.xenapi.task.get_status(failing) == "failure"
    created = api.xenapi.Async.VM.create(vm_record("sdk-async-create"))
    until(lambda: api.xenapi.task.get_status(created) != "pending")
    ref = api.xenapi.task.get_result(created)[len("<value>") : -len("</value>")]
    assert api.xenapi.VM.get_name_label(ref) == "sdk-async-create"
    api.xenapi.task.destroy(task)
    assert _failure(api.xenapi.task.get_record, task) == ["HANDLE_INVALID", "task", task]
    assert _failure(api.xenapi.task.cancel, created)[0] == "OPERATION_NOT_ALLOWED"


def test_event_from_sees_a_change(api: XenAPI.Session, server: RunningServer) -> None:
    vm = api.xenapi.VM.create(vm_record("sdk-events"))
    first = api.xenapi.event_from(["vm"], "", 1.0)
    assert {e["ref"] for e in first["events"]} >= {vm}
    assert all(e["operation"] == "add" for e in first["events"])
    assert first["valid_ref_counts"]["vm"] == len(api.xenapi.VM.get_all())
    assert set(first["valid_ref_counts"]) == {
        "pool",
        "host",
        "host_metrics",
        "vm",
        "vm_metrics",
        "task",
    }
    token = first["token"]
    other = server.session()

    def change_later() -> None:
        time.sleep(0.3)
        other.xenapi.VM.set_name_description(vm, "changed")

    thread = threading.Thread(target=change_later)
    thread.start()
    # A timeout no test outlives (pytest stops one at 300 s): returning is returning on
    # the change.
    batch = api.xenapi.event_from(["VM"], token, 3600.0)
    thread.join()
    (event,) = [e for e in batch["events"] if e["ref"] == vm]
    assert event["operation"] == "mod"
    assert event["class"] == "vm"
    assert event["snapshot"]["name_description"] == "changed"
    assert event["timestamp"] == "0.0"
    assert int(event["id"]) > int(token.split(",")[0])
    api.xenapi.VM.destroy(vm)
    deleted = api.xenapi.event_from([f"vm/{vm}"], batch["token"], 5.0)
    assert [(e["operation"], e["ref"]) for e in deleted["events"]] == [("del", vm)]
    assert "snapshot" not in deleted["events"][0]
    assert _failure(api.xenapi.event_from, ["vm"], "garbage", 1.0) == [
        "EVENT_FROM_TOKEN_PARSE_FAILURE",
        "garbage",
    ]
    other.xenapi.session.logout()


def test_event_from_times_out_empty(api: XenAPI.Session) -> None:
    token = api.xenapi.event_from(["pool"], "", 1.0)["token"]
    batch = api.xenapi.event_from(["pool"], token, 0.3)
    assert batch["events"] == []
    assert batch["token"] >= token


def test_event_inject_returns_the_token_before_the_change(api: XenAPI.Session) -> None:
    pool = api.xenapi.pool.get_all()[0]
    token = api.xenapi.event.inject("pool", pool)
    batch = api.xenapi.event_from(["pool"], token, 5.0)
    assert [(e["operation"], e["ref"]) for e in batch["events"]] == [("mod", pool)]
    assert _failure(api.xenapi.event.inject, "pool", "OpaqueRef:nope") == [
        "HANDLE_INVALID",
        "pool",
        "OpaqueRef:nope",
    ]


def test_legacy_event_api(api: XenAPI.Session) -> None:
    assert _failure(api.xenapi.event.next) == ["SESSION_NOT_REGISTERED", api.handle]
    api.xenapi.event.register(["host"])
    host = api.xenapi.host.get_all()[0]
    api.xenapi.host.set_name_description(host, "legacy")
    events = api.xenapi.event.next()
    assert [(e["class"], e["operation"], e["ref"]) for e in events] == [("host", "mod", host)]
    assert float(events[0]["timestamp"]) > 0
    assert events[0]["obj_uuid"] == api.xenapi.host.get_uuid(host)
    assert int(api.xenapi.event.get_current_id()) >= int(events[0]["id"])
    api.xenapi.event.unregister(["host"])


def test_errors(api: XenAPI.Session, server: RunningServer) -> None:
    assert _failure(api.xenapi.VM.get_record, "OpaqueRef:nope") == [
        "HANDLE_INVALID",
        "VM",
        "OpaqueRef:nope",
    ]
    zero = "00000000-0000-0000-0000-000000000000"
    assert _failure(api.xenapi.VM.get_by_uuid, zero) == ["UUID_INVALID", "VM", zero]
    assert _failure(api.xenapi.VM.frobnicate) == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    assert _failure(api.xenapi.VM.get_record) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.get_record",
        "1",
        "0",
    ]
    metrics = api.xenapi.host_metrics.get_all()[0]
    assert _failure(api.xenapi.host_metrics.get_memory_free, metrics) == ["MESSAGE_REMOVED"]
    vm = api.xenapi.VM.get_all()[0]
    assert _failure(api.xenapi.Async.VM.get_memory_static_max, vm) == [
        "Fault",
        "No async mode for this operation (rpc: VM.get_memory_static_max)",
    ]
    fresh = server.client()
    assert _failure(fresh.xenapi.login_with_password, "root", "wrong", "1.0", "t") == [
        "SESSION_AUTHENTICATION_FAILED",
        "root",
        "Authentication failure",
    ]
    assert _failure(fresh.xenapi.login_with_password, "nobody", "x") == [
        "SESSION_AUTHENTICATION_FAILED",
        "nobody",
        "Authentication failure",
    ]


def test_bad_session_and_logout(server: RunningServer) -> None:
    # The SDK logs in again on SESSION_INVALID, so the raw envelope is read with xmlrpc.client.
    proxy = server.proxy()
    dead = "OpaqueRef:dead0000-0000-4000-8000-000000000000"
    assert proxy.VM.get_all(dead) == {
        "Status": "Failure",
        "ErrorDescription": ["SESSION_INVALID", dead],
    }
    # An unknown method with a bad session: the session is checked first (§5).
    assert proxy.VM.frobnicate(dead)["ErrorDescription"] == ["SESSION_INVALID", dead]
    # A count mismatch is reported before the session check (§4).
    assert proxy.VM.get_record(dead)["ErrorDescription"] == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.get_record",
        "1",
        "0",
    ]
    login = proxy.session.login_with_password("root", ROOT_PASSWORD)
    assert login["Status"] == "Success"
    session = login["Value"]
    assert proxy.pool.get_all(session)["Status"] == "Success"
    assert proxy.session.logout(session) == {"Status": "Success", "Value": ""}
    assert proxy.pool.get_all(session)["ErrorDescription"] == ["SESSION_INVALID", session]


def test_list_methods_is_a_bare_array(server: RunningServer) -> None:
    methods = server.proxy().list_methods()
    assert {
        "VM.get_all_records",
        "event.from",
        "host.compute_free_memory",
        "session.login_with_password",
        "task.get_all_records",
    } <= set(methods)
    assert "VM.set_memory_overhead" not in methods
    assert set(methods) == {*MODEL.messages, "system.listMethods"}
