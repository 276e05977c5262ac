"""xenmem's memory ledger (`host.get_memory_ledger`): parsed, and as xe prints it.

The ledger is a (string → int) map of bytes. The parts `xen`, `reserve`, `dom0`,
`reservations`, `other_domains`, `unaccounted`, every `vm:<ref>:ram` and
`vm:<ref>:overhead`, and `free` add up to `total`;
`vm:<ref>:dynamic_min|target|actual|memory_overhead` and
`reclaimable_cooperative|uncooperative` are details. `unaccounted` is 0 unless memory is
lost or counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xenmem.memory.units import BYTES_PER_MIB

__all__ = ["VM_DETAILS", "Ledger", "VmShare", "format_ledger", "parse_ledger"]

_HOST_PARTS = ("xen", "reserve", "dom0", "reservations", "other_domains", "unaccounted")
VM_DETAILS = ("dynamic_min", "target", "actual", "memory_overhead")


@dataclass(frozen=True, kw_only=True)
class VmShare:
    """One VM's part of the host: its RAM and overhead, and the details behind them."""

    ref: str
    ram: int
    overhead: int
    details: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class Ledger:
    total: int
    host_parts: Mapping[str, int]  # _HOST_PARTS
    vms: tuple[VmShare, ...]
    free: int
    reclaimable: Mapping[str, int]  # cooperative, uncooperative

    @property
    def balanced(self) -> bool:
        """Whether the parts add up to the total, as the server promises."""
        vm_bytes = sum(vm.ram + vm.overhead for vm in self.vms)
        return sum(self.host_parts.values()) + vm_bytes + self.free == self.total


def parse_ledger(untrusted: Mapping[str, object]) -> Ledger:
    """A ledger from the wire map (int64 values may come as decimal strings)."""
    values = {key: int(str(value)) for key, value in untrusted.items()}
    # Refs hold colons themselves (`OpaqueRef:…`): the ref is all between the ends.
    vm_refs = dict.fromkeys(key[3:].rsplit(":", 1)[0] for key in values if key.startswith("vm:"))
    vms = tuple(
        VmShare(
            ref=ref,
            ram=values.get(f"vm:{ref}:ram", 0),
            overhead=values.get(f"vm:{ref}:overhead", 0),
            details={d: values[f"vm:{ref}:{d}"] for d in VM_DETAILS if f"vm:{ref}:{d}" in values},
        )
        for ref in vm_refs
    )
    return Ledger(
        total=values.get("total", 0),
        host_parts={part: values.get(part, 0) for part in _HOST_PARTS},
        vms=vms,
        free=values.get("free", 0),
        reclaimable={
            kind: values.get(f"reclaimable_{kind}", 0) for kind in ("cooperative", "uncooperative")
        },
    )


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / BYTES_PER_MIB:.1f}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows with the first column left-aligned and the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def format_ledger(host: str, ledger: Ledger, vm_name: Callable[[str], str]) -> str:
    """The ledger of `host` as two tables: the parts of the total, then the VM details."""
    rows: list[tuple[str, ...]] = [("part", "bytes", "MiB")]
    rows += [(part, str(n), _mib(n)) for part, n in ledger.host_parts.items()]
    for vm in ledger.vms:
        rows.append((f"{vm_name(vm.ref)} ram", str(vm.ram), _mib(vm.ram)))
        rows.append((f"{vm_name(vm.ref)} overhead", str(vm.overhead), _mib(vm.overhead)))
    rows.append(("free", str(ledger.free), _mib(ledger.free)))
    rows.append(("total", str(ledger.total), _mib(ledger.total)))
    lines = [f"host: {host}", *_table(rows)]
    if ledger.vms:
        details: list[tuple[str, ...]] = [("VM", *(d.replace("_", "-") for d in VM_DETAILS))]
        details += [
            (vm_name(vm.ref), *(str(vm.details.get(d, "")) for d in VM_DETAILS))
            for vm in ledger.vms
        ]
        lines += ["", *_table(details)]
    reclaimable = ", ".join(f"{kind} {n}" for kind, n in ledger.reclaimable.items())
    lines += ["", f"reclaimable: {reclaimable}"]
    if not ledger.balanced:
        lines.append("warning: the parts do not add up to the total")
    if unaccounted := ledger.host_parts["unaccounted"]:
        lines.append(f"warning: {unaccounted} bytes are unaccounted for")
    return "\n".join(lines) + "\n"
