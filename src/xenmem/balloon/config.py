"""The squeezer's configuration: one immutable object, squeezed's values as defaults (§3.1)."""

from __future__ import annotations

from dataclasses import dataclass

from xenmem.memory.accounting import HOST_RESERVED_KIB
from xenmem.memory.units import BYTES_PER_MIB

__all__ = ["SqueezerConfig"]


@dataclass(frozen=True, kw_only=True)
class SqueezerConfig:
    """Every constant of squeezed (squeezer.md §3.1) plus the switches the tests turn off.

    Amounts are KiB unless named `*_bytes`; times are seconds.

    - `two_phase`: issue only the freeing targets while any exist (§3.4 step 4).
    - `inaccuracy_compensation`: withhold 2 × inaccuracy per domain in `min_freeable` (§3.2).
    - `deficit_compensation`: count a domain below its dynamic_min as needing the
      difference in `min_freeable` (squeezed counts 0 and hands that memory out twice).
    - `inactive_never_grows`: the clamp of a newly inactive domain stops at its size;
      squeezed's raises one below its dynamic_min to that minimum (§3.5 step 2), growth
      that no free memory pays for.
    - `keep_owed_growth`: free memory a balloonable domain may still grow into (its
      target is above its size) is not free to hand out: the fast path and free_range's
      amount leave it; squeezed counts it, so a reservation can take memory a guest is
      still growing into.
    - `reference_ticks`: iterate every `iteration_interval_s` as squeezed does (§3.5);
      False reacts to balloon progress, sampling every `poll_interval_s` and iterating as
      soon as every active domain has hit its target or the set of active domains changes.
    """

    target_host_free_kib: int = HOST_RESERVED_KIB
    free_memory_tolerance_kib: int = 512
    domain_inaccuracy_kib: int = 4
    stuck_after_s: float = 5.0
    uncooperative_after_s: float = 20.0
    balance_interval_s: float = 10.0
    iteration_interval_s: float = 1.0
    poll_interval_s: float = 0.1
    scrub_wait_step_s: float = 0.25
    scrub_wait_threshold_kib: int = 4096
    two_phase: bool = True
    inaccuracy_compensation: bool = True
    deficit_compensation: bool = True
    inactive_never_grows: bool = True
    keep_owed_growth: bool = True
    reference_ticks: bool = False
    manage_domain_zero: bool = False
    domain_zero_dynamic_min_bytes: int = 1024 * BYTES_PER_MIB
    domain_zero_dynamic_max_bytes: int | None = None
    boot_free_samples: int = 10
    boot_free_interval_s: float = 1.0
    boot_free_tolerance_bytes: int = BYTES_PER_MIB

    def __post_init__(self) -> None:
        positive = (
            self.stuck_after_s,
            self.iteration_interval_s,
            self.poll_interval_s,
            self.balance_interval_s,
            self.scrub_wait_step_s,
            self.boot_free_interval_s,
        )
        if min(positive) <= 0 or self.boot_free_samples < 1:
            raise ValueError("squeezer intervals and sample counts must be positive")
