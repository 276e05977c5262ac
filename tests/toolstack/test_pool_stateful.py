"""Random operation sequences on a simulated pool never break the accounting.

After every step: no host is overcommitted (Σ (dynamic_min + overhead) of its resident
and scheduled VMs ≤ memory_total − host overhead, and the simulated Xen never refused a
guest's allocation nor went below zero free), compute_free_memory equals the §4.2
formula, resident_on / scheduled_to_be_resident_on agree with the hosts' domains, and
every host's ledger adds up (the checks of `Pool.assert_consistent`).

Every refused step is refused for a reason it may legitimately have: a VM that is gone
gets HANDLE_INVALID, one in the wrong power state VM_BAD_POWER_STATE (and those two
always fail), and otherwise only the refusals the spec gives that step in that state; a
refused step leaves the VM's power state as it was.
"""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from tests.toolstack.harness import GIB, MIB, Pool, small_pool
from xenmem.db import Record
from xenmem.errors import (
    HANDLE_INVALID,
    HOST_NOT_ENOUGH_FREE_MEMORY,
    MEMORY_CONSTRAINT_VIOLATION_ORDER,
    NO_HOSTS_AVAILABLE,
    VM_BAD_POWER_STATE,
    VMS_FAILED_TO_COOPERATE,
    ErrorDef,
    XenAPIError,
)

SIZES = st.sampled_from([256 * MIB, 512 * MIB, GIB, 2 * GIB, 3 * GIB, 5 * GIB])
BALLOONS = st.sampled_from(["ideal", "ideal:256MiB", "stuck", "floor:1GiB", "none", "cap:3GiB"])

# The power states each operation runs in (xapi-memory.md §3.4; xapi's lifecycle table).
POWER_STATES: dict[str, frozenset[str]] = {
    "VM.start": frozenset({"Halted"}),
    "VM.start_on": frozenset({"Halted"}),
    "VM.set_memory_dynamic_range": frozenset({"Halted", "Running"}),
    "VM.set_memory_limits": frozenset({"Halted"}),
    "VM.set_memory_target_live": frozenset({"Running"}),
    "VM.suspend": frozenset({"Running"}),
    "VM.resume": frozenset({"Suspended"}),
    "VM.pool_migrate": frozenset({"Running"}),
    "VM.clean_shutdown": frozenset({"Running"}),
    "VM.hard_shutdown": frozenset({"Paused", "Running", "Suspended"}),
    "VM.destroy": frozenset({"Halted", "Suspended"}),
}

# A host may lack the memory (§4.3), or squeezed may fail to free it because guests do
# not balloon (§4.6: Cannot_free_this_much_memory, VMS_FAILED_TO_COOPERATE).
ADMISSION = (HOST_NOT_ENOUGH_FREE_MEMORY, VMS_FAILED_TO_COOPERATE)


