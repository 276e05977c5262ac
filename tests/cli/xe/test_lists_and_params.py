"""xe host-list, vm-list, *-param-* and the compute commands against a live server."""

from __future__ import annotations

import XenAPI

from tests.cli.xe.conftest import GIB, Xe, failure, parse_records
from tests.serving import vm_record


def test_host_list_shows_what_the_api_holds(xe: Xe, api: XenAPI.Session) -> None:
    hosts = api.xenapi.host.get_all_records().values()
    expected = [
        {"uuid": h["uuid"], "name-label": h["name_label"], "name-description": ""} for h in hosts
    ]
    assert parse_records(xe.ok("host-list")) == expected
    assert xe.ok("host-list", "--minimal") == ",".join(h["uuid"] for h in hosts) + "\n"
    one = next(iter(hosts))
    assert xe.ok("host-list", f"name-label={one['name_label']}", "params=uuid", "--minimal") == (
        one["uuid"] + "\n"
    )


def test_vm_list_filters_and_leaves_templates_out(xe: Xe, api: XenAPI.Session) -> None:
    template = api.xenapi.VM.create(vm_record("list-template", is_a_template=True))
    vm = api.xenapi.VM.create(vm_record("list-vm"))
    records = api.xenapi.VM.get_all_records()
    not_templates = [r["uuid"] for r in records.values() if not r["is_a_template"]]
    running = [r["uuid"] for r in records.values() if r["power_state"] == "Running"]
    assert xe.ok("vm-list", "--minimal").strip().split(",") == not_templates
    assert xe.ok("vm-list", "power-state=running", "--minimal").strip().split(",") == running
    shown = parse_records(xe.ok("vm-list", "name-label=list-vm"))
    assert shown == [
        {"uuid": records[vm]["uuid"], "name-label": "list-vm", "power-state": "halted"}
    ]
    templates = xe.ok("vm-list", "is-a-template=true", "params=name-label", "--minimal")
    assert "list-template" in templates.strip().split(",")
    assert xe.ok("vm-list", "name-label=list-template") == ""
    for ref in (template, vm):
        api.xenapi.VM.destroy(ref)


def test_vm_param_list_and_get_match_the_records(xe: Xe, api: XenAPI.Session) -> None:
    vm = api.xenapi.VM.create(vm_record("params-vm", HVM_shadow_multiplier=1.5))
    record = api.xenapi.VM.get_record(vm)
    metrics = api.xenapi.VM_metrics.get_record(record["metrics"])
    shown = parse_records(xe.ok("vm-param-list", f"uuid={record['uuid']}"))[0]
    for wire in ("memory_static_min", "memory_static_max", "memory_dynamic_min"):
        assert shown[wire.replace("_", "-")] == str(record[wire])
    assert shown["memory-overhead"] == str(record["memory_overhead"])
    assert shown["memory-actual"] == str(metrics["memory_actual"])
    assert shown["VCPUs-max"] == "2"
    assert shown["HVM-shadow-multiplier"] == "1.5"
    assert shown["power-state"] == "halted"
    assert shown["resident-on"] == "<not in database>"
    assert shown["is-a-template"] == "false"
    get = xe.ok("vm-param-get", f"uuid={record['uuid']}", "param-name=memory-dynamic-min")
    assert get == f"{2 * GIB}\n"
    api.xenapi.VM.destroy(vm)


def test_qualifiers_follow_the_setters_the_api_has(xe: Xe, api: XenAPI.Session) -> None:
    dom0 = next(iter(api.xenapi.VM.get_all_records().values()))
    lines = xe.ok("vm-param-list", f"uuid={dom0['uuid']}").splitlines()
    qualifier = {
        line.split(" (")[0].strip(): line.split("(")[1][:3].strip() for line in lines if line
    }
    assert qualifier["name-label"] == "RW"
    assert qualifier["uuid"] == "RO"
    assert qualifier["other-config"] == "MRW"
    assert qualifier["allowed-operations"] == "SRO"
    # settable through VM.set_memory_static_max, a message of its own
    assert qualifier["memory-static-max"] == "RW"
    assert qualifier["memory-overhead"] == "RO"


