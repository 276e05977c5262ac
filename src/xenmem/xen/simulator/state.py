"""A simulated host's state as plain JSON-able data, so that the host outlives its toolstack.

Guests keep running when the toolstack dies: the server writes each host's state beside
its database and a restart resumes the host where it was. Only the simulator's own facts
are kept (domains, guests, the key tree, free and scrub counters, the tick); faults are
diagnostics of one run and are not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

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

__all__ = ["driver_from_data", "driver_to_data", "guest_fields"]

_DRIVERS: dict[str, type[Driver]] = {
    cls.__name__: cls for cls in (Ideal, Floor, Cap, Stuck, Intermittent, NoDriver, Greedy)
}


def driver_to_data(driver: Driver) -> dict[str, Any]:
    return {"kind": type(driver).__name__, **dataclasses.asdict(driver)}


def driver_from_data(data: Mapping[str, Any]) -> Driver:
    fields = dict(data)
    cls = _DRIVERS[str(fields.pop("kind"))]
    return cls(**fields)


def guest_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """A Guest's constructor arguments from its stored form."""
    fields = dict(data)
    fields["driver"] = driver_from_data(fields["driver"])
    return fields
