"""A simulated guest's balloon behaviour, from its VM's other_config.

`xenmem_balloon` = `ideal` (default) | `ideal:RATE` | `floor:SIZE` | `cap:SIZE` | `stuck` |
`intermittent:SECONDS` | `none` | `greedy` (RATE per second and SIZE with xe's suffixes), and
`xenmem_boot_seconds` = the delay before the driver announces itself. Rates default to
1 GiB/s and the boot delay to 20 s (simulator-defaults.md: a Linux guest agent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from xenmem.memory.units import SizeParseError, kib_of_bytes_free, parse_size
from xenmem.xen.port import BALLOON_KEY, BOOT_SECONDS_KEY, GuestConfigError
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
from xenmem.xen.simulator.host import Guest

__all__ = ["DEFAULT_BOOT_SECONDS", "guest_of"]

DEFAULT_RATE_KIB_S = 1024 * 1024
DEFAULT_BOOT_SECONDS = 20.0


def _size_kib(key: str, untrusted_value: str, text: str) -> int:
    try:
        return kib_of_bytes_free(parse_size(text))
    except SizeParseError:
        raise GuestConfigError(key, untrusted_value) from None


def _positive_seconds(key: str, untrusted_value: str, text: str, *, allow_zero: bool) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    low_ok = seconds >= 0 if allow_zero else seconds > 0
    if not (math.isfinite(seconds) and low_ok):
        raise GuestConfigError(key, untrusted_value)
    return seconds


def _driver(untrusted_value: str) -> Driver:
    kind, _, argument = untrusted_value.partition(":")
    kind = kind.strip()
    has_argument = bool(argument.strip())

    def size() -> int:
        return _size_kib(BALLOON_KEY, untrusted_value, argument)

    match kind, has_argument:
        case "ideal", False:
            return Ideal(rate_kib_s=DEFAULT_RATE_KIB_S)
        case "ideal", True:
            return Ideal(rate_kib_s=size())
        case "floor", True:
            return Floor(rate_kib_s=DEFAULT_RATE_KIB_S, floor_kib=size())
        case "cap", True:
            return Cap(rate_kib_s=DEFAULT_RATE_KIB_S, cap_kib=size())
        case "stuck", False:
            return Stuck()
        case "intermittent", True:
            interval = _positive_seconds(BALLOON_KEY, untrusted_value, argument, allow_zero=False)
            return Intermittent(rate_kib_s=DEFAULT_RATE_KIB_S, interval_s=interval)
        case "none", False:
            return NoDriver()
        case "greedy", False:
            return Greedy(rate_kib_s=DEFAULT_RATE_KIB_S)
    raise GuestConfigError(BALLOON_KEY, untrusted_value)


def guest_of(other_config: Mapping[str, str]) -> Guest:
    """The simulated guest a VM with this other_config runs; raises `GuestConfigError`."""
    driver = _driver(other_config.get(BALLOON_KEY, "ideal"))
    untrusted_boot = other_config.get(BOOT_SECONDS_KEY)
    boot_seconds = (
        DEFAULT_BOOT_SECONDS
        if untrusted_boot is None
        else _positive_seconds(BOOT_SECONDS_KEY, untrusted_boot, untrusted_boot, allow_zero=True)
    )
    return Guest(driver=driver, boot_delay_s=boot_seconds)
