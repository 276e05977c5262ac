"""Black-box: restarts keep the state; root's password; users added while serving; RBAC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import XenAPI

from tests.serving import start_server

GIB = 2**30


def _create_vm(api: XenAPI.Session, name: str) -> str:
    return str(
        api.xenapi.VM.create(
            {
                "name_label": name,
                "memory_static_min": str(GIB),
                "memory_static_max": str(2 * GIB),
                "memory_dynamic_min": str(GIB),
                "memory_dynamic_max": str(2 * GIB),
                "VCPUs_max": "1",
                "VCPUs_at_startup": "1",
            }
        )
    )


def _user_add(state: Path, name: str, role: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "xenmem.cli.main",
            "user",
            "add",
            name,
            "--role",
            role,
            "--state",
            str(state),
        ],
        input=f"{password}\nignored second line\n",
        capture_output=True,
        text=True,
        check=False,
    )


def test_restart_keeps_everything(fresh_state: Path) -> None:
    server = start_server(fresh_state)
    api = server.session()
    vm = _create_vm(api, "survivor")
    api.xenapi.VM.add_to_other_config(vm, "colour", "green")
    gone = _create_vm(api, "deleted")
    api.xenapi.VM.destroy(gone)
    host = api.xenapi.host.get_all()[0]
    api.xenapi.host.set_name_description(host, "kept")
    before = {
        cls: getattr(api.xenapi, cls).get_all_records()
        for cls in ("VM", "VM_metrics", "host", "host_metrics", "pool")
    }
    token = api.xenapi.event_from(["vm"], "", 1.0)["token"]
    server.stop()

    again = start_server(fresh_state, port=server.port)
    # The SDK's remembered session is gone with the restart: it logs in again by itself.
    api.xenapi.VM.get_all()
    fresh = again.session()
    after = {cls: getattr(fresh.xenapi, cls).get_all_records() for cls in before}
    assert after == before
    assert fresh.xenapi.VM.get_other_config(vm)["colour"] == "green"
    assert fresh.xenapi.VM.get_by_name_label("deleted") == []
    # Generations go on from where they were: an old token is still meaningful.
    fresh.xenapi.VM.set_name_description(vm, "after restart")
    batch = fresh.xenapi.event_from(["vm"], token, 5.0)
    assert [(e["operation"], e["ref"]) for e in batch["events"]] == [("mod", vm)]
    again.closers.append(api("close"))  # it reconnected to the same address
    again.stop()


def test_generated_root_password_is_printed_once(fresh_state: Path) -> None:
    first = start_server(fresh_state, password=None)
    (line,) = [b for b in first.banner if "shown once" in b]
    password = line.rsplit(" ", 1)[1]
    first.session(password=password)
    first.stop()
    second = start_server(fresh_state, password=None)
    assert not any("shown once" in b for b in second.banner)
    second.session(password=password)
    second.stop()
    assert password.encode() not in (fresh_state / "xenmem.db").read_bytes()


def test_user_add_while_serving_and_rbac(fresh_state: Path) -> None:
    server = start_server(fresh_state)
    assert _user_add(fresh_state, "reader", "read-only", "r-pass").returncode == 0
    assert _user_add(fresh_state, "admin", "vm-admin", "a-pass").returncode == 0
    reader = server.session("reader", "r-pass")
    vm = reader.xenapi.VM.get_all()[0]
    assert reader.xenapi.host.compute_free_memory(reader.xenapi.host.get_all()[0])
    with pytest.raises(XenAPI.Failure) as denied:
        reader.xenapi.VM.set_name_label(vm, "nope")
    assert denied.value.details == [
        "RBAC_PERMISSION_DENIED",
        "vm.set_name_label",
        "No permission in user session",
    ]
    admin = server.session("admin", "a-pass")
    admin.xenapi.VM.set_name_label(vm, "renamed by vm-admin")
    with pytest.raises(XenAPI.Failure) as pool_denied:
        admin.xenapi.pool.set_name_label(admin.xenapi.pool.get_all()[0], "mine")
    assert pool_denied.value.details[0] == "RBAC_PERMISSION_DENIED"
    # A new password takes effect at once: the server reads users at every login.
    assert _user_add(fresh_state, "reader", "read-only", "changed").returncode == 0
    with pytest.raises(XenAPI.Failure) as old:
        server.session("reader", "r-pass")
    assert old.value.details == [
        "SESSION_AUTHENTICATION_FAILED",
        "reader",
        "Authentication failure",
    ]
    server.session("reader", "changed")
    server.stop()


def test_user_add_rejects_bad_input(fresh_state: Path) -> None:
    bad_role = _user_add(fresh_state, "x", "emperor", "pw")
    assert bad_role.returncode == 2
    assert "invalid choice" in bad_role.stderr
    empty = _user_add(fresh_state, "x", "read-only", "")
    assert empty.returncode == 2
    assert "empty" in empty.stderr


def test_pool_file(tmp_path: Path) -> None:
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(
        '[pool]\nname = "lab"\ndmc = false\n\n'
        '[[host]]\nname = "big"\nmemory = "256GiB"\ncpus = 32\n'
        'dom0_memory = "8GiB"\nxen_memory = "3GiB"\n'
    )
    server = start_server(tmp_path / "state", "--pool", str(pool_file), time_scale=10.0)
    api = server.session()
    (pool,) = api.xenapi.pool.get_all_records().values()
    assert pool["name_label"] == "lab"
    assert pool["restrictions"]["restrict_dmc"] == "true"
    (host,) = api.xenapi.host.get_all_records().values()
    assert host["name_label"] == "big"
    assert host["memory_overhead"] == str(3 * GIB + 72 * 2**20)
    assert api.xenapi.VM.get_memory_static_max(host["control_domain"]) == str(8 * GIB)
    server.stop()
    pool_file.write_text("[pool]\n[[host]]\nname = 'h'\nmemory = '1GiB'\nxen_memory = '2GiB'\n")
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "xenmem.cli.main",
            "serve",
            "--pool",
            str(pool_file),
            "--state",
            str(tmp_path / "other"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 2
    assert "must fit in memory" in failed.stderr
