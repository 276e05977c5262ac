"""Random operation sequences on a simulated pool never break the accounting.

After every step: no host is overcommitted (Σ (dynamic_min + overhead) of its resident
and scheduled VMs ≤ memory_total − host overhead, and the simulated Xen never refused a
guest's allocation nor went below zero free), compute_free_memory equals the §4.2
formula, resident_on / scheduled_to_be_resident_on agree with the hosts' domains, and
every host's ledger adds up (the checks of `Pool.assert_consistent`).
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from tests.toolstack.harness import GIB, MIB, Pool, small_pool
from xenmem.errors import XenAPIError

SIZES = st.sampled_from([256 * MIB, 512 * MIB, GIB, 2 * GIB, 3 * GIB, 5 * GIB])
BALLOONS = st.sampled_from(["ideal", "ideal:256MiB", "stuck", "floor:1GiB", "none", "cap:3GiB"])


class PoolMachine(RuleBasedStateMachine):
    vms = Bundle("vms")

    def __init__(self) -> None:
        super().__init__()
        # Small hosts, so that admission and ballooning are tested at their limits.
        self.pool = Pool(small_pool(hosts=2, memory=6 * GIB))
        self.errors: set[str] = set()

    def attempt(self, message: str, *args: object) -> None:
        try:
            self.pool.call(message, *args)
        except XenAPIError as error:
            self.errors.add(error.code)

    @rule(
        target=vms,
        sizes=st.lists(SIZES, min_size=4, max_size=4),
        domain_type=st.sampled_from(["hvm", "pv", "pvh"]),
        balloon=BALLOONS,
    )
    def create(self, sizes: list[int], domain_type: str, balloon: str) -> str:
        static_min, dynamic_min, dynamic_max, static_max = sorted(sizes)
        return self.pool.vm(
            domain_type=domain_type,
            memory_static_min=static_min,
            memory_dynamic_min=dynamic_min,
            memory_dynamic_max=dynamic_max,
            memory_static_max=static_max,
            other_config={"xenmem_balloon": balloon},
        )

    @rule(vm=vms)
    def start(self, vm: str) -> None:
        self.attempt("VM.start", vm, False, False)

    @rule(vm=vms, host=st.integers(0, 1))
    def start_on(self, vm: str, host: int) -> None:
        self.attempt("VM.start_on", vm, self.pool.hosts[host], False, False)

    @rule(vm=vms, bounds=st.lists(SIZES, min_size=2, max_size=2))
    def set_dynamic_range(self, vm: str, bounds: list[int]) -> None:
        self.attempt("VM.set_memory_dynamic_range", vm, *sorted(bounds))

    @rule(vm=vms, sizes=st.lists(SIZES, min_size=4, max_size=4))
    def set_limits(self, vm: str, sizes: list[int]) -> None:
        static_min, dynamic_min, dynamic_max, static_max = sorted(sizes)
        self.attempt("VM.set_memory_limits", vm, static_min, static_max, dynamic_min, dynamic_max)

    @rule(vm=vms, size=SIZES)
    def set_target_live(self, vm: str, size: int) -> None:
        self.attempt("VM.set_memory_target_live", vm, size)

    @rule(vm=vms)
    def suspend(self, vm: str) -> None:
        self.attempt("VM.suspend", vm)

    @rule(vm=vms)
    def resume(self, vm: str) -> None:
        self.attempt("VM.resume", vm, False, False)

    @rule(vm=vms, host=st.integers(0, 1))
    def migrate(self, vm: str, host: int) -> None:
        self.attempt("VM.pool_migrate", vm, self.pool.hosts[host], {})

    @rule(vm=vms, hard=st.booleans())
    def shutdown(self, vm: str, hard: bool) -> None:
        self.attempt("VM.hard_shutdown" if hard else "VM.clean_shutdown", vm)

    @rule(vm=vms)
    def destroy(self, vm: str) -> None:
        if self.pool.store.get("VM", vm) is not None:
            self.attempt("VM.destroy", vm)

    @rule(seconds=st.sampled_from([0.5, 3.0, 12.0, 40.0]))
    def wait(self, seconds: float) -> None:
        self.pool.advance(seconds)

    @invariant()
    def accounting_holds(self) -> None:
        self.pool.assert_consistent()


PoolMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
test_pool_never_overcommits = PoolMachine.TestCase
