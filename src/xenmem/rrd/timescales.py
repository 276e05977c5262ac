"""xcp-rrdd's archives: four timescales, AVERAGE only or AVERAGE, MIN and MAX."""

from __future__ import annotations

from xenmem.rrd.rrd import ArchiveSpec, Cf

__all__ = ["TIMESCALES", "archives"]

TIMESCALES = ((120, 1), (120, 12), (168, 720), (366, 17280))
"""(rows, PDPs per row): 5 s for 10 minutes, 1 minute for 2 hours, 1 hour for a week,
1 day for a year."""


def archives(min_max: bool) -> list[ArchiveSpec]:
    """The archives of a new RRD, finest first (xcp-rrdd's create_rras): a timescale of
    more than one PDP per row gets MIN and MAX beside AVERAGE when `min_max`, with an
    xff of 1.0; every other timescale AVERAGE alone, with an xff of 0.5."""
    specs = []
    for rows, pdps in TIMESCALES:
        if pdps > 1 and min_max:
            specs += [
                ArchiveSpec(cf=cf, rows=rows, pdps_per_row=pdps, xff=1.0)
                for cf in (Cf.AVERAGE, Cf.MIN, Cf.MAX)
            ]
        else:
            specs.append(ArchiveSpec(cf=Cf.AVERAGE, rows=rows, pdps_per_row=pdps, xff=0.5))
    return specs
