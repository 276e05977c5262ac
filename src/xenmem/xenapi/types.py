"""The datamodel's value types and how untrusted wire values are decoded into them.

Internal values are plain Python: str (string, uuid, ref, enum), int (int64), float,
bool, datetime (UTC), list (set), dict (map, record). Decoding is lenient the way xapi
and its clients need (protocol §2.1): an int64 may come as an integer or a decimal string
(XO and the Python SDK send big ones as strings), a float as a double, an integer or a
numeric string. Anything else is `INTERNAL_ERROR [text]`, xapi's answer to an argument it
cannot unmarshal (§5).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from xenmem.errors import INTERNAL_ERROR, XenAPIError

__all__ = [
    "BOOL",
    "DATETIME",
    "EPOCH",
    "FLOAT",
    "INT",
    "STRING",
    "AnyValue",
    "ApiType",
    "Enum",
    "Map",
    "Prim",
    "RecordOf",
    "Ref",
    "Set",
    "decode",
    "format_datetime",
    "parse_datetime",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECIMAL = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Prim:
    """string, int (int64), float, bool or datetime."""

    name: str

    def __str__(self) -> str:
        return self.name


STRING = Prim("string")
INT = Prim("int")
FLOAT = Prim("float")
BOOL = Prim("bool")
DATETIME = Prim("datetime")


@dataclass(frozen=True)
class Ref:
    cls: str

    def __str__(self) -> str:
        return f"{self.cls} ref"


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"enum {self.name}"


@dataclass(frozen=True)
class Set:
    item: ApiType

    def __str__(self) -> str:
        return f"{self.item} set"


@dataclass(frozen=True)
class Map:
    key: ApiType
    value: ApiType

    def __str__(self) -> str:
        return f"({self.key} -> {self.value}) map"


@dataclass(frozen=True)
class RecordOf:
    """A record of a class, as VM.create's argument; decoded by the datamodel."""

    cls: str

    def __str__(self) -> str:
        return f"{self.cls} record"


@dataclass(frozen=True)
class AnyValue:
    """A custom-marshalled result (event.from's batch); never decoded from the wire."""

    name: str

    def __str__(self) -> str:
        return self.name


ApiType = Prim | Ref | Enum | Set | Map | RecordOf | AnyValue

# How a record argument is decoded: given by the datamodel, which knows the fields.
RecordDecoder = Callable[[str, Mapping[str, object]], dict[str, object]]


def _fail(what: str, expected: str, value: object) -> XenAPIError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return INTERNAL_ERROR(f"{what}: expected {expected}, got {shown}")


def format_datetime(value: datetime) -> str:
    """xapi's compact form `YYYYMMDDTHH:MM:SSZ` (protocol §2.3)."""
    return value.astimezone(UTC).strftime("%Y%m%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime | None:
    """The compact form, or dashed RFC 3339; no zone means UTC (protocol §2.3)."""
    for pattern in ("%Y%m%dT%H:%M:%SZ", "%Y%m%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _decode_int(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _fail(what, "an int64", value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise _fail(what, "an int64", value)
    return number


def _decode_float(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise _fail(what, "a float", value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _fail(what, "a float", value) from None
    else:
        raise _fail(what, "a float", value)
    if not math.isfinite(number):
        raise _fail(what, "a finite float", value)
    return number


def _decode_prim(prim: Prim, value: object, what: str) -> object:
    if prim is INT:
        return _decode_int(value, what)
    if prim is FLOAT:
        return _decode_float(value, what)
    if prim is BOOL:
        if isinstance(value, bool):
            return value
        raise _fail(what, "a bool", value)
    if prim is DATETIME:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise _fail(what, "a datetime", value)
        return parsed
    if isinstance(value, str):
        return value
    raise _fail(what, "a string", value)


def decode(t: ApiType, value: object, what: str, records: RecordDecoder) -> object:
    """`value` from the wire as type `t`, or INTERNAL_ERROR naming `what`."""
    match t:
        case Prim():
            return _decode_prim(t, value, what)
        case Ref():
            if isinstance(value, str):
                return value
            raise _fail(what, str(t), value)
        case Enum(values=values):
            # xapi matches enum values case-insensitively (its generated unmarshaller).
            if isinstance(value, str):
                for candidate in values:
                    if candidate.lower() == value.lower():
                        return candidate
            raise _fail(what, f"one of {', '.join(values)}", value)
        case Set(item=item):
            if not isinstance(value, list):
                raise _fail(what, str(t), value)
            return [decode(item, v, what, records) for v in value]
        case Map(key=key, value=value_type):
            if not isinstance(value, dict):
                raise _fail(what, str(t), value)
            return {
                str(decode(key, k, what, records)): decode(value_type, v, what, records)
                for k, v in value.items()
            }
        case RecordOf(cls=cls):
            if not isinstance(value, dict):
                raise _fail(what, str(t), value)
            return records(cls, value)
        case AnyValue():
            raise _fail(what, "nothing", value)
