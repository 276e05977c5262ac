"""xe's field tables, derived from the served datamodel, and how values are shown and read.

Every field of a class is an xe field named by its wire name with `_` → `-`
(`memory_static_max` → `memory-static-max`). Its qualifier is `RW` when the API has a
setter for it (`Class.set_<field>`: a generated one for RW fields, or a dedicated message
such as `VM.set_memory_static_max`), `RO` otherwise, prefixed `M` for maps and `S` for
sets (xe's records.ml). The few fields xe computes from other objects are added by
`records`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xenmem.cli.xe.errors import XeFailure
from xenmem.cli.xe.invocation import is_true
from xenmem.cli.xe.output import format_map, format_set
from xenmem.memory.units import SizeParseError, parse_size
from xenmem.xenapi.datamodel import Field
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.types import BOOL, FLOAT, INT, ApiType, Enum, Map, Prim, Ref, Set

__all__ = [
    "XeField",
    "format_float",
    "parse_float",
    "parse_value",
    "render",
    "wire_fields",
    "xe_name",
]

RefShower = Callable[[str, str], str]  # (class, ref) → what xe shows


def xe_name(wire: str) -> str:
    return wire.replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class XeField:
    """One field of an xe record: its name, qualifier, the wire field and its setter."""

    name: str
    qualifier: str
    wire: str
    type: ApiType
    setter: str | None  # wire name of the message that sets it, if any


def _qualifier(f: Field, settable: bool) -> str:
    prefix = "M" if isinstance(f.type, Map) else "S" if isinstance(f.type, Set) else ""
    return prefix + ("RW" if settable else "RO")


def wire_fields(cls: str) -> tuple[XeField, ...]:
    """The xe fields of every datamodel field of `cls`, in the datamodel's order."""
    fields = []
    for f in MODEL.cls(cls).fields:
        setter = f"{cls}.set_{f.name}"
        settable = setter in MODEL.messages
        fields.append(
            XeField(
                name=xe_name(f.name),
                qualifier=_qualifier(f, settable),
                wire=f.name,
                type=f.type,
                setter=setter if settable else None,
            )
        )
    return tuple(fields)


def format_float(value: float) -> str:
    """A float as OCaml's string_of_float prints it, as xe does: `1.`, `1.5`, `2.25`."""
    text = f"{value:.12g}"
    return text if any(c in text for c in ".eni") else text + "."


def render(t: ApiType, value: Any, show_ref: RefShower) -> str:
    """A wire value as xe prints it: sets `a; b`, maps `k: v; k2: v2`, refs as uuids,
    booleans `true`/`false`, power states and other enums lower-case."""
    match t:
        case Prim() if t == BOOL:
            return "true" if value else "false"
        case Prim() if t == FLOAT:
            return format_float(float(value))
        case Prim():
            return str(value)
        case Ref(cls=cls):
            return show_ref(cls, str(value))
        case Enum():
            return str(value).lower()
        case Set(item=item):
            return format_set([render(item, v, show_ref) for v in value])
        case Map(key=key, value=item):
            return format_map(
                {render(key, k, show_ref): render(item, v, show_ref) for k, v in value.items()}
            )
        case _:
            return str(value)


def parse_float(name: str, text: str) -> float:
    """A float parameter, or xe's parse failure naming it."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise XeFailure(f"Error: Failed to parse parameter '{name}': expecting a float")
    return value


def parse_size_param(name: str, text: str) -> int:
    """A size parameter in bytes (xe's suffixes), or xe's parse failure naming it."""
    try:
        return parse_size(text, name)
    except SizeParseError as error:
        raise XeFailure(f"Error: {error}") from None


def parse_value(f: XeField, text: str) -> object:
    """What `vm-param-set NAME=TEXT` sends for field `f`, in the SDK's argument form.

    Memory fields take xe's size strings; int64s go as decimal strings (the SDK's way
    to send values ≥ 2^31).
    """
    match f.type:
        case Prim() if f.type == INT and f.wire.startswith("memory"):
            return str(parse_size_param(f.name, text))
        case Prim() if f.type == INT:
            try:
                return str(int(text))
            except ValueError:
                raise XeFailure(
                    f"Error: Failed to parse parameter '{f.name}': expecting an integer"
                ) from None
        case Prim() if f.type == FLOAT:
            return parse_float(f.name, text)
        case Prim() if f.type == BOOL:
            return is_true(text)
        case _:
            return text