def test_host_memory_fields(xe: Xe, api: XenAPI.Session) -> None:
    host, record = next(iter(api.xenapi.host.get_all_records().items()))
    metrics = api.xenapi.host_metrics.get_record(record["metrics"])
    expected = {
        "memory-overhead": record["memory_overhead"],
        "memory-total": metrics["memory_total"],
        "memory-free": metrics["memory_free"],
        "memory-free-computed": api.xenapi.host.compute_free_memory(host),
    }
    for name, value in expected.items():
        assert xe.ok("host-param-get", f"uuid={record['uuid']}", f"param-name={name}") == (
            f"{value}\n"
        )
    listed = parse_records(xe.ok("host-param-list", f"uuid={record['uuid']}"))[0]
    assert {name: listed[name] for name in expected} == {k: str(v) for k, v in expected.items()}
    # The expensive field is left out of lists unless asked for.
    assert "memory-free-computed" not in parse_records(xe.ok("host-list", "params=all"))[0]


def test_compute_commands(xe: Xe, api: XenAPI.Session) -> None:
    host, record = next(iter(api.xenapi.host.get_all_records().items()))
    free = api.xenapi.host.compute_free_memory(host)
    assert xe.ok("host-compute-free-memory", f"host={record['name_label']}") == f"{free}\n"
    assert xe.ok("host-compute-free-memory", f"uuid={record['uuid']}") == f"{free}\n"
    overhead = api.xenapi.host.compute_memory_overhead(host)
    assert xe.ok("host-compute-memory-overhead", f"host={record['uuid']}") == f"{overhead}\n"
    vm = api.xenapi.VM.create(vm_record("overhead-vm"))
    vm_overhead = api.xenapi.VM.compute_memory_overhead(vm)
    assert xe.ok("vm-compute-memory-overhead", "vm=overhead-vm") == f"{vm_overhead}\n"
    # Control domains are included here, as in xe.
    dom0 = api.xenapi.host.get_control_domain(host)
    dom0_overhead = api.xenapi.VM.compute_memory_overhead(dom0)
    dom0_uuid = api.xenapi.VM.get_uuid(dom0)
    assert xe.ok("vm-compute-memory-overhead", f"uuid={dom0_uuid}") == f"{dom0_overhead}\n"
    api.xenapi.VM.destroy(vm)


def test_selection_errors(xe: Xe, api: XenAPI.Session) -> None:
    twins = [api.xenapi.VM.create(vm_record("twin")) for _ in range(2)]
    assert failure(xe("vm-compute-memory-overhead", "vm=nobody")) == (
        "Error: No matching VMs found\n"
    )
    assert failure(xe("vm-compute-memory-overhead", "vm=twin")) == (
        "Error: Multiple matches VMs found. --multiple required to complete the operation\n"
    )
    both = xe.ok("vm-compute-memory-overhead", "vm=twin", "--multiple").split()
    assert both == [str(api.xenapi.VM.compute_memory_overhead(ref)) for ref in twins]
    assert failure(xe("host-compute-free-memory")) == (
        "Error: Multiple matching hosts found. --multiple required to complete the operation\n"
    )
    assert failure(xe("vm-compute-memory-overhead", "colour=blue")) == (
        "Error: Parameter 'colour' is not a field of the VM class. "
        "Failed to select VM for operation.\n"
    )
    for ref in twins:
        api.xenapi.VM.destroy(ref)


def test_param_errors(xe: Xe, api: XenAPI.Session) -> None:
    assert failure(xe("vm-param-get", "uuid=nonsense", "param-name=uuid")) == (
        "Error code: UUID_INVALID\nError parameters: VM, nonsense\n"
    )
    dom0 = next(iter(api.xenapi.VM.get_all_records().values()))
    assert failure(xe("vm-param-get", f"uuid={dom0['uuid']}", "param-name=colour")) == (
        "Error code: Missing parameter\nError parameters: colour\n"
    )
    assert failure(xe("vm-param-set", f"uuid={dom0['uuid']}", "power-state=halted")) == (
        "Error: Parameter 'power-state' is read-only\n"
    )


def test_param_set_of_plain_and_map_fields(xe: Xe, api: XenAPI.Session) -> None:
    vm = api.xenapi.VM.create(vm_record("set-vm"))
    uuid = api.xenapi.VM.get_uuid(vm)
    xe.ok("vm-param-set", f"uuid={uuid}", "name-description=a test VM", "other-config:k=v")
    xe.ok("vm-param-set", f"uuid={uuid}", "other-config:k=w")
    assert api.xenapi.VM.get_name_description(vm) == "a test VM"
    assert api.xenapi.VM.get_other_config(vm)["k"] == "w"
    assert xe.ok("vm-param-get", f"uuid={uuid}", "param-name=other-config", "param-key=k") == "w\n"
    api.xenapi.VM.destroy(vm)
