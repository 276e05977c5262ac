"""The memory commands of xapi-memory.md §9, with xe's VM and host selection rules.

The setters take xe's size strings; int64 arguments go as decimal strings (the SDK's way
to send values ≥ 2^31). Which VMs each command may select follows cli_operations.ml:
the setters include control domains and (but for the target) templates.
"""

from __future__ import annotations

from xenmem.cli.xe.commands import Call, command
from xenmem.cli.xe.fields import parse_float
from xenmem.cli.xe.ledger import format_ledger, parse_ledger

__all__: list[str] = []


@command("host-compute-free-memory", description="Bytes free for new VMs on the host.")
def host_compute_free_memory(call: Call) -> None:
    for host in call.hosts():
        call.print(str(call.api.call("host.compute_free_memory", host.ref)))


@command("host-compute-memory-overhead", description="The host's memory overhead in bytes.")
def host_compute_memory_overhead(call: Call) -> None:
    for host in call.hosts():
        call.print(str(call.api.call("host.compute_memory_overhead", host.ref)))


@command("vm-compute-memory-overhead", description="The VM's memory overhead in bytes.")
def vm_compute_memory_overhead(call: Call) -> None:
    for vm in call.vms(control=True):
        call.print(str(call.api.call("VM.compute_memory_overhead", vm.ref)))


@command(
    "vm-compute-maximum-memory",
    required=("total",),
    optional=("approximate",),
    description="The largest static-max the VM could have in TOTAL bytes of host memory.",
)
def vm_compute_maximum_memory(call: Call) -> None:
    total = call.size("total")
    for vm in call.vms():
        result = call.api.call("VM.maximise_memory", vm.ref, str(total), call.flag("approximate"))
        call.print(str(result))


@command(
    "vm-memory-dynamic-range-set",
    required=("min", "max"),
    description="Set the VM's dynamic memory range (halted or running).",
)
def vm_memory_dynamic_range_set(call: Call) -> None:
    low, high = call.size("min"), call.size("max")
    for vm in call.vms(control=True, templates=True):
        call.api.call("VM.set_memory_dynamic_range", vm.ref, str(low), str(high))


@command(
    "vm-memory-static-range-set",
    required=("min", "max"),
    description="Set the VM's static memory range (halted).",
)
def vm_memory_static_range_set(call: Call) -> None:
    low, high = call.size("min"), call.size("max")
    for vm in call.vms(control=True, templates=True):
        call.api.call("VM.set_memory_static_range", vm.ref, str(low), str(high))


_LIMITS = ("static-min", "static-max", "dynamic-min", "dynamic-max")


@command(
    "vm-memory-limits-set",
    required=_LIMITS,
    description="Set all four memory limits at once (halted).",
)
def vm_memory_limits_set(call: Call) -> None:
    limits = [str(call.size(name)) for name in _LIMITS]
    for vm in call.vms(control=True, templates=True):
        call.api.call("VM.set_memory_limits", vm.ref, *limits)


@command(
    "vm-memory-set",
    required=("memory",),
    description="Set static-max, dynamic-min and dynamic-max to MEMORY (halted).",
)
def vm_memory_set(call: Call) -> None:
    memory = call.size("memory")
    for vm in call.vms(control=True, templates=True):
        call.api.call("VM.set_memory", vm.ref, str(memory))


@command(
    "vm-memory-target-set",
    required=("target",),
    description="Set the dynamic range to TARGET..TARGET, so the balloon aims at TARGET.",
)
def vm_memory_target_set(call: Call) -> None:
    target = str(call.size("target"))
    for vm in call.vms(control=True):
        call.api.call("VM.set_memory_dynamic_range", vm.ref, target, target)


@command(
    "vm-memory-target-wait",
    description="Wait until the running VM's memory is within 1 MiB of its target.",
)
def vm_memory_target_wait(call: Call) -> None:
    for vm in call.vms(control=True):
        label = f"Waiting for {vm.record['name_label']} to reach its memory target"
        call.api.call_with_progress("VM.wait_memory_target_live", vm.ref, label=label)


@command(
    "vm-memory-shadow-multiplier-set",
    required=("multiplier",),
    description="Change the running VM's shadow memory multiplier.",
)
def vm_memory_shadow_multiplier_set(call: Call) -> None:
    multiplier = parse_float("multiplier", call.params["multiplier"])
    for vm in call.vms():
        call.api.call("VM.set_shadow_multiplier_live", vm.ref, multiplier)


@command("host-memory-ledger", description="Where the host's memory goes (xenmem extension).")
def host_memory_ledger(call: Call) -> None:
    for host in call.hosts():
        ledger = parse_ledger(call.api.call("host.get_memory_ledger", host.ref))
        title = f"{host.record['name_label']} ({host.record['uuid']})"
        call.out.write(format_ledger(title, ledger, call.api.name_of_vm))
