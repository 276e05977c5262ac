"""The field tables derived from the datamodel, and how values are shown and read."""

from __future__ import annotations

import io

import pytest

from xenmem.cli.xe.errors import XeFailure
from xenmem.cli.xe.fields import format_float, parse_float, parse_value, render, wire_fields
from xenmem.cli.xe.progress import Progress
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.types import BOOL, FLOAT, INT, STRING, Enum, Map, Ref, Set


def _by_name(cls: str) -> dict[str, object]:
    return {f.name: f for f in wire_fields(cls)}


def test_every_datamodel_field_has_an_xe_name() -> None:
    for cls in ("VM", "host"):
        fields = wire_fields(cls)
        assert [f.wire for f in fields] == [f.name for f in MODEL.cls(cls).fields]
    names = _by_name("VM")
    for xe in ("memory-static-max", "VCPUs-max", "HVM-shadow-multiplier", "power-state"):
        assert xe in names


def test_qualifier_is_rw_exactly_when_a_setter_exists() -> None:
    for f in wire_fields("VM"):
        assert (f.setter is not None) == (f"VM.set_{f.wire}" in MODEL.messages)
        assert f.qualifier.endswith("RW" if f.setter else "RO")
    names = {f.name: f.qualifier for f in wire_fields("VM")}
    assert (names["other-config"], names["tags"], names["uuid"]) == ("MRW", "SRW", "RO")


def test_render() -> None:
    def show(cls: str, ref: str) -> str:
        return f"uuid-of-{ref}"

    assert render(BOOL, True, show) == "true"
    assert render(FLOAT, 1.0, show) == "1."
    assert render(INT, "4294967296", show) == "4294967296"
    assert render(Ref("host"), "OpaqueRef:h", show) == "uuid-of-OpaqueRef:h"
    assert render(Enum("power", ("Halted", "Running")), "Running", show) == "running"
    assert render(Set(STRING), ["a", "b"], show) == "a; b"
    assert render(Map(STRING, STRING), {"k": "v", "k2": "v2"}, show) == "k: v; k2: v2"


def test_format_float_is_ocamls() -> None:
    assert [format_float(x) for x in (1.0, 1.5, 2.25, 10.0)] == ["1.", "1.5", "2.25", "10."]


def test_parse_values() -> None:
    fields = {f.name: f for f in wire_fields("VM")}
    assert parse_value(fields["memory-static-max"], "4GiB") == str(4 * 2**30)
    assert parse_value(fields["VCPUs-max"], "4") == "4"
    assert parse_value(fields["HVM-shadow-multiplier"], "1.5") == 1.5
    assert parse_value(fields["is-a-template"], "true") is True
    with pytest.raises(XeFailure, match="Failed to parse field 'memory-static-max'"):
        parse_value(fields["memory-static-max"], "lots")
    with pytest.raises(XeFailure, match="Failed to parse parameter 'VCPUs-max'"):
        parse_value(fields["VCPUs-max"], "two")
    with pytest.raises(XeFailure, match="expecting a float"):
        parse_float("multiplier", "nan")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only() -> None:
    piped = io.StringIO()
    with Progress(piped).bar("Starting web") as show:
        show(0.5)
    assert piped.getvalue() == ""
    terminal = _Terminal()
    with Progress(terminal).bar("Starting web") as show:
        show(0.5)
    assert "Starting web" in terminal.getvalue()
