"""What `/rrd_updates` answers: rows of several RRDs since a time, as XML or JSON
(xapi-rrd's rrd_updates.ml).

The archives are chosen on the first RRD (its step, its last update, the first timescale
that fits `interval` and holds `start`); the other RRDs contribute their archives of that
same timescale. Rows are newest first; the legend is `CF:<prefix><source>` per RRD, per
archive, per source. Values are written as rrd.ml writes them: `%0.15g`, `0.0` for zero,
`NaN`, `Infinity`, `-Infinity`; JSON carries them as strings (strict JSON, as xcp-rrdd
writes since it moved to Yojson).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from xenmem.rrd.rrd import Cf, NoArchiveAvailableError, Rrd, find_best_archives, step_start

__all__ = ["Row", "Updates", "format_value", "select", "to_json", "to_xml"]


@dataclass(frozen=True, kw_only=True)
class Row:
    time: int
    values: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class Updates:
    """The export: `start` is the first whole step after the asked start, `end` the last
    step boundary; `rows` newest first, one value per legend entry."""

    start: int
    step: int
    end: int
    legend: tuple[str, ...]
    rows: tuple[Row, ...]


def _divided(numerator: int, denominator: int) -> int:
    """Integer division toward zero, as OCaml's Int64.div."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def select(
    prefixed: Sequence[tuple[str, Rrd]], start: int, interval: int, cf: Cf | None
) -> Updates:
    """The rows of every RRD (each named by its legend prefix, e.g. `host:<uuid>:`) since
    `start` (negative: that many seconds before each RRD's last update), at the
    timescale `interval` asks for; NoArchiveAvailableError when there is nothing to
    export or an RRD keeps no archive of `cf`."""
    if not prefixed:
        raise NoArchiveAvailableError
    step, last_updated = prefixed[0][1].step, prefixed[0][1].last_updated
    same_step = [(prefix, rrd) for prefix, rrd in prefixed if rrd.step == step]
    pdp_interval = _divided(interval, step)
    if start < 0:
        start = min(start + int(rrd.last_updated) for _, rrd in same_step)
    chosen = [find_best_archives(rrd, pdp_interval, cf, start) for _, rrd in same_step]
    first = next((archives[0] for archives in chosen if archives), None)
    if first is None:
        raise NoArchiveAvailableError
    shape = (first.rows, first.pdps_per_row)
    chosen = [[a for a in archives if (a.rows, a.pdps_per_row) == shape] for archives in chosen]
    legend = tuple(
        f"{archive.cf}:{prefix}{source.name}"
        for (prefix, rrd), archives in zip(same_step, chosen, strict=True)
        for archive in archives
        for source in rrd.sources
    )
    rings = [ring for archives in chosen for archive in archives for ring in archive.rings]
    row_step = step * first.pdps_per_row
    end = step_start(last_updated, row_step)
    # Rows back from `end` while at or after `start`, at most a ring's worth.
    count = 0 if end < start else min(first.rows, (end - start) // row_step + 1)
    columns = [ring.newest(count) for ring in rings]
    rows = tuple(
        Row(time=end - age * row_step, values=values)
        for age, values in enumerate(zip(*columns, strict=True))
    )
    return Updates(
        start=step_start(float(start), row_step) + row_step,
        step=row_step,
        end=end,
        legend=legend,
        rows=rows,
    )


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0.0"
    return f"{value:0.15g}"


def to_xml(updates: Updates) -> bytes:
    """rrdtool's `xport` document, without whitespace between elements."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<xport><meta>',
        f"<start>{updates.start}</start><step>{updates.step}</step><end>{updates.end}</end>",
        f"<rows>{len(updates.rows)}</rows><columns>{len(updates.legend)}</columns><legend>",
        *(f"<entry>{escape(entry)}</entry>" for entry in updates.legend),
        "</legend></meta><data>",
    ]
    for row in updates.rows:
        out.append(f"<row><t>{row.time}</t>")
        out.extend(f"<v>{format_value(v)}</v>" for v in row.values)
        out.append("</row>")
    out.append("</data></xport>")
    return "".join(out).encode()


def to_json(updates: Updates) -> bytes:
    document = {
        "meta": {
            "start": updates.start,
            "step": updates.step,
            "end": updates.end,
            "rows": len(updates.rows),
            "columns": len(updates.legend),
            "legend": list(updates.legend),
        },
        "data": [
            {"t": row.time, "values": [format_value(v) for v in row.values]} for row in updates.rows
        ],
    }
    return json.dumps(document, separators=(",", ":")).encode()
