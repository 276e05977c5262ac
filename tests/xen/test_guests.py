"""A simulated guest's behaviour from its VM's other_config (the lab's keys)."""

import pytest

from xenmem.toolstack.domains import guest_config_error
from xenmem.xen import GuestConfigError
from xenmem.xen.simulator import (
    Cap,
    Driver,
    Floor,
    Greedy,
    Guest,
    Ideal,
    Intermittent,
    NoDriver,
    Stuck,
    guest_of,
)

GIB_KIB = 1024 * 1024


@pytest.mark.parametrize(
    ("balloon", "driver"),
    [
        ("ideal", Ideal(rate_kib_s=GIB_KIB)),
        ("ideal:256MiB", Ideal(rate_kib_s=256 * 1024)),
        ("floor:1GiB", Floor(rate_kib_s=GIB_KIB, floor_kib=GIB_KIB)),
        ("cap:3g", Cap(rate_kib_s=GIB_KIB, cap_kib=3 * GIB_KIB)),
        ("stuck", Stuck()),
        ("intermittent:7.5", Intermittent(rate_kib_s=GIB_KIB, interval_s=7.5)),
        ("none", NoDriver()),
        ("greedy", Greedy(rate_kib_s=GIB_KIB)),
    ],
)
def test_balloon_behaviours(balloon: str, driver: Driver) -> None:
    assert guest_of({"xenmem_balloon": balloon}) == Guest(driver=driver, boot_delay_s=20.0)


def test_defaults_and_boot_delay() -> None:
    assert guest_of({}) == Guest(driver=Ideal(rate_kib_s=GIB_KIB), boot_delay_s=20.0)
    assert guest_of({"xenmem_boot_seconds": "0"}).boot_delay_s == 0.0
    assert guest_of({"xenmem_boot_seconds": "2.5"}).boot_delay_s == 2.5


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("xenmem_balloon", "floaty"),
        ("xenmem_balloon", "floor"),
        ("xenmem_balloon", "floor:-1"),
        ("xenmem_balloon", "stuck:5"),
        ("xenmem_balloon", "ideal:fast"),
        ("xenmem_balloon", "intermittent:0"),
        ("xenmem_balloon", "intermittent:nan"),
        ("xenmem_boot_seconds", "-1"),
        ("xenmem_boot_seconds", "inf"),
        ("xenmem_boot_seconds", "soon"),
    ],
)
def test_bad_values_are_refused_and_reported_as_invalid_value(key: str, value: str) -> None:
    with pytest.raises(GuestConfigError) as caught:
        guest_of({key: value})
    error = guest_config_error(caught.value)
    assert error.description == ["INVALID_VALUE", f"other_config:{key}", value]
