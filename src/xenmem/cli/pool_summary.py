"""The pool as an operator sees it: hosts, their memory ledgers, VMs and balloon health.

Gathered over the XenAPI into plain JSON-ready data (bytes as ints) that `xenmem status`
prints as tables or as JSON. Messages an older server lacks (the ledger extension,
VM.get_cooperative) leave their entries null rather than failing the summary.
"""

from __future__ import annotations

from typing import Any

import XenAPI

from xenmem.cli.xe.api import Api, Record
from xenmem.cli.xe.ledger import parse_ledger

__all__ = ["BALLOON_KEYS", "gather"]

# VM_metrics.other_config keys where the ballooning daemon reports a guest's health.
BALLOON_KEYS = ("balloon_health", "balloon_inactive_since", "balloon_uncooperative_since")
_VM_MEMORY = (
    "memory_static_min",
    "memory_dynamic_min",
    "memory_target",
    "memory_dynamic_max",
    "memory_static_max",
    "memory_overhead",
)
_ABSENT = frozenset({"MESSAGE_METHOD_UNKNOWN", "MESSAGE_REMOVED"})


def _optional(api: Api, wire_name: str, *args: object) -> Any:
    """A call's answer, or None when the server does not have the message."""
    try:
        return api.call(wire_name, *args)
    except XenAPI.Failure as failure:
        if failure.details[:1] and failure.details[0] in _ABSENT:
            return None
        raise


def _ledger(api: Api, host: str) -> dict[str, Any] | None:
    """The host's ledger; None without the extension; `error` when the server failed it
    (the rest of the summary is still worth showing)."""
    try:
        answer = _optional(api, "host.get_memory_ledger", host)
    except XenAPI.Failure as failure:
        return {"error": [str(d) for d in failure.details]}
    if answer is None:
        return None
    ledger = parse_ledger(answer)
    return {
        "total": ledger.total,
        **ledger.host_parts,
        "vms": [
            {"vm": api.name_of_vm(vm.ref), "ram": vm.ram, "overhead": vm.overhead, **vm.details}
            for vm in ledger.vms
        ],
        "free": ledger.free,
        "reclaimable": dict(ledger.reclaimable),
        "balanced": ledger.balanced,
    }


def _host(api: Api, ref: str, record: Record) -> dict[str, Any]:
    metrics = api.record("host_metrics", str(record["metrics"])) or {}
    return {
        "uuid": record["uuid"],
        "name_label": record["name_label"],
        "memory_total": int(metrics.get("memory_total", 0)),
        "memory_overhead": int(record["memory_overhead"]),
        "memory_free": int(metrics.get("memory_free", 0)),
        "compute_free_memory": int(api.call("host.compute_free_memory", ref)),
        "ledger": _ledger(api, ref),
    }


def _vm(api: Api, ref: str, record: Record) -> dict[str, Any]:
    metrics = api.record("VM_metrics", str(record["metrics"]))
    other = dict(metrics["other_config"]) if metrics else {}
    resident = api.record("host", str(record["resident_on"]))
    return {
        "uuid": record["uuid"],
        "name_label": record["name_label"],
        "power_state": record["power_state"],
        "resident_on": resident["name_label"] if resident else None,
        "is_control_domain": bool(record["is_control_domain"]),
        **{field: int(record[field]) for field in _VM_MEMORY},
        "memory_actual": int(metrics["memory_actual"]) if metrics else None,
        "cooperative": _optional(api, "VM.get_cooperative", ref),
        **{key: other.get(key) for key in BALLOON_KEYS},
    }


def gather(api: Api) -> dict[str, Any]:
    """The pool summary: `hosts` (with their ledgers) and `vms` (templates left out)."""
    return {
        "hosts": [_host(api, ref, r) for ref, r in api.all_records("host").items()],
        "vms": [
            _vm(api, ref, r) for ref, r in api.all_records("VM").items() if not r["is_a_template"]
        ],
    }
