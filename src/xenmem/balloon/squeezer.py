"""The squeezer's driver: snapshots, effects and waits around the pure core (§3.5-3.10).

All entry points are coroutines reading time from the clock port. On a `VirtualClock`
they never suspend (drive them with `xenmem.xen.run_virtual`); on a `RealClock` they
are ordinary asyncio code. Callers serialise them (squeezed's one big lock, §1): see
`MemoryService`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from xenmem.balloon.config import SqueezerConfig
from xenmem.balloon.core import (
    AdjustTargets,
    Failed,
    Iteration,
    SqueezerState,
    Success,
    active_domains,
    inactive_clamp,
    one_iteration,
)
from xenmem.balloon.errors import CannotFreeThisMuchMemory, DomainsRefusedToCooperate
from xenmem.balloon.health import BalloonHealth, shortfall_kib, update_cooperation
from xenmem.balloon.policy import (
    Domain,
    compute_target_adjustments,
    has_hit_target,
    owed_growth_kib,
)
from xenmem.balloon.snapshot import DomainView, Snapshot, read_host
from xenmem.balloon.stuckness import Progress, update_progress
from xenmem.xen.clock import Clock
from xenmem.xen.port import Hypervisor, XenError, domain_path

__all__ = ["Squeezer"]

_log = logging.getLogger(__name__)

SuccessPredicate = Callable[[int], bool]


class Squeezer:
    """squeezed's algorithm bound to one host: `xen` for effects, `clock` for time."""

    def __init__(self, xen: Hypervisor, clock: Clock, config: SqueezerConfig) -> None:
        self.xen = xen
        self.clock = clock
        self.config = config
        self._last_cooperative: dict[int, float] = {}
        self._uncooperative_since: dict[int, float] = {}
        self._lifetime_progress: dict[int, Progress] = {}
        self._inactive_since: dict[int, float] = {}
        # Unlike _inactive_since (reset by every squeeze, as the algorithm needs), this
        # remembers that a squeeze found the domain stuck, with its size then (KiB), until
        # it moves again: its size changes by more than its inaccuracy.
        self._refused: dict[int, tuple[float, int]] = {}
        self._domains: dict[int, Domain] = {}

    # -- observing the host -------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """make_host (§2.3): wait for the scrubber, read, then refresh flags and maxmems."""
        while self.xen.physinfo().scrub_kib >= self.config.scrub_wait_threshold_kib:
            # Scrub pages count as free; waiting keeps a slow scrubber from looking like
            # memory that is free but cannot be had yet. Unbounded, as in squeezed.
            await self.clock.sleep(self.config.scrub_wait_step_s)
        snapshot = read_host(self.xen, self.config)
        for domid, offset in snapshot.calibrated.items():
            self.xen.xenstore.write(domain_path(domid, "memory/memory-offset"), str(offset))
        now = self.clock.now()
        self._domains = {d.domid: d for d in snapshot.host.domains}
        self._lifetime_progress = update_progress(
            self._lifetime_progress, snapshot.host, now, stuck_after_s=self.config.stuck_after_s
        )
        self._refused = {
            domid: (at, size_kib)
            for domid, (at, size_kib) in self._refused.items()
            if domid in self._domains
            and abs(self._domains[domid].actual_kib - size_kib)
            <= self._domains[domid].inaccuracy_kib
        }
        self._update_uncooperative_flags(snapshot, now)
        return replace(snapshot, views=self._lower_maxmems(snapshot))

    def _update_uncooperative_flags(self, snapshot: Snapshot, now: float) -> None:
        self._last_cooperative = update_cooperation(self._last_cooperative, snapshot.host, now)
        for domid, since in self._last_cooperative.items():
            flagged = now - since > self.config.uncooperative_after_s
            if flagged:
                self._uncooperative_since.setdefault(domid, now)
            else:
                self._uncooperative_since.pop(domid, None)
            view = snapshot.views[domid]
            if flagged != view.uncooperative_flag:
                key = domain_path(domid, "memory/uncooperative")
                if flagged:
                    self.xen.xenstore.write(key, "")
                else:
                    self.xen.xenstore.remove(key)
        for gone in self._uncooperative_since.keys() - self._last_cooperative.keys():
            del self._uncooperative_since[gone]

    def _lower_maxmems(self, snapshot: Snapshot) -> dict[int, DomainView]:
        """A balloonable domain whose target is below its maxmem gets maxmem = target (§2.3)."""
        views = dict(snapshot.views)
        for domid, view in snapshot.views.items():
            target = view.target_kib
            if view.can_balloon and target is not None and target < view.current_maxmem_target_kib:
                views[domid] = self._set_maxmem(view, target)
        return views

    # -- effects ------------------------------------------------------------------------

    def _set_maxmem(self, view: DomainView, kib: int) -> DomainView:
        try:
            self.xen.set_maxmem(view.domid, view.maxmem_for(kib))
        except XenError as error:
            _log.warning("setmaxmem of domain %d failed: %s", view.domid, error)
            return view
        return replace(view, max_kib=view.maxmem_for(kib))

    def _set_target(self, view: DomainView, kib: int) -> None:
        """execute_action (§3.8): raise maxmem before the target, lower it after; a domain
        without a balloon driver only ever has its maxmem raised. Failures are logged."""
        store = self.xen.xenstore
        if kib < 0 or store.read(domain_path(view.domid)) is None:
            return
        current = view.current_maxmem_target_kib
        if kib > current:
            view = self._set_maxmem(view, kib)
        if view.can_balloon and view.target_kib != kib:
            store.write(domain_path(view.domid, "memory/target"), str(kib))
        if view.can_balloon and kib < current:
            self._set_maxmem(view, kib)

    def _apply(self, snapshot: Snapshot, iteration: Iteration) -> None:
        """Set every domain's maxmem (§3.5 step 2). In squeezed setmaxmem and execute_action
        are one routine, so this also issues the iteration's new targets."""
        new_targets: dict[int, int] = {}
        if isinstance(iteration.decision, AdjustTargets):
            new_targets = {a.domid: a.target_kib for a in iteration.decision.actions}
        for domain in snapshot.host.domains:
            if domain.domid in iteration.declared_inactive:
                value = inactive_clamp(domain, never_grow=self.config.inactive_never_grows)
            else:
                value = new_targets.get(domain.domid, domain.target_kib)
            self._set_target(snapshot.views[domain.domid], value)

    # -- the loop -----------------------------------------------------------------------

    async def change_host_free_memory(self, required_kib: int, success: SuccessPredicate) -> None:
        """Squeeze until `success(free)` holds with every active domain on a stable target.

        Raises CannotFreeThisMuchMemory(required, free) or DomainsRefusedToCooperate.
        """
        first = await self.snapshot()
        balloonable = [d for d in first.host.domains if d.can_balloon]
        if (
            required_kib != self.config.target_host_free_kib
            and required_kib <= self._unowed_free_kib(first)
            and all(has_hit_target(d) for d in balloonable)
        ):
            return  # the fast path (§3.5 step 0): nothing to do, nothing written
        state = SqueezerState()
        self._inactive_since = {}
        while True:
            now = self.clock.now()
            snapshot = await self.snapshot()
            iteration = one_iteration(
                state,
                snapshot.host,
                host_target_kib=required_kib,
                success=success,
                now=now,
                config=self.config,
            )
            state = iteration.state
            self._track_inactive(iteration, now)
            self._apply(snapshot, iteration)
            match iteration.decision:
                case Success():
                    return
                case Failed(domids=() | (0,)):
                    # (0,): dom0 changing its own allocation unasked is not blamed (CA-75568).
                    raise CannotFreeThisMuchMemory(required_kib, snapshot.host.free_kib)
                case Failed(domids=domids):
                    raise DomainsRefusedToCooperate(domids)
                case AdjustTargets():
                    state = await self._wait(state)

    def _track_inactive(self, iteration: Iteration, now: float) -> None:
        for domid in iteration.declared_inactive:
            self._inactive_since[domid] = now
            domain = self._domains.get(domid)
            if domain is not None and domid not in self._refused:
                self._refused[domid] = (now, domain.actual_kib)
        for domid in iteration.declared_active:
            self._inactive_since.pop(domid, None)

    async def _wait(self, state: SqueezerState) -> SqueezerState:
        """Between iterations: one fixed interval (reference), or until something happens.

        Event-driven, the host is sampled every poll interval and the stuckness monitor fed
        each sample (so progress times are exact to a poll); the loop resumes as soon as
        every active domain is on target or the set of active domains changes.
        """
        if self.config.reference_ticks:
            await self.clock.sleep(self.config.iteration_interval_s)
            return state
        while True:
            await self.clock.sleep(self.config.poll_interval_s)
            snapshot = await self.snapshot()
            progress = update_progress(
                state.progress,
                snapshot.host,
                self.clock.now(),
                stuck_after_s=self.config.stuck_after_s,
            )
            state = replace(state, progress=progress)
            active = active_domains(snapshot.host, progress)
            active_ids = {d.domid for d in active}
            non_active = {d.domid for d in snapshot.host.domains} - active_ids
            if non_active != state.non_active or all(has_hit_target(d) for d in active):
                return state

    # -- entry points (§3.6, §3.7, §3.10) -----------------------------------------------

    async def free_memory(self, kib: int) -> None:
        """Make `kib` free on top of the host free target."""
        goal = kib + self.config.target_host_free_kib
        await self.change_host_free_memory(goal, lambda free: free >= goal)

    async def free_memory_range(self, min_kib: int, max_kib: int) -> int:
        """Free between `min_kib` and `max_kib` for a new domain, as much as the proportional
        policy would give a domain with that range; returns the amount to reserve."""
        reserve = self.config.target_host_free_kib
        snapshot = await self.snapshot()
        phantom = Domain(
            domid=-1,
            can_balloon=True,
            dynamic_min_kib=min_kib,
            target_kib=min_kib,
            dynamic_max_kib=max_kib,
            # squeezed's phantom has actual 0, which frees nothing either way; at its
            # minimum, the deficit rule does not count again the memory this very
            # request frees for it (ideal + T).
            actual_kib=min_kib,
            maxmem_kib=0,
        )
        ideal = _phantom_target(
            snapshot, phantom, reserve, count_deficit=self.config.deficit_compensation
        )
        await self.change_host_free_memory(ideal + reserve, lambda free: free >= min_kib + reserve)
        usable = self._unowed_free_kib(await self.snapshot()) - reserve
        if usable < min_kib:
            _log.warning("usable free memory %d KiB is below the reserved %d KiB", usable, min_kib)
        return max(min_kib, min(usable, max_kib))

    def _unowed_free_kib(self, snapshot: Snapshot) -> int:
        """Free memory that may be handed out: with `keep_owed_growth`, less what the
        domains may still grow into (their targets, within the inaccuracy at worst)."""
        free = snapshot.host.free_kib
        if self.config.keep_owed_growth:
            free -= owed_growth_kib(snapshot.host.domains)
        return free

    def is_balanced(self, free_kib: int) -> bool:
        return free_kib - self.config.target_host_free_kib < self.config.free_memory_tolerance_kib

    async def balance_memory(self) -> None:
        """Rebalance toward the host free target; failures are logged and swallowed."""
        try:
            await self.change_host_free_memory(self.config.target_host_free_kib, self.is_balanced)
        except Exception as error:  # squeezed swallows every failure here (§3.6)
            _log.warning("balance_memory failed: %s: %s", type(error).__name__, error)

    async def is_host_memory_unbalanced(self) -> bool:
        """One fresh iteration would set a new target somewhere (§3.10)."""
        snapshot = await self.snapshot()
        iteration = one_iteration(
            SqueezerState(),
            snapshot.host,
            host_target_kib=self.config.target_host_free_kib,
            success=self.is_balanced,
            now=self.clock.now(),
            config=self.config,
        )
        if not isinstance(iteration.decision, AdjustTargets):
            return False
        targets = {d.domid: d.target_kib for d in snapshot.host.domains}
        return any(a.target_kib != targets[a.domid] for a in iteration.decision.actions)

    # -- what the toolstack reads -------------------------------------------------------

    def health(self) -> dict[int, BalloonHealth]:
        """Per-domain balloon health as of the latest snapshot."""
        return {
            domid: BalloonHealth(
                domid=domid,
                active=domain.can_balloon and domid not in self._inactive_since,
                inactive_since_s=self._inactive_since.get(domid),
                uncooperative_since_s=self._uncooperative_since.get(domid),
                refused_at_s=self._refused[domid][0] if domid in self._refused else None,
                last_progress_s=_last_progress(self._lifetime_progress, domid),
                shortfall_kib=shortfall_kib(domain),
            )
            for domid, domain in self._domains.items()
        }


def _last_progress(progress: dict[int, Progress], domid: int) -> float | None:
    entry = progress.get(domid)
    return None if entry is None else entry.last_progress_s


def _phantom_target(
    snapshot: Snapshot, phantom: Domain, reserve_kib: int, *, count_deficit: bool
) -> int:
    # Every snapshot domain takes part here, balloonable or not (§3.7, §10.2). squeezed
    # computes this ideal without its test switches, so the inaccuracy allowance always
    # applies; the deficit is xenmem's own rule and follows its switch.
    adjustments = compute_target_adjustments(
        (phantom, *snapshot.host.domains),
        snapshot.host.free_kib,
        reserve_kib,
        count_deficit=count_deficit,
    )
    for domain, target in adjustments:
        if domain is phantom:
            return target
    raise AssertionError("the policy gives every domain it is given a target")
