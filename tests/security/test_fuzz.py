"""Hostile input, seeded: generated and mutated calls in process and over real HTTP (bench.fuzz).

The long run is `.venv/bin/python -m bench.fuzz --cases 100000 --http` (BENCHMARKS.md,
"Fuzzing"); these are its first cases, the same every run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import fuzz

from tests.serving import start_server

IN_PROCESS_CASES = 2000
OVER_HTTP_CASES = 200


def test_generated_calls_in_process(tmp_path: Path) -> None:
    stats = fuzz.fuzz_in_process(tmp_path, IN_PROCESS_CASES, seed_value=8)
    assert stats.cases == IN_PROCESS_CASES
    # The cases reach deep: calls succeed, and fail with many different errors.
    assert stats.successes > 100
    assert {"SESSION_INVALID", "RBAC_PERMISSION_DENIED", "HANDLE_INVALID", "INTERNAL_ERROR"} <= set(
        stats.failures
    )
    assert {200, 500} <= set(stats.statuses)


def test_generated_calls_over_http(tmp_path: Path) -> None:
    running = start_server(tmp_path / "state", password=fuzz.ROOT_PASSWORD)
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "xenmem.cli.main",
                "user",
                "add",
                "read-only",
                "--role",
                "read-only",
                "--state",
                str(running.state_dir),
            ],
            input="read-only-pw\n",
            text=True,
            check=True,
            capture_output=True,
        )
        stats = fuzz.fuzz_over_http(running.url, running.state_dir, OVER_HTTP_CASES, seed_value=8)
        assert running.process.poll() is None
    finally:
        stderr = running.stop()
    assert stats.cases == OVER_HTTP_CASES
    assert "Traceback" not in stderr
