"""The RRD core against rrd.ml's arithmetic, worked out by hand step by step."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenmem.rrd import (
    Cf,
    InvalidDataSourceError,
    NoArchiveAvailableError,
    Rrd,
    SourceSpec,
    add_source,
    archives,
    copy,
    create,
    find_best_archives,
    query,
    select,
    to_json,
    to_xml,
    update,
)
from xenmem.rrd.persist import RrdFormatError, dump, load
from xenmem.rrd.updates import format_value

T0 = 1_699_999_980  # a whole minute
GAUGE = SourceSpec(name="g", minimum=0.0)


def float32(value: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def fed(
    values: list[float], *, min_max: bool = True, sources: tuple[SourceSpec, ...] = (GAUGE,)
) -> Rrd:
    """An RRD created at T0 + 1 and given `values[k-1]` at T0 + 1 + 5k (one per step)."""
    rrd = create(sources, archives(min_max), T0 + 1)
    for k, value in enumerate(values, start=1):
        update(rrd, T0 + 1 + 5 * k, {s.name: value for s in sources})
    return rrd


def column(
    rrd: Rrd, start: int, interval: int, cf: Cf | None = None
) -> list[tuple[int, list[float]]]:
    updates = select([("x:", rrd)], start, interval, cf)
    return [(row.time, list(row.values)) for row in updates.rows]


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def test_a_new_rrd_knows_nothing_and_a_gauge_step_holds_the_reading_after_it() -> None:
    rrd = create([GAUGE], archives(True), T0 + 1)
    assert all(
        math.isnan(ring.peek(age))
        for a in rrd.archives
        for ring in a.rings
        for age in range(a.rows)
    )
    update(rrd, T0 + 6, {"g": 10.0})
    rows = column(rrd, T0, 5)
    assert [t for t, _ in rows] == [T0 + 5, T0]
    assert rows[0][1] == [10.0]
    assert math.isnan(rows[1][1][0])


def test_a_minute_row_consolidates_twelve_steps_with_each_function() -> None:
    rrd = fed([float(k) for k in range(1, 13)])
    updates = select([("host:u:", rrd)], T0, 60, None)
    assert updates.legend == ("AVERAGE:host:u:g", "MIN:host:u:g", "MAX:host:u:g")
    assert updates.step == 60
    assert updates.end == T0 + 60
    assert updates.start == T0 + 60  # the first whole row after `start`
    assert updates.rows[0].time == T0 + 60
    assert list(updates.rows[0].values) == [6.5, 1.0, 12.0]
    assert all(math.isnan(v) for v in updates.rows[1].values)


def test_without_min_max_only_average_archives_exist() -> None:
    rrd = fed([float(k) for k in range(1, 13)], min_max=False)
    assert select([("vm:v:", rrd)], T0, 60, None).legend == ("AVERAGE:vm:v:g",)
    with pytest.raises(NoArchiveAvailableError):
        select([("vm:v:", rrd)], T0, 60, Cf.MIN)
    with pytest.raises(NoArchiveAvailableError):
        select([("vm:v:", rrd)], T0, 5, Cf.LAST)


def test_an_unknown_reading_repeats_the_last_value_once_then_reads_zero() -> None:
    # rrd.ml since CA-404597: a gauge's PDP is its stored value, which an unknown reading
    # leaves in place for that step and resets to 0.0 afterwards.
    rrd = fed([5.0, math.nan, math.nan, 7.0])
    assert [v[0] for _, v in column(rrd, T0 + 5, 5)] == [7.0, 0.0, 5.0, 5.0]


def test_a_gap_past_the_heartbeat_is_unknown_but_for_its_first_step() -> None:
    rrd = fed([5.0])
    update(rrd, T0 + 406, {"g": 9.0})
    update(rrd, T0 + 411, {"g": 9.0})
    rows = dict(column(rrd, T0 + 5, 5))
    assert rows[T0 + 410] == [9.0]
    assert all(math.isnan(rows[t][0]) for t in range(T0 + 15, T0 + 410, 5))
    assert rows[T0 + 10] == [0.0]  # the row being built, never given a known PDP
    assert rows[T0 + 5] == [5.0]


def test_values_are_kept_as_float32_and_an_out_of_range_one_is_unknown() -> None:
    values = [v[0] for _, v in column(fed([0.1, 60_123_457.0, -1.0]), T0 + 5, 5)]
    # -1 is below the source's minimum: an unknown PDP, which the 5-s archive's row
    # (one PDP, never counted unknown) holds as AVERAGE's starting value.
    assert values[0] == 0.0
    assert values[1] == 60_123_456.0
    assert values[2] == float32(0.1) == 0.10000000149011612
    assert format_value(values[2]) == "0.100000001490116"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (math.nan, "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (67108864.0, "67108864"),
        (1.5e20, "1.5e+20"),
        (0.25, "0.25"),
    ],
)
def test_values_are_written_as_rrd_ml_writes_them(value: float, text: str) -> None:
    assert format_value(value) == text


HOUR = 3600


@pytest.mark.parametrize(
    ("age", "interval", "shape"),
    [
        (595, 5, (120, 1)),  # XO's 5-s query
        (100, 0, (120, 1)),  # the finest that holds start
        (100, 10, (120, 12)),  # two PDPs per row skip the 5-s archive
        (7000, 60, (120, 12)),
        (8000, 60, (168, 720)),  # past two hours
        (10 * 365 * 86400, 0, (366, 17280)),  # older than any: the longest
    ],
)
def test_the_archive_is_the_finest_fitting_the_interval_and_holding_start(
    age: int, interval: int, shape: tuple[int, int]
) -> None:
    rrd = fed([1.0] * 3)
    last = int(rrd.last_updated)
    found = find_best_archives(rrd, interval // 5, None, last - age)
    assert {(a.rows, a.pdps_per_row) for a in found} == {shape}
    cfs = [a.cf for a in found]
    assert cfs == ([Cf.AVERAGE] if shape == (120, 1) else [Cf.AVERAGE, Cf.MIN, Cf.MAX])


def test_an_interval_longer_than_any_archive_exports_nothing() -> None:
    rrd = fed([1.0])
    assert find_best_archives(rrd, 2 * 86400 // 5, None, T0) == []
    with pytest.raises(NoArchiveAvailableError):
        select([("x:", rrd)], T0, 2 * 86400, None)
    with pytest.raises(NoArchiveAvailableError):
        select([], T0, 5, None)


def test_a_negative_start_counts_back_from_the_last_update() -> None:
    rrd = fed([1.0, 2.0, 3.0])  # last update T0 + 16
    assert [t for t, _ in column(rrd, -10, 5)] == [T0 + 15, T0 + 10]


def test_other_rrds_follow_the_first_ones_timescale() -> None:
    host, vm = fed([1.0] * 12), fed([2.0] * 12, min_max=False, sources=(SourceSpec(name="m"),))
    updates = select([("host:h:", host), ("vm:v:", vm)], T0, 60, None)
    assert updates.legend == ("AVERAGE:host:h:g", "MIN:host:h:g", "MAX:host:h:g", "AVERAGE:vm:v:m")
    assert list(updates.rows[0].values) == [1.0, 1.0, 1.0, 2.0]
    # A second RRD without the asked function fails the whole export, as in xcp-rrdd.
    with pytest.raises(NoArchiveAvailableError):
        select([("host:h:", host), ("vm:v:", vm)], T0, 60, Cf.MAX)


def test_query_reads_the_newest_five_second_average() -> None:
    rrd = fed([3.0, 4.0])
    assert query(rrd, T0 + 12, "g", Cf.AVERAGE) == 4.0
    with pytest.raises(InvalidDataSourceError):
        query(rrd, T0 + 12, "nope", Cf.AVERAGE)


def test_a_source_added_later_comes_last_with_no_history() -> None:
    rrd = fed([1.0, 2.0])
    add_source(rrd, T0 + 13, SourceSpec(name="a", minimum=0.0))
    update(rrd, T0 + 16, {"g": 3.0, "a": 30.0})
    updates = select([("x:", rrd)], T0 + 5, 5, None)
    assert updates.legend == ("AVERAGE:x:g", "AVERAGE:x:a")
    assert list(updates.rows[0].values) == [3.0, 30.0]
    assert same(list(updates.rows[1].values), [2.0, math.nan])


def test_xml_and_json_exports_are_byte_exact() -> None:
    rrd = fed([1.5, 2.0])
    updates = select([("host:u:", rrd)], T0 + 5, 5, Cf.AVERAGE)
    assert to_xml(updates) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<xport><meta><start>1699999990</start>'
        b"<step>5</step><end>1699999990</end><rows>2</rows><columns>1</columns><legend>"
        b"<entry>AVERAGE:host:u:g</entry></legend></meta><data>"
        b"<row><t>1699999990</t><v>2</v></row><row><t>1699999985</t><v>1.5</v></row>"
        b"</data></xport>"
    )
    assert json.loads(to_json(updates)) == {
        "meta": {
            "start": T0 + 10,
            "step": 5,
            "end": T0 + 10,
            "rows": 2,
            "columns": 1,
            "legend": ["AVERAGE:host:u:g"],
        },
        "data": [{"t": T0 + 10, "values": ["2"]}, {"t": T0 + 5, "values": ["1.5"]}],
    }
    assert to_json(updates).startswith(b'{"meta":{"start":1699999990,"step":5,')


def test_a_kept_rrd_goes_on_exactly_as_the_original() -> None:
    original = fed([float(k) for k in range(1, 20)])
    restored = load(json.loads(json.dumps(dump(original))))
    for rrd in (original, restored):
        for k in range(20, 40):
            update(rrd, T0 + 1 + 5 * k, {"g": k * 1.25 if k % 7 else math.nan})
    for interval in (5, 60):
        assert same(
            [v for _, row in column(original, T0, interval) for v in row],
            [v for _, row in column(restored, T0, interval) for v in row],
        )


@pytest.mark.parametrize(
    "damage",
    [
        lambda kept: kept.pop("sources"),
        lambda kept: kept["archives"][0]["rings"][0].__setitem__(0, "!!"),
        lambda kept: kept["archives"][0].__setitem__("rows", 7),
        lambda kept: kept["archives"][0].__setitem__("pdps_per_row", 0),
        lambda kept: kept["archives"][0]["rings"][0].__setitem__(1, 500),
        lambda kept: kept.__setitem__("step", "five"),
    ],
)
def test_a_damaged_kept_rrd_is_refused(damage: Callable[[Any], object]) -> None:
    kept = json.loads(json.dumps(dump(fed([1.0]))))
    damage(kept)
    with pytest.raises(RrdFormatError):
        load(kept)


@given(st.floats(min_value=0.0, max_value=1e30, allow_nan=False), st.integers(1, 4))
def test_a_constant_reading_is_every_archives_value(value: float, extra: int) -> None:
    rrd = fed([value] * (12 * extra))
    for interval in (5, 60):
        for _, row in column(rrd, int(rrd.last_updated) - 30, interval):
            assert row == [float32(value)] * len(row)


@given(st.lists(st.floats(min_value=0.0, max_value=1e9, allow_nan=False), min_size=12, max_size=12))
def test_a_minute_row_is_the_mean_min_and_max_of_its_steps(values: list[float]) -> None:
    average, low, high = column(fed(values), T0 + 60, 60)[0][1]
    assert low == float32(min(values))
    assert high == float32(max(values))
    assert average == pytest.approx(sum(values) / 12, rel=1e-6, abs=1e-30)


def test_a_copy_does_not_move_with_the_original() -> None:
    original = fed([1.0, 2.0])
    copied = copy(original)
    update(original, T0 + 16, {"g": 3.0})
    assert [v[0] for _, v in column(copied, T0 + 5, 5)] == [2.0, 1.0]
    assert [v[0] for _, v in column(original, T0 + 5, 5)] == [3.0, 2.0, 1.0]
