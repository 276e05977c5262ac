"""xe's output forms: records of `name ( RW): value` lines, `--minimal`, and errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ShownField",
    "format_error",
    "format_failure",
    "format_map",
    "format_minimal",
    "format_record",
    "format_set",
]


@dataclass(frozen=True, kw_only=True)
class ShownField:
    """One line of a record: xe's field name, its qualifier (RO, RW, MRO, MRW, SRO, SRW), value."""

    name: str
    qualifier: str
    value: str


def format_set(values: Sequence[str]) -> str:
    return "; ".join(values)


def format_map(values: Mapping[str, str]) -> str:
    return "; ".join(f"{key}: {value}" for key, value in values.items())


def format_record(fields: Sequence[ShownField]) -> str:
    """A record as xe prints it: labels aligned on the colon, the first left-justified,
    the others right-justified, then two blank lines."""
    if not fields:
        return ""
    labels = [f"{shown.name} ({shown.qualifier:>3})" for shown in fields]
    width = max(len(label) for label in labels)
    lines = [
        f"{label.ljust(width) if index == 0 else label.rjust(width)}: {shown.value}"
        for index, (label, shown) in enumerate(zip(labels, fields, strict=True))
    ]
    return "\n".join(lines) + "\n\n\n"


def format_minimal(values: Sequence[str]) -> str:
    """`--minimal`: the values alone, comma-separated on one line."""
    return ",".join(values) + "\n"


def format_error(code: str, params: Sequence[str]) -> str:
    """A XenAPI failure as xe reports it."""
    return f"Error code: {code}\nError parameters: {', '.join(params)}\n"


def format_failure(details: Sequence[object], describe: Callable[[str], str] = str) -> str:
    """A XenAPI failure's ErrorDescription as xe reports it; `describe` shows each param
    (xe shows an object reference as the object's uuid and name)."""
    code, *params = [str(d) for d in details] or ["INTERNAL_ERROR"]
    return format_error(code, [describe(p) for p in params])
