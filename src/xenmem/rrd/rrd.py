"""Round-robin databases as xcp-rrdd keeps them (xapi-rrd's rrd.ml), for gauges.

A data source's readings become one primary data point (PDP) per 5-s step, and each
archive consolidates `pdps_per_row` PDPs into one row of its ring with its function
(AVERAGE, MIN, MAX). The arithmetic is rrd.ml's to the last quirk, so that a client sees
the numbers a XenServer host would show:

- A gauge's PDP is the reading of the first update after the step boundary, as given
  (rrd.ml since CA-404597): there is no interpolation across the step.
- An unknown reading (NaN) within the heartbeat (300 s) leaves the last known value as
  the PDP of that step and 0.0 for the steps after it, as rrd.ml does; a gap longer than
  the heartbeat makes every PDP of the gap unknown.
- A reading outside the source's [minimum, maximum] makes an unknown PDP.
- An archive's row is unknown when more than `xff` of its PDPs were, counted as rrd.ml
  counts them: the unknown PDPs that would leave a row with none known are not counted,
  so a fully unknown row holds the consolidation's starting value. The 5-s archive thus
  writes 0.0, not NaN, for an unknown step; only the further steps of a gap spanning
  several are NaN. The average is renormalised over the known PDPs the way rrd.ml does
  (not a plain mean when unknown PDPs come last).
- Rings hold float32, as rrd.ml's Bigarray rings do: a value reads back rounded to
  24 bits of mantissa; one outside the source's range is stored as NaN.

Time is seconds since the epoch as a float; step boundaries are whole multiples of the
step. The structures are mutable: an RRD is a set of fixed rings updated in place every
5 s, which copying would only slow down.

Only gauges are kept: every data source xenmem records is one.
"""

from __future__ import annotations

import enum
import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "HEARTBEAT_S",
    "STEP_S",
    "Archive",
    "ArchiveSpec",
    "Cf",
    "Consolidation",
    "DataSource",
    "InvalidDataSourceError",
    "NoArchiveAvailableError",
    "Ring",
    "Rrd",
    "SourceSpec",
    "add_source",
    "copy",
    "create",
    "find_best_archives",
    "query",
    "step_start",
    "update",
]

STEP_S = 5
"""Seconds per PDP (xcp-rrdd's timeslice)."""
HEARTBEAT_S = 300.0
"""A reading later than this after the previous one leaves the steps between unknown."""

NAN = math.nan


class NoArchiveAvailableError(Exception):
    """No archive answers the question (a consolidation function the RRD does not keep,
    an interval longer than any archive's, or nothing to export)."""


class InvalidDataSourceError(Exception):
    """The RRD has no data source of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Cf(enum.StrEnum):
    """Consolidation functions; xcp-rrdd creates no LAST archive, but a client may ask."""

    AVERAGE = "AVERAGE"
    MIN = "MIN"
    MAX = "MAX"
    LAST = "LAST"


def _ocaml_min(a: float, b: float) -> float:
    """OCaml's `min` on floats: `a` unless `b` is strictly smaller (NaN handling differs
    from Python's)."""
    return a if a <= b else b


def _ocaml_max(a: float, b: float) -> float:
    return a if a >= b else b


def step_start(time: float, step: int) -> int:
    """The start of the step holding `time`: rrd.ml truncates the time toward zero, then
    divides toward zero."""
    whole = int(time)
    quotient = abs(whole) // step
    return step * (quotient if whole >= 0 else -quotient)


class Ring:
    """A fixed ring of float32 values (rrd.ml's Fring); index 0 is the newest."""

    __slots__ = ("_current", "_data", "maximum", "minimum")

    def __init__(self, size: int, minimum: float, maximum: float) -> None:
        self._data = array("f", [NAN]) * size
        self._current = size - 1
        self.minimum = minimum
        self.maximum = maximum

    @classmethod
    def restore(cls, data: array[float], current: int, minimum: float, maximum: float) -> Ring:
        if not 0 <= current < len(data):
            raise ValueError(f"ring position {current} outside a ring of {len(data)}")
        ring = cls(0, minimum, maximum)
        ring._data = data
        ring._current = current
        return ring

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def current(self) -> int:
        return self._current

    @property
    def data(self) -> array[float]:
        """The storage in slot order (not time order); see `current`."""
        return self._data

    def push(self, value: float) -> None:
        self._current = (self._current + 1) % len(self._data)
        out_of_range = value < self.minimum or value > self.maximum
        self._data[self._current] = NAN if out_of_range else value

    def peek(self, age: int) -> float:
        """The value pushed `age` pushes ago."""
        if not 0 <= age < len(self._data):
            raise IndexError(f"age {age} outside a ring of {len(self._data)}")
        return self._data[(self._current - age) % len(self._data)]

    def newest(self, count: int) -> list[float]:
        """The `count` newest values, newest first (`peek(0)`, `peek(1)`, ...)."""
        if not 0 <= count <= len(self._data):
            raise IndexError(f"{count} values asked of a ring of {len(self._data)}")
        current = self._current
        return (self._data[current::-1] + self._data[:current:-1])[:count].tolist()

    def copy(self) -> Ring:
        return Ring.restore(array("f", self._data), self._current, self.minimum, self.maximum)


