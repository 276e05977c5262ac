"""A simulated host's state as plain JSON-able data, so that the host outlives its toolstack.

Guests keep running when the toolstack dies: the server writes each host's state beside
its database and a restart resumes the host where it was. Only the simulator's own facts
are kept (domains, guests, the key tree, free and scrub counters, the tick); faults are
diagnostics of one run and are not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from xenmem.xen.simulator.drivers import (
    Cap,
    Driver,
    Floor,
    Greedy,
    Ideal,
    Intermittent,
    NoDriver,
    Stuck,
)

__all__ = [
    "HostDataError",
    "built",
    "count",
    "driver_from_data",
    "driver_to_data",
    "flag",
    "guest_fields",
    "seconds",
    "table",
    "text",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")

_DRIVERS: dict[str, type[Driver]] = {
    cls.__name__: cls for cls in (Ideal, Floor, Cap, Stuck, Intermittent, NoDriver, Greedy)
}


class HostDataError(ValueError):
    """Kept state that cannot be a host's: malformed, or memory that does not add up."""


def count(data: Mapping[str, Any], key: str) -> int:
    """`data[key]`, which must be an integer >= 0 (KiB, MiB, ticks, domids)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HostDataError(f"{key} is {value!r}, not an integer >= 0")
    return value


def seconds(data: Mapping[str, Any], key: str) -> float:
    """`data[key]`, which must be a finite number >= 0."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HostDataError(f"{key} is {value!r}, not a number")
    if not (math.isfinite(value) and value >= 0):
        raise HostDataError(f"{key} is {value!r}, not a finite number >= 0")
    return float(value)


def flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise HostDataError(f"{key} is {value!r}, not true or false")
    return value


def text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise HostDataError(f"{key} is {value!r}, not a string")
    return value


def table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise HostDataError(f"{key} is not an object")
    return value


# A stored guest or driver field holds the type its dataclass declares.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,)}


def built(cls: type[_T], fields: Mapping[str, Any]) -> _T:
    """`cls(**fields)` for a stored guest or driver, its fields checked against their types."""
    for field in dataclasses.fields(cls):
        if field.name not in fields:
            continue
        value = fields[field.name]
        wanted = _FIELD_TYPES.get(str(field.type))
        if wanted is None:
            continue
        is_number = not isinstance(value, bool) and isinstance(value, int | float)
        if (bool not in wanted and not is_number) or not isinstance(value, wanted):
            raise HostDataError(f"{field.name} is {value!r}, not {field.type}")
        if is_number and not math.isfinite(fields[field.name]):
            raise HostDataError(f"{field.name} is {value!r}, not finite")
    try:
        return cls(**fields)
    except (TypeError, ValueError) as error:
        raise HostDataError(f"malformed {cls.__name__} ({error})") from None


def driver_to_data(driver: Driver) -> dict[str, Any]:
    return {"kind": type(driver).__name__, **dataclasses.asdict(driver)}


def driver_from_data(data: Mapping[str, Any]) -> Driver:
    """The driver `driver_to_data` stored; HostDataError when it is not one."""
    fields = dict(data)
    cls = _DRIVERS.get(str(fields.pop("kind", None)))
    if cls is None:
        raise HostDataError(f"unknown balloon driver {data.get('kind')!r}")
    driver: Driver = built(cls, fields)
    return driver


def guest_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """A Guest's constructor arguments from its stored form (for `built`)."""
    fields = dict(data)
    fields["driver"] = driver_from_data(table(fields, "driver"))
    return fields
