"""Test-wide settings: hypothesis profiles sized for a 2-core CI machine, and the server fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.serving import RunningServer, start_server

# The gate is deterministic (the same examples every run); `thorough` explores afresh.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile(
    "thorough",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("XENMEM_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server shared by the black-box tests that do not need a fresh state."""
    running = start_server(tmp_path_factory.mktemp("state"))
    yield running
    running.stop()


@pytest.fixture
def fresh_state(tmp_path: Path) -> Path:
    return tmp_path / "state"
