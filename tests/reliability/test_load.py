"""A short run of bench.load: a few seconds, a few clients, every kind of call.

No timing is asserted (timings live in BENCHMARKS.md): only that nothing but the expected
XenAPI refusals came back, every kind of client got answers, and the books balance
afterwards.
"""

from __future__ import annotations

import argparse

from bench.load import print_report, run


def test_a_short_load_has_no_unexpected_errors_and_balances_the_books() -> None:
    args = argparse.Namespace(
        clients=8, seconds=3.0, processes=2, think_ms=20.0, background=2, time_scale=100.0
    )
    report = run(args)
    print_report(report, args)
    assert report.unexpected() == {}
    assert report.books == []
    answered = {call for call, counts in report.results.outcomes.items() if counts["ok"]}
    assert {"event.from", "VM.set_memory_dynamic_range", "host.get_memory_ledger"} <= answered
    assert len(report.samples) >= 2
