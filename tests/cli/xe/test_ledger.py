"""The memory ledger map: parsed into parts that add up, and printed as a table."""

from __future__ import annotations

from xenmem.cli.xe.ledger import format_ledger, parse_ledger

MIB = 2**20
WIRE = {
    "total": str(1000 * MIB),
    "xen": str(100 * MIB),
    "reserve": str(72 * MIB),
    "dom0": str(200 * MIB),
    "reservations": "0",
    "vm:OpaqueRef:a:ram": str(500 * MIB),
    "vm:OpaqueRef:a:overhead": str(8 * MIB),
    "vm:OpaqueRef:a:dynamic_min": str(256 * MIB),
    "vm:OpaqueRef:a:target": str(500 * MIB),
    "vm:OpaqueRef:a:actual": str(500 * MIB),
    "vm:OpaqueRef:a:memory_overhead": str(8 * MIB),
    "free": str(120 * MIB),
    "reclaimable_cooperative": str(244 * MIB),
    "reclaimable_uncooperative": "0",
}


def test_parse() -> None:
    ledger = parse_ledger(WIRE)
    assert ledger.total == 1000 * MIB
    assert ledger.balanced
    [vm] = ledger.vms
    assert (vm.ref, vm.ram, vm.overhead) == ("OpaqueRef:a", 500 * MIB, 8 * MIB)
    assert vm.details["dynamic_min"] == 256 * MIB
    assert not parse_ledger({**WIRE, "free": "0"}).balanced


def test_format() -> None:
    text = format_ledger("host1 (u1)", parse_ledger(WIRE), lambda ref: "web")
    lines = text.splitlines()
    assert lines[0] == "host: host1 (u1)"
    assert lines[1].split() == ["part", "bytes", "MiB"]
    assert "web ram" in text
    assert lines[lines.index("") - 1].split() == ["total", str(1000 * MIB), "1000.0"]
    assert "warning" not in text
    assert "reclaimable: cooperative 255852544, uncooperative 0" in text


def test_unaccounted_memory_is_a_warning() -> None:
    lost = {**WIRE, "free": str(100 * MIB), "unaccounted": str(20 * MIB)}
    ledger = parse_ledger(lost)
    assert ledger.balanced
    text = format_ledger("host1 (u1)", ledger, lambda ref: "web")
    assert text.splitlines()[-1] == f"warning: {20 * MIB} bytes are unaccounted for"
