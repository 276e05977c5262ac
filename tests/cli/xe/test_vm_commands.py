"""A VM's life through xe: install, start, balloon, migrate, suspend, resume, shut down,
uninstall; each step checked against the API's view."""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess

import XenAPI

from tests.cli.xe.conftest import MIB, XE, Xe, failure, parse_records
from tests.serving import ROOT_PASSWORD, vm_record
from xenmem.cli.xe.ledger import parse_ledger


def _host_named(api: XenAPI.Session, name: str) -> str:
    [host] = api.xenapi.host.get_by_name_label(name)
    return str(host)


def test_the_life_of_a_vm(xe: Xe, api: XenAPI.Session) -> None:
    template = api.xenapi.VM.create(vm_record("life-template", is_a_template=True))
    uuid = xe.ok("vm-install", "template=life-template", "new-name-label=web").strip()
    vm = api.xenapi.VM.get_by_uuid(uuid)
    assert api.xenapi.VM.get_name_label(vm) == "web"
    assert api.xenapi.VM.get_is_a_template(vm) is False
    host1, host2 = _host_named(api, "host1"), _host_named(api, "host2")

    # Started from a pipe: no progress bar on stderr.
    assert xe.ok("vm-start", "vm=web", "on=host1") == ""
    assert api.xenapi.VM.get_power_state(vm) == "Running"
    assert api.xenapi.VM.get_resident_on(vm) == host1

    bad = failure(xe("vm-memory-limits-set", "vm=web", *_limits("1GiB", "4GiB", "2GiB", "4GiB")))
    assert (
        bad == f"Error code: VM_BAD_POWER_STATE\nError parameters: {uuid} (web), halted, running\n"
    )

    xe.ok("vm-memory-target-set", "vm=web", "target=1536MiB")
    xe.ok("vm-memory-target-wait", "vm=web")
    actual = int(xe.ok("vm-param-get", f"uuid={uuid}", "param-name=memory-actual"))
    assert abs(actual - 1536 * MIB) <= MIB
    metrics = api.xenapi.VM.get_metrics(vm)
    assert actual == int(api.xenapi.VM_metrics.get_memory_actual(metrics))

    xe.ok("vm-memory-shadow-multiplier-set", "vm=web", "multiplier=2.0")
    assert api.xenapi.VM.get_HVM_shadow_multiplier(vm) == 2.0

    ledger = parse_ledger(api.xenapi.host.get_memory_ledger(host1))
    shown = xe.ok("host-memory-ledger", "host=host1")
    [share] = [share for share in ledger.vms if share.ref == vm]
    rows = {
        " ".join(line.split()[:-2]): line.split()[-2] for line in shown.splitlines()[2:] if line
    }
    assert (rows["web ram"], rows["web overhead"]) == (str(share.ram), str(share.overhead))
    assert rows["total"] == str(ledger.total)
    assert shown.splitlines()[0] == f"host: host1 ({api.xenapi.host.get_uuid(host1)})"

    xe.ok("vm-migrate", "vm=web", "host=host2")
    assert api.xenapi.VM.get_resident_on(vm) == host2
    xe.ok("vm-suspend", "vm=web")
    assert api.xenapi.VM.get_power_state(vm) == "Suspended"
    xe.ok("vm-resume", "vm=web", "on=host1")
    assert (api.xenapi.VM.get_power_state(vm), api.xenapi.VM.get_resident_on(vm)) == (
        "Running",
        host1,
    )
    xe.ok("vm-shutdown", "vm=web", "--force")
    assert api.xenapi.VM.get_power_state(vm) == "Halted"
    xe.ok("vm-start", "vm=web")
    xe.ok("vm-shutdown", "vm=web")
    assert parse_records(xe.ok("vm-list", "vm=web"))[0]["power-state"] == "halted"

    declined = xe("vm-uninstall", "vm=web", stdin="no\n")
    assert declined.returncode == 0
    assert "Aborted (you typed: 'no')" in declined.stdout
    assert api.xenapi.VM.get_uuid(vm) == uuid
    xe.ok("vm-uninstall", "vm=web", "--force")
    assert xe.ok("vm-list", "vm=web") == ""
    api.xenapi.VM.destroy(template)


def _limits(static_min: str, static_max: str, dynamic_min: str, dynamic_max: str) -> list[str]:
    return [
        f"static-min={static_min}",
        f"static-max={static_max}",
        f"dynamic-min={dynamic_min}",
        f"dynamic-max={dynamic_max}",
    ]


def test_install_needs_a_template(xe: Xe, api: XenAPI.Session) -> None:
    vm = api.xenapi.VM.create(vm_record("not-a-template"))
    assert failure(xe("vm-install", "template=not-a-template", "new-name-label=x")) == (
        "Error: Template not found\n"
    )
    api.xenapi.VM.destroy(vm)


def test_a_start_shows_progress_on_a_terminal(xe: Xe, api: XenAPI.Session) -> None:
    vm = api.xenapi.VM.create(vm_record("tty-vm"))
    terminal, stderr = pty.openpty()
    switches = ["-p", str(xe.server.port), "-pw", ROOT_PASSWORD]
    with subprocess.Popen(
        [XE, *switches, "vm-start", "vm=tty-vm"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "HOME": str(xe.home)},
    ) as started:
        os.close(stderr)
        shown = _read_all(terminal)  # until xe exits, so it never blocks on a full terminal
    assert started.returncode == 0
    assert "Starting tty-vm" in shown
    assert api.xenapi.VM.get_power_state(vm) == "Running"
    api.xenapi.VM.hard_shutdown(vm)
    api.xenapi.VM.destroy(vm)


def _read_all(fd: int) -> str:
    """What was written to a pseudo-terminal whose other end is closed."""
    chunks = []
    with contextlib.suppress(OSError):  # Linux reports the closed end as EIO
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")
