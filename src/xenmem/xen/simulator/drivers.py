"""Simulated balloon drivers: how far a guest moves its allocation in one tick (squeezer.md §7).

Every quantity is KiB in the guest's own view (`totpages − memory-offset`), rates are KiB/s.
A driver only says how it *wants* to move; the host then enforces maxmem and free memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Cap",
    "Driver",
    "Floor",
    "Greedy",
    "Ideal",
    "Intermittent",
    "Motion",
    "NoDriver",
    "Stuck",
    "base_delta",
]


@dataclass(frozen=True, kw_only=True)
class Motion:
    """What a driver sees during the tick from `start_s` to `end_s`."""

    start_s: float
    end_s: float
    actual_kib: int
    target_kib: int
    inaccuracy_kib: int


def base_delta(motion: Motion, rate_kib_s: int) -> int:
    """The reference movement rule (§7.1): toward the target, at most `trunc(dt × rate)` KiB,
    stopping `inaccuracy` KiB short of it."""
    dt = motion.end_s - motion.start_s
    # dt is a float difference of tick times, so some ticks give 0.0999… s and move 9 KiB
    # at 100 KiB/s instead of 10, exactly as the reference simulator does.
    max_change = int(dt * rate_kib_s)
    distance = abs(motion.target_kib - motion.actual_kib)
    step = min(max(0, distance - motion.inaccuracy_kib), max_change)
    return -step if motion.actual_kib > motion.target_kib else step


@dataclass(frozen=True, kw_only=True)
class Ideal:
    """A well-behaved driver moving at `rate_kib_s`."""

    rate_kib_s: int
    announces: bool = True

    def delta(self, motion: Motion) -> int:
        return base_delta(motion, self.rate_kib_s)


@dataclass(frozen=True, kw_only=True)
class Floor:
    """A hidden lower limit: the guest will not shrink below `floor_kib` (§7.3)."""

    rate_kib_s: int
    floor_kib: int
    announces: bool = True

    def delta(self, motion: Motion) -> int:
        step = base_delta(motion, self.rate_kib_s)
        if step <= 0 and motion.actual_kib + step <= self.floor_kib:
            return self.floor_kib - motion.actual_kib
        return step


@dataclass(frozen=True, kw_only=True)
class Cap:
    """A hidden upper limit: the guest will not grow to or beyond `cap_kib` (§7.3)."""

    rate_kib_s: int
    cap_kib: int
    announces: bool = True

    def delta(self, motion: Motion) -> int:
        step = base_delta(motion, self.rate_kib_s)
        return step if motion.actual_kib + step < self.cap_kib else self.cap_kib - motion.actual_kib


@dataclass(frozen=True, kw_only=True)
class Stuck:
    """Announces a balloon driver, then never moves."""

    announces: bool = True

    def delta(self, motion: Motion) -> int:
        return 0


@dataclass(frozen=True, kw_only=True)
class Intermittent:
    """Works during even-numbered windows of `interval_s`, is stuck during odd ones (§7.3)."""

    rate_kib_s: int
    interval_s: float
    announces: bool = True

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be > 0, not {self.interval_s}")

    def _working(self, time_s: float) -> bool:
        return math.floor(time_s / self.interval_s) % 2 == 0

    def delta(self, motion: Motion) -> int:
        # A tick counts only if it starts and ends inside working windows.
        working = self._working(motion.start_s) and self._working(motion.end_s)
        return base_delta(motion, self.rate_kib_s) if working else 0


@dataclass(frozen=True, kw_only=True)
class NoDriver:
    """No balloon driver (no guest tools): never announces itself, never moves."""

    announces: bool = False

    def delta(self, motion: Motion) -> int:
        return 0


@dataclass(frozen=True, kw_only=True)
class Greedy:
    """Ignores its target and grows at `rate_kib_s` until maxmem stops it."""

    rate_kib_s: int
    announces: bool = True

    def delta(self, motion: Motion) -> int:
        return int((motion.end_s - motion.start_s) * self.rate_kib_s)


Driver = Ideal | Floor | Cap | Stuck | Intermittent | NoDriver | Greedy