@dataclass(frozen=True, kw_only=True)
class SourceSpec:
    """A gauge to record: its name and the range its values must lie in."""

    name: str
    minimum: float = -math.inf
    maximum: float = math.inf


@dataclass(kw_only=True, eq=False)
class DataSource:
    """A data source and its state within the current step (rrd.ml's `ds`)."""

    name: str
    minimum: float
    maximum: float
    value: float = 0.0
    unknown_s: float = 0.0
    last_updated: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ArchiveSpec:
    cf: Cf
    rows: int
    pdps_per_row: int
    xff: float


@dataclass(kw_only=True, eq=False)
class Consolidation:
    """The row an archive is building for one source (rrd.ml's `cdp_prep`)."""

    value: float
    unknown_pdps: int = 0


@dataclass(kw_only=True, eq=False)
class Archive:
    """One consolidation function over one timescale: a ring per data source."""

    cf: Cf
    rows: int
    pdps_per_row: int
    xff: float
    rings: list[Ring] = field(default_factory=list)
    building: list[Consolidation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Rrd:
    step: int
    last_updated: float
    sources: list[DataSource]
    archives: list[Archive]

    def index_of(self, name: str) -> int | None:
        for index, source in enumerate(self.sources):
            if source.name == name:
                return index
        return None


def copy(rrd: Rrd) -> Rrd:
    """An independent copy (to read while the original goes on being updated)."""
    return Rrd(
        step=rrd.step,
        last_updated=rrd.last_updated,
        sources=[replace(source) for source in rrd.sources],
        archives=[
            replace(
                archive,
                rings=[ring.copy() for ring in archive.rings],
                building=[replace(row) for row in archive.building],
            )
            for archive in rrd.archives
        ],
    )


def _initial(cf: Cf, source: DataSource) -> float:
    """A consolidation's starting value, kept within the source's range (CA-329043)."""
    default = {Cf.AVERAGE: 0.0, Cf.MIN: math.inf, Cf.MAX: -math.inf, Cf.LAST: NAN}[cf]
    return _ocaml_min(source.maximum, _ocaml_max(source.minimum, default))


def _consolidate(archive: Archive, pdp_count: int, pdps: Sequence[tuple[int, float]]) -> None:
    """Fold `pdp_count` copies of each source's PDP into the row being built."""
    for index, pdp in pdps:
        row = archive.building[index]
        if math.isnan(pdp):
            # The average so far assumed every PDP would be known: rescale it to the
            # PDPs that still may be.
            known_before = archive.pdps_per_row - row.unknown_pdps
            known_after = known_before - pdp_count
            if known_after > 0:
                row.value = row.value * known_before / known_after
                row.unknown_pdps += pdp_count
            continue
        match archive.cf:
            case Cf.AVERAGE:
                row.value += pdp * pdp_count / archive.pdps_per_row
            case Cf.MIN:
                row.value = _ocaml_min(row.value, pdp)
            case Cf.MAX:
                row.value = _ocaml_max(row.value, pdp)
            case Cf.LAST:
                row.value = pdp


def _archive(rrd: Rrd, first_step: int, steps: int, pdps: Sequence[tuple[int, float]]) -> None:
    """Add `steps` PDPs (the first of them closing the step that began at `first_step`)
    to every archive, pushing the rows they complete (rrd.ml's rra_update)."""
    for archive in rrd.archives:
        per_row = archive.pdps_per_row
        to_row_end = per_row - (first_step // rrd.step) % per_row
        rows_done = 0 if steps < to_row_end else (steps - to_row_end) // per_row + 1
        _consolidate(archive, min(to_row_end, steps), pdps)
        if rows_done == 0:
            continue
        allowed_unknown = int(archive.xff * per_row)
        for index, _ in pdps:
            row = archive.building[index]
            archive.rings[index].push(row.value if row.unknown_pdps <= allowed_unknown else NAN)
        # Rows made only of this update's PDP are that PDP, whatever the function.
        for _ in range(min(rows_done - 1, archive.rows)):
            for index, pdp in pdps:
                archive.rings[index].push(pdp)
        for index, _ in pdps:
            archive.building[index] = Consolidation(value=_initial(archive.cf, rrd.sources[index]))
        _consolidate(archive, (steps - to_row_end) % per_row, pdps)


def _update_batch(rrd: Rrd, timestamp: float, batch: Sequence[tuple[int, float]]) -> None:
    """rrd.ml's ds_update for gauges: `batch` is (source index, reading), NaN unknown."""
    if not batch:
        return
    previous = rrd.sources[batch[0][0]].last_updated
    interval = timestamp - previous
    if interval < 0:  # the clock went backwards
        interval = float(STEP_S)
    previous_step = step_start(previous, rrd.step)
    current_step = step_start(timestamp, rrd.step)
    current_age = timestamp - current_step
    steps = (current_step - previous_step) // rrd.step
    before, after = (interval - current_age, current_age) if steps > 0 else (interval, 0.0)
    rrd.last_updated = timestamp
    readings = []
    for index, reading in batch:
        source = rrd.sources[index]
        value = NAN if interval > HEARTBEAT_S else reading
        source.last_updated = timestamp
        if math.isnan(value):
            source.unknown_s = before
        else:
            source.value = value
        readings.append((index, value))
    if steps <= 0:
        return
    pdps = []
    for index, _ in batch:
        source = rrd.sources[index]
        raw = NAN if interval > HEARTBEAT_S else source.value
        out_of_range = raw < source.minimum or raw > source.maximum
        pdps.append((index, NAN if out_of_range else raw))
    _archive(rrd, previous_step, steps, pdps)
    for index, value in readings:
        source = rrd.sources[index]
        if math.isnan(value):
            source.value = 0.0
            source.unknown_s = after
        else:
            source.unknown_s = 0.0
            source.value = value


def update(rrd: Rrd, timestamp: float, readings: Mapping[str, float]) -> None:
    """Record one reading of the named sources (NaN: unknown), in the RRD's source order;
    names the RRD does not have are ignored."""
    batch = [
        (index, readings[source.name])
        for index, source in enumerate(rrd.sources)
        if source.name in readings
    ]
    _update_batch(rrd, timestamp, batch)


def _new_source(spec: SourceSpec) -> DataSource:
    return DataSource(name=spec.name, minimum=spec.minimum, maximum=spec.maximum)


def create(
    sources: Iterable[SourceSpec],
    archives: Iterable[ArchiveSpec],
    timestamp: float,
    step: int = STEP_S,
) -> Rrd:
    """A new RRD whose history is unknown up to `timestamp` (rrd.ml's rrd_create)."""
    dss = [_new_source(spec) for spec in sources]
    rrd = Rrd(
        step=step,
        last_updated=0.0,
        sources=dss,
        archives=[
            Archive(
                cf=spec.cf,
                rows=spec.rows,
                pdps_per_row=spec.pdps_per_row,
                xff=spec.xff,
                rings=[Ring(spec.rows, ds.minimum, ds.maximum) for ds in dss],
                building=[Consolidation(value=_initial(spec.cf, ds)) for ds in dss],
            )
            for spec in archives
        ],
    )
    _update_batch(rrd, timestamp, [(index, NAN) for index in range(len(dss))])
    return rrd


def add_source(rrd: Rrd, timestamp: float, spec: SourceSpec) -> None:
    """Append a source whose history is unknown (rrd.ml's rrd_add_ds_unsafe); the row
    each archive is building counts the PDPs before `timestamp` as unknown."""
    source = _new_source(spec)
    steps_so_far = step_start(timestamp, rrd.step) // rrd.step
    rrd.sources.append(source)
    for archive in rrd.archives:
        archive.rings.append(Ring(archive.rows, source.minimum, source.maximum))
        archive.building.append(
            Consolidation(
                value=_initial(archive.cf, source),
                unknown_pdps=steps_so_far % archive.pdps_per_row,
            )
        )


def find_best_archives(rrd: Rrd, pdp_interval: int, cf: Cf | None, start: int) -> list[Archive]:
    """The archives (of `cf`, or of every function) of the finest timescale that has at
    least `pdp_interval` PDPs per row and still holds `start`; failing that, those of the
    longest timescale (rrd.ml's find_best_rras)."""
    candidates = [a for a in rrd.archives if cf is None or a.cf == cf]
    if not candidates:
        raise NoArchiveAvailableError
    last_step = step_start(rrd.last_updated, rrd.step)

    def holds(time: int, archive: Archive) -> bool:
        oldest = last_step - rrd.step * archive.rows * archive.pdps_per_row
        return archive.pdps_per_row >= pdp_interval and time > oldest

    for archive in candidates:
        if holds(start, archive):
            return [
                a
                for a in candidates
                if (a.rows, a.pdps_per_row) == (archive.rows, archive.pdps_per_row)
            ]
    longest = candidates[-1]
    oldest_held = 1 + last_step - rrd.step * longest.rows * longest.pdps_per_row
    return [a for a in candidates if holds(oldest_held, a)]


def query(rrd: Rrd, now: float, name: str, cf: Cf) -> float:
    """The newest row of `name` in the finest `cf` archive holding `now` (rrd.ml's
    query_named_ds)."""
    index = rrd.index_of(name)
    if index is None:
        raise InvalidDataSourceError(name)
    archives = find_best_archives(rrd, 0, cf, int(now))
    if not archives:
        raise NoArchiveAvailableError
    return archives[0].rings[index].peek(0)
