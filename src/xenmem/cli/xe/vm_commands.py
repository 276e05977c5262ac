"""The VM lifecycle around the memory workflow: install from a template, start, shut
down, suspend, resume, migrate, uninstall.

Operations that may wait on ballooning (start, resume, migrate, shutdown, suspend) run as
`Async.` tasks so a terminal shows their progress.
"""

from __future__ import annotations

import sys

import XenAPI

from xenmem.cli.xe.commands import Call, command
from xenmem.cli.xe.errors import XeFailure
from xenmem.cli.xe.records import RecordView, select

__all__: list[str] = []


def _name(vm: RecordView) -> str:
    return str(vm.record["name_label"]) or str(vm.record["uuid"])


def _template(call: Call) -> RecordView:
    """The template `template=` names by uuid or name-label."""
    templates = select(
        call.api, "VM", {"vm": call.params["template"]}, fixed={"is-a-template": "true"}
    )
    if not templates:
        raise XeFailure("Error: Template not found")
    if len(templates) > 1:
        raise XeFailure("Error: More than one matching template found")
    return templates[0]


@command(
    "vm-install",
    required=("template", "new-name-label"),
    optional=("new-name-description",),
    description="Make a new VM from a template (by uuid or name-label); prints its uuid.",
)
def vm_install(call: Call) -> None:
    template = _template(call)
    vm = str(call.api.call("VM.clone", template.ref, call.params["new-name-label"]))
    if "new-name-description" in call.params:
        call.api.call("VM.set_name_description", vm, call.params["new-name-description"])
    _provision(call, vm)
    call.print(str(call.api.call("VM.get_uuid", vm)))


def _provision(call: Call, vm: str) -> None:
    """Turn the clone of a template into a VM.

    xapi's VM.provision does that (is_a_template := false, then the template's disks);
    a server without it, such as xenmem (no disks), gets the flag cleared directly.
    """
    try:
        call.api.call("VM.provision", vm)
    except XenAPI.Failure as failure:
        if failure.details[:1] != ["MESSAGE_METHOD_UNKNOWN"]:
            raise
        call.api.call("VM.set_is_a_template", vm, False)


@command(
    "vm-start",
    optional=("on", "force", "paused"),
    description="Start the VM, on host ON if given; waits while memory is freed for it.",
)
def vm_start(call: Call) -> None:
    _boot(call, "VM.start", "Starting")


def _boot(call: Call, message: str, doing: str) -> None:
    """VM.start or VM.resume (`message`), or their `_on` forms with on=HOST."""
    paused, force = call.flag("paused"), call.flag("force")
    for vm in call.vms():
        label = f"{doing} {_name(vm)}"
        if "on" in call.params:
            host = call.host(call.params["on"])
            call.api.call_with_progress(
                f"{message}_on", vm.ref, host.ref, paused, force, label=label
            )
        else:
            call.api.call_with_progress(message, vm.ref, paused, force, label=label)


@command(
    "vm-shutdown",
    optional=("force",),
    description="Shut the VM down cleanly, or at once with --force.",
)
def vm_shutdown(call: Call) -> None:
    message = "VM.hard_shutdown" if call.flag("force") else "VM.clean_shutdown"
    for vm in call.vms():
        call.api.call_with_progress(message, vm.ref, label=f"Shutting down {_name(vm)}")


@command("vm-suspend", description="Suspend the running VM.")
def vm_suspend(call: Call) -> None:
    for vm in call.vms():
        call.api.call_with_progress("VM.suspend", vm.ref, label=f"Suspending {_name(vm)}")


@command(
    "vm-resume",
    optional=("on", "force", "paused"),
    description="Resume the suspended VM, on host ON if given.",
)
def vm_resume(call: Call) -> None:
    _boot(call, "VM.resume", "Resuming")


@command(
    "vm-migrate",
    required=("host",),
    optional=("live",),
    description="Move the running VM to another host of the pool.",
)
def vm_migrate(call: Call) -> None:
    host = call.host(call.params["host"])
    options = {"live": "true"} if call.flag("live") else {}
    for vm in call.vms():
        label = f"Migrating {_name(vm)}"
        call.api.call_with_progress("VM.pool_migrate", vm.ref, host.ref, options, label=label)


def _confirmed(call: Call, vm: RecordView) -> bool:
    """xe's question before an uninstall without --force: only `yes` goes ahead."""
    call.print(f"About to uninstall VM {_name(vm)} ({vm.record['uuid']}).")
    call.print("Type 'yes' to continue")
    answer = sys.stdin.readline().strip()
    if answer.lower() != "yes":
        call.print(f"Aborted (you typed: '{answer}')")
        return False
    return True


@command("vm-uninstall", optional=("force",), description="Destroy the halted VM.")
def vm_uninstall(call: Call) -> None:
    for vm in call.vms():
        if call.flag("force") or _confirmed(call, vm):
            call.api.call("VM.destroy", vm.ref)
