"""RRDs to and from JSON-ready values, to keep them across restarts.

Rings are kept as their float32 storage (little-endian, base64) with their position, the
sources and the rows being built with their exact state, so that a restored RRD goes on
exactly as if it had never stopped.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from typing import Any

from xenmem.rrd.rrd import Archive, Cf, Consolidation, DataSource, Ring, Rrd

__all__ = ["RrdFormatError", "dump", "load"]


class RrdFormatError(ValueError):
    """A kept RRD that cannot be read back."""


def _ring_bytes(ring: Ring) -> str:
    data = array("f", ring.data)
    if sys.byteorder == "big":
        data.byteswap()
    return base64.b64encode(data.tobytes()).decode("ascii")


def dump(rrd: Rrd) -> dict[str, Any]:
    return {
        "step": rrd.step,
        "last_updated": rrd.last_updated,
        "sources": [
            [s.name, s.minimum, s.maximum, s.value, s.unknown_s, s.last_updated]
            for s in rrd.sources
        ],
        "archives": [
            {
                "cf": a.cf.value,
                "rows": a.rows,
                "pdps_per_row": a.pdps_per_row,
                "xff": a.xff,
                "building": [[c.value, c.unknown_pdps] for c in a.building],
                "rings": [[_ring_bytes(r), r.current] for r in a.rings],
            }
            for a in rrd.archives
        ],
    }


def _ring(kept: Any, rows: int, source: DataSource) -> Ring:
    encoded, current = kept
    data = array("f")
    data.frombytes(base64.b64decode(encoded, validate=True))
    if sys.byteorder == "big":
        data.byteswap()
    if len(data) != rows:
        raise RrdFormatError(f"a ring of {len(data)} values in an archive of {rows} rows")
    return Ring.restore(data, int(current), source.minimum, source.maximum)


def _archive(kept: Any, sources: list[DataSource]) -> Archive:
    rows, per_row = int(kept["rows"]), int(kept["pdps_per_row"])
    if rows < 1 or per_row < 1:
        raise RrdFormatError(f"an archive of {rows} rows of {per_row} PDPs")
    building = [Consolidation(value=float(v), unknown_pdps=int(u)) for v, u in kept["building"]]
    rings = [_ring(r, rows, s) for r, s in zip(kept["rings"], sources, strict=True)]
    if len(building) != len(sources):
        raise RrdFormatError("an archive without a row being built for every source")
    return Archive(
        cf=Cf(kept["cf"]),
        rows=rows,
        pdps_per_row=per_row,
        xff=float(kept["xff"]),
        rings=rings,
        building=building,
    )


def load(kept: Any) -> Rrd:
    """An RRD from what `dump` returned; RrdFormatError if it is not one."""
    try:
        sources = [
            DataSource(
                name=str(name),
                minimum=float(minimum),
                maximum=float(maximum),
                value=float(value),
                unknown_s=float(unknown_s),
                last_updated=float(last_updated),
            )
            for name, minimum, maximum, value, unknown_s, last_updated in kept["sources"]
        ]
        step = int(kept["step"])
        if step < 1:
            raise RrdFormatError(f"a step of {step} s")
        return Rrd(
            step=step,
            last_updated=float(kept["last_updated"]),
            sources=sources,
            archives=[_archive(a, sources) for a in kept["archives"]],
        )
    except RrdFormatError:
        raise
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        raise RrdFormatError(f"not a kept RRD: {error}") from error
