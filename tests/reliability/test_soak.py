"""A short run of bench.soak, with the connection timeouts shortened: every kind of
traffic of the mix got through, and nothing but what the mix expects came back.

No timing or trend is asserted (those live in BENCHMARKS.md, "Soak")."""

from __future__ import annotations

from bench.soak import print_quiet, print_report, run

KINDS = {
    "Async task left in the database",
    "connect, one call, hang up",
    "correct login + logout",
    "event.from batch taken",
    "event.from hung up",
    "failed login answered",
    "idle connection closed",
    "probe Async call + task.destroy",
    "probe VM.get_record",
    "slow connection cut",
}


def test_a_short_soak_runs_every_kind_of_traffic_without_errors() -> None:
    result = run(8.0, 0.5, "--idle-timeout", "1", "--header-timeout", "2")
    print_quiet(result.before, result.after)
    print_report(result.soak, 8.0, 2.0)
    assert result.soak.errors == {}
    done = {kind for _, kind in result.soak.tally.done}
    assert done >= KINDS
    assert done & {"VM.start cancelled", "VM.start, then its shutdown"}
    assert all(probe.rate > 0 for probe in (*result.before.values(), *result.after.values()))