class PoolMachine(RuleBasedStateMachine):
    """The VMs here are ordinary ones (no template, snapshot, blocked operation or nested
    virtualisation) with valid limits, DMC is on, and one call runs at a time: so no step
    may be refused for those reasons, nor with INTERNAL_ERROR."""

    vms = Bundle("vms")

    def __init__(self) -> None:
        super().__init__()
        # Small hosts, so that admission and ballooning are tested at their limits.
        self.pool = Pool(small_pool(hosts=2, memory=6 * GIB))

    def fields(self, vm: str) -> Record | None:
        return self.pool.store.get("VM", vm)

    def attempt(
        self, message: str, vm: str, *args: object, refusals: Collection[ErrorDef] = ()
    ) -> None:
        """Call `message` on `vm`; it may be refused only with the errors its state allows:
        `refusals` once the operation check has passed."""
        before = self.fields(vm)
        if before is None:
            required: ErrorDef | None = HANDLE_INVALID
        elif before["power_state"] not in POWER_STATES[message]:
            required = VM_BAD_POWER_STATE
        else:
            required = None
        try:
            self.pool.call(message, vm, *args)
        except XenAPIError as error:
            legitimate = [required] if required is not None else refusals
            codes = sorted(e.code for e in legitimate)
            state = "missing" if before is None else before["power_state"]
            assert any(e.matches(error) for e in legitimate), (
                f"{message} on a {state} VM refused with {error}; it may get only {codes}"
            )
            if before is not None:
                after = self.fields(vm)
                assert after is not None
                assert after["power_state"] == before["power_state"]
        else:
            assert required is None, f"{message} succeeded where it must raise {required}"

    def limits(self, vm: str, *names: str) -> list[int]:
        """The VM's memory fields `names` (memory_<name>)."""
        return [self.pool.int_field("VM", vm, f"memory_{name}") for name in names]

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
        refusals = (*ADMISSION, NO_HOSTS_AVAILABLE)
        self.attempt("VM.start", vm, False, False, refusals=refusals)

    @rule(vm=vms, host=st.integers(0, 1))
    def start_on(self, vm: str, host: int) -> None:
        self.attempt("VM.start_on", vm, self.pool.hosts[host], False, False, refusals=ADMISSION)

    @rule(vm=vms, bounds=st.lists(SIZES, min_size=2, max_size=2))
    def set_dynamic_range(self, vm: str, bounds: list[int]) -> None:
        low, high = sorted(bounds)
        refusals: list[ErrorDef] = []
        record = self.fields(vm)
        if record is not None:
            static_min, dynamic_min, static_max = self.limits(
                vm, "static_min", "dynamic_min", "static_max"
            )
            if not static_min <= low <= high <= static_max:
                refusals.append(MEMORY_CONSTRAINT_VIOLATION_ORDER)  # §3.2
            # Raising a running VM's floor needs that much free on its host (§3.4).
            if low > dynamic_min and record["power_state"] == "Running":
                refusals.append(HOST_NOT_ENOUGH_FREE_MEMORY)
        self.attempt("VM.set_memory_dynamic_range", vm, low, high, refusals=refusals)

    @rule(vm=vms, sizes=st.lists(SIZES, min_size=4, max_size=4))
    def set_limits(self, vm: str, sizes: list[int]) -> None:
        # Limits in order on a halted VM with DMC on: nothing may refuse them (§3.4).
        static_min, dynamic_min, dynamic_max, static_max = sorted(sizes)
        self.attempt("VM.set_memory_limits", vm, static_min, static_max, dynamic_min, dynamic_max)

    @rule(vm=vms, size=SIZES)
    def set_target_live(self, vm: str, size: int) -> None:
        refusals: list[ErrorDef] = []
        if self.fields(vm) is not None:
            dynamic_min, dynamic_max = self.limits(vm, "dynamic_min", "dynamic_max")
            # The target must lie in the dynamic range; holding it above the floor raises
            # the floor, which needs free memory as set_memory_dynamic_range does.
            if not dynamic_min <= size <= dynamic_max:
                refusals.append(MEMORY_CONSTRAINT_VIOLATION_ORDER)
            if size > dynamic_min:
                refusals.append(HOST_NOT_ENOUGH_FREE_MEMORY)
        self.attempt("VM.set_memory_target_live", vm, size, refusals=refusals)

    @rule(vm=vms)
    def suspend(self, vm: str) -> None:
        self.attempt("VM.suspend", vm)

    @rule(vm=vms)
    def resume(self, vm: str) -> None:
        refusals = (*ADMISSION, NO_HOSTS_AVAILABLE)
        self.attempt("VM.resume", vm, False, False, refusals=refusals)

    @rule(vm=vms, host=st.integers(0, 1))
    def migrate(self, vm: str, host: int) -> None:
        self.attempt("VM.pool_migrate", vm, self.pool.hosts[host], {}, refusals=ADMISSION)

    @rule(vm=vms, hard=st.booleans())
    def shutdown(self, vm: str, hard: bool) -> None:
        self.attempt("VM.hard_shutdown" if hard else "VM.clean_shutdown", vm)

    @rule(vm=vms)
    def destroy(self, vm: str) -> None:
        if self.fields(vm) is not None:
            self.attempt("VM.destroy", vm)

    @rule(seconds=st.sampled_from([0.5, 3.0, 12.0, 40.0]))
    def wait(self, seconds: float) -> None:
        self.pool.advance(seconds)

    @invariant()
    def accounting_holds(self) -> None:
        self.pool.assert_consistent()


PoolMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
test_pool_never_overcommits = PoolMachine.TestCase
