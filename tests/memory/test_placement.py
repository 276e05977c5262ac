"""Host selection categories and scores (xapi-memory.md §4.6)."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from xenmem.memory import (
    Category,
    Constraints,
    GuestLimits,
    HostSummary,
    biased_index,
    score,
    select_host,
    summarize_host,
)
from xenmem.memory.placement import div_trunc

GIB = 1024**3


def summary(
    available: int, smin: int = 0, dmin: int = 0, dmax: int = 0, smax: int = 0
) -> HostSummary:
    return HostSummary(
        available_sum=available,
        static_min_sum=smin,
        dynamic_min_sum=dmin,
        dynamic_max_sum=dmax,
        static_max_sum=smax,
    )


def test_summarize_host_sums_guests_and_subtracts_overheads() -> None:
    guests = [
        GuestLimits(
            constraints=Constraints(
                static_min=1, dynamic_min=2, target=0, dynamic_max=3, static_max=4
            ),
            overhead=10,
        ),
        GuestLimits(
            constraints=Constraints(
                static_min=10, dynamic_min=20, target=0, dynamic_max=30, static_max=40
            ),
            overhead=100,
        ),
    ]
    assert summarize_host(1000, 50, guests) == summary(840, 11, 22, 33, 44)


def test_definite_and_probable_scores() -> None:
    host = summary(100, dmin=20, dmax=60, smax=90)
    assert score(Category.DEFINITE, host) == 10
    assert score(Category.PROBABLE, host) == 40


def test_possible_score_bands() -> None:
    assert score(Category.POSSIBLE, summary(100, dmin=20, dmax=100)) == 1000
    assert score(Category.POSSIBLE, summary(19, dmin=20, dmax=100)) == -1
    assert score(Category.POSSIBLE, summary(60, dmin=20, dmax=100)) == 500
    assert score(Category.POSSIBLE, summary(21, dmin=20, dmax=23)) == 333
    assert score(Category.AFFINITY, summary(60, dmin=20, dmax=100)) == 500


def test_coordinator_bias_halves_and_truncates_toward_zero() -> None:
    host = summary(100, dmax=60, smax=90)
    assert score(Category.DEFINITE, host, is_coordinator=True) == (10 - 1) // 2
    assert score(Category.PROBABLE, host, is_coordinator=True) == 19
    # v = -4: (v - 1) div 2 = -5 div 2 = -2 with truncation (floor would give -3).
    negative = summary(100, smax=104)
    assert score(Category.DEFINITE, negative, is_coordinator=True) == -2
    assert score(Category.DEFINITE, negative, is_coordinator=True, coordinator_bias=False) == -4
    # Possible is not biased.
    assert score(Category.POSSIBLE, summary(60, dmin=20, dmax=100), is_coordinator=True) == 500


@given(st.integers(-(10**30), 10**30), st.integers(-(10**9), 10**9).filter(lambda d: d != 0))
def test_div_trunc_matches_truncated_division(numerator: int, denominator: int) -> None:
    quotient = div_trunc(numerator, denominator)
    assert abs(quotient * denominator) <= abs(numerator)
    assert abs((quotient + (1 if quotient >= 0 else -1)) * denominator) > abs(numerator) or (
        numerator == 0
    )
    assert quotient == 0 or (quotient > 0) == ((numerator > 0) == (denominator > 0))


def test_biased_index_favours_the_front() -> None:
    assert biased_index(10, 0.0) == 0
    assert biased_index(10, 0.5) == 2
    assert biased_index(10, 0.999999) == 9
    assert biased_index(1, 0.99) == 0


def always_first() -> float:
    return 0.0


def test_select_prefers_the_best_definite_host() -> None:
    summaries = {"a": summary(100, smax=90), "b": summary(100, smax=50), "c": summary(100, smax=70)}
    assert (
        select_host(["a", "b", "c"], summaries, validate=lambda h: True, draw=always_first) == "b"
    )


def test_select_draws_with_the_bias() -> None:
    summaries = {"a": summary(100, smax=90), "b": summary(100, smax=50), "c": summary(100, smax=70)}
    draws = iter([0.9])
    # Sorted best first: b (50), c (30), a (10); floor(3 * 0.81) = 2 -> a.
    assert (
        select_host(["a", "b", "c"], summaries, validate=lambda h: True, draw=lambda: next(draws))
        == "a"
    )


def test_select_drops_failed_hosts_and_moves_outside_hosts_to_the_next_category() -> None:
    summaries = {
        "fits-definitely": summary(100, dmin=10, dmax=50, smax=90),
        "fits-probably": summary(100, dmin=10, dmax=50, smax=200),
    }
    tried: list[str] = []

    def validate(host: str) -> bool:
        tried.append(host)
        return host == "fits-probably"

    chosen = select_host(list(summaries), summaries, validate=validate, draw=always_first)
    assert chosen == "fits-probably"
    assert tried == ["fits-definitely", "fits-probably"]


def test_failed_host_is_not_retried_in_a_later_category() -> None:
    summaries = {"only": summary(100, dmin=10, dmax=50, smax=90)}
    tried: list[str] = []

    def validate(host: str) -> bool:
        tried.append(host)
        return False

    assert select_host(["only"], summaries, validate=validate, draw=always_first) is None
    assert tried == ["only"]


def test_possible_category_takes_hosts_that_only_fit_ballooned_down() -> None:
    summaries = {"tight": summary(100, dmin=80, dmax=150, smax=200)}
    assert select_host(["tight"], summaries, validate=lambda h: True, draw=always_first) == "tight"
    too_tight = {"tight": summary(79, dmin=80, dmax=150, smax=200)}
    assert select_host(["tight"], too_tight, validate=lambda h: True, draw=always_first) is None


def test_affinity_host_is_tried_first() -> None:
    summaries = {"best": summary(100, smax=10), "home": summary(100, dmin=10, dmax=50, smax=200)}
    assert (
        select_host(
            ["best", "home"], summaries, validate=lambda h: True, draw=always_first, affinity="home"
        )
        == "home"
    )


def test_coordinator_bias_can_move_the_choice() -> None:
    summaries = {"coordinator": summary(100, smax=40), "member": summary(100, smax=50)}
    hosts = ["coordinator", "member"]
    assert (
        select_host(
            hosts, summaries, validate=lambda h: True, draw=always_first, coordinator="coordinator"
        )
        == "member"
    )
    assert (
        select_host(
            hosts,
            summaries,
            validate=lambda h: True,
            draw=always_first,
            coordinator="coordinator",
            coordinator_bias=False,
        )
        == "coordinator"
    )


@given(
    st.lists(
        st.tuples(st.integers(0, 10 * GIB), st.integers(0, 5 * GIB), st.integers(0, 5 * GIB)),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.floats(0.0, 0.999), min_size=1),
    st.sets(st.integers(0, 7)),
)
def test_selected_host_was_inside_some_category_and_validated(
    hosts: list[tuple[int, int, int]], draws: list[float], refusing: set[int]
) -> None:
    summaries = {
        i: summary(avail, dmin=dmin, dmax=dmin + extra, smax=dmin + 2 * extra)
        for i, (avail, dmin, extra) in enumerate(hosts)
    }
    stream = itertools.cycle(draws)
    chosen = select_host(
        list(summaries), summaries, validate=lambda h: h not in refusing, draw=lambda: next(stream)
    )
    possible = [
        h for h, s in summaries.items() if h not in refusing and score(Category.POSSIBLE, s) >= 0
    ]
    if chosen is None:
        assert possible == []
    else:
        assert chosen not in refusing
        assert score(Category.POSSIBLE, summaries[chosen]) >= 0
