"""A domain below its dynamic_min: the targets must not hand out more than is free."""

from hypothesis import given
from hypothesis import strategies as st

from xenmem.balloon.core import fund_growth
from xenmem.balloon.policy import Domain, compute_target_adjustments, min_freeable


def domain(domid: int, *, actual: int, dmin: int, dmax: int) -> Domain:
    return Domain(
        domid=domid,
        can_balloon=True,
        dynamic_min_kib=dmin,
        target_kib=actual,
        dynamic_max_kib=dmax,
        actual_kib=actual,
        maxmem_kib=dmax,
    )


RAISED = domain(1, actual=262144, dmin=524288, dmax=5242880)


def test_a_domain_below_its_minimum_needs_the_difference() -> None:
    assert min_freeable(RAISED) == -262144
    assert min_freeable(RAISED, count_deficit=False) == 0


def test_growth_stays_within_free_memory_with_the_compensation() -> None:
    free, reserve = 4413440, 73728
    ((_, target),) = compute_target_adjustments((RAISED,), free, reserve)
    assert target - RAISED.actual_kib <= free - reserve
    # squeezed's rule asks the domain to grow by 256 MiB more than there is.
    ((_, squeezed),) = compute_target_adjustments((RAISED,), free, reserve, count_deficit=False)
    assert squeezed - RAISED.actual_kib == free - reserve + 262144


@given(
    st.lists(
        st.tuples(st.integers(0, 2**22), st.integers(0, 2**22), st.integers(0, 2**22)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 2**24),
    st.integers(0, 2**17),
)
def test_net_growth_never_exceeds_free_above_the_target(
    shapes: list[tuple[int, int, int]], free: int, host_target: int
) -> None:
    """Whenever there is a surplus at all, Σ (target − actual) ≤ F − H."""
    domains = []
    for domid, (actual, a, b) in enumerate(shapes):
        dmin, dmax = sorted((a, b))
        domains.append(domain(domid, actual=actual, dmin=dmin, dmax=dmax))
    if free + sum(min_freeable(d) for d in domains) < host_target:
        return  # dynamic_mins too high: squeezed reports that it cannot free enough
    targets = compute_target_adjustments(domains, free, host_target)
    assert sum(t - d.actual_kib for d, t in targets) <= free - host_target


def test_growth_is_issued_only_as_far_as_free_memory_pays() -> None:
    raised = domain(1, actual=262144, dmin=524288, dmax=5242880)
    growing = domain(2, actual=100_000, dmin=50_000, dmax=300_000)
    shrinking = domain(3, actual=400_000, dmin=100_000, dmax=400_000)
    issued = ((raised, 524288), (growing, 200_000), (shrinking, 300_000))
    # 300000 KiB of budget: the raised domain takes 262144, the next one the rest.
    assert fund_growth(issued, 300_000) == (
        (raised, 524288),
        (growing, 100_000 + 300_000 - 262144),
        (shrinking, 300_000),
    )
    # No budget: nobody grows; shrinking targets are left alone.
    assert fund_growth(issued, -5) == ((raised, 262144), (growing, 100_000), (shrinking, 300_000))
    # Enough for everyone: the targets are unchanged.
    assert fund_growth(issued, 10**9) == issued
