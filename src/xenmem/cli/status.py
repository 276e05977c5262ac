"""`xenmem status`: the pool's memory at a glance, as tables or as JSON.

Connects as xe does (same switches, `~/.xe` and `XE_EXTRA_ARGS`); sizes in the tables
are MiB, in the JSON bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from xenmem.cli.pool_summary import gather
from xenmem.cli.xe.api import Api
from xenmem.cli.xe.connection import connected, invocation_from_environment, resolve_settings
from xenmem.cli.xe.progress import Progress
from xenmem.cli.xe.reporting import reported
from xenmem.memory.units import BYTES_PER_MIB

__all__ = ["register"]

_SWITCHES = (
    ("-s", "--server", "server", "HOST"),
    ("-p", "--port", "port", "PORT"),
    ("-u", "--user", "username", "USER"),
    ("-pw", "--password", "password", "PASSWORD"),
    ("-pwf", "--password-file", "passwordfile", "FILE"),
)


def _mib(n_bytes: int | None) -> str:
    return "" if n_bytes is None else f"{n_bytes / BYTES_PER_MIB:,.0f}"


def _hosts_table(hosts: list[dict[str, Any]]) -> Table:
    table = Table(title="Hosts (MiB)")
    for column in ("host", "total", "overhead", "free", "free for VMs"):
        table.add_column(column, justify="left" if column == "host" else "right")
    for h in hosts:
        table.add_row(
            h["name_label"],
            _mib(h["memory_total"]),
            _mib(h["memory_overhead"]),
            _mib(h["memory_free"]),
            _mib(h["compute_free_memory"]),
        )
    return table


def _ledger_table(host: dict[str, Any]) -> Table:
    ledger = host["ledger"]
    table = Table(title=f"Memory ledger of {host['name_label']} (MiB)")
    table.add_column("part")
    table.add_column("MiB", justify="right")
    if "error" in ledger:
        table.add_row("unavailable", " ".join(ledger["error"]), style="red")
        return table
    for part in ("xen", "reserve", "dom0", "reservations", "other_domains"):
        table.add_row(part, _mib(ledger[part]))
    for vm in ledger["vms"]:
        table.add_row(f"{vm['vm']} RAM", _mib(vm["ram"]))
        table.add_row(f"{vm['vm']} overhead", _mib(vm["overhead"]))
    table.add_row("free", _mib(ledger["free"]))
    # Memory none of the parts explains: 0 unless memory was lost or counted twice.
    unaccounted = ledger["unaccounted"]
    table.add_row("unaccounted", _mib(unaccounted), style="bold red" if unaccounted else None)
    table.add_row("total", _mib(ledger["total"]), style="bold")
    return table


def _health(vm: dict[str, Any]) -> str:
    parts = [vm["balloon_health"] or ""]
    if vm["cooperative"] is False:
        parts.append("uncooperative")
    for key, word in (
        ("balloon_inactive_since", "inactive"),
        ("balloon_uncooperative_since", "stuck"),
    ):
        if vm[key]:
            parts.append(f"{word} since {vm[key]}")
    return ", ".join(p for p in parts if p)


def _vms_table(vms: list[dict[str, Any]]) -> Table:
    table = Table(title="VMs (MiB)")
    columns = (
        "VM",
        "power",
        "host",
        "static",
        "dynamic",
        "target",
        "actual",
        "overhead",
        "balloon",
    )
    for column in columns:
        table.add_column(column, justify="right" if column in columns[3:8] else "left")
    for vm in vms:
        table.add_row(
            vm["name_label"],
            str(vm["power_state"]).lower(),
            vm["resident_on"] or "",
            f"{_mib(vm['memory_static_min'])}-{_mib(vm['memory_static_max'])}",
            f"{_mib(vm['memory_dynamic_min'])}-{_mib(vm['memory_dynamic_max'])}",
            _mib(vm["memory_target"]),
            _mib(vm["memory_actual"]),
            _mib(vm["memory_overhead"]),
            _health(vm),
        )
    return table


def _print_tables(summary: dict[str, Any]) -> None:
    # Piped output keeps whole rows (rich would wrap them at 80 columns).
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(_hosts_table(summary["hosts"]))
    for host in summary["hosts"]:
        if host["ledger"] is not None:
            console.print(_ledger_table(host))
    console.print(_vms_table(summary["vms"]))


def _connection_argv(args: argparse.Namespace) -> list[str]:
    """The connection options as xe switches, so that xe's precedence rules apply."""
    argv = ["status"]
    for short, _, dest, _ in _SWITCHES:
        if getattr(args, dest) is not None:
            argv += [short, getattr(args, dest)]
    return argv + (["--nossl"] if args.nossl else [])


def _run(args: argparse.Namespace) -> int:
    return reported(lambda: _status(args))


def _status(args: argparse.Namespace) -> int:
    invocation = invocation_from_environment(_connection_argv(args))
    with connected(resolve_settings(invocation.connection)) as session:
        summary = gather(Api(session, progress=Progress()))
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        _print_tables(summary)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help="the pool's hosts, memory ledgers and VMs (connects as xe does)"
    )
    for short, long, dest, metavar in _SWITCHES:
        status.add_argument(short, long, dest=dest, metavar=metavar)
    status.add_argument("--nossl", action="store_true", help="plain HTTP to a remote server")
    status.add_argument("--json", action="store_true", help="JSON instead of tables")
    status.set_defaults(run=_run)
