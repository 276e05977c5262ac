from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import RunningServer, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server shared by the black-box tests that do not need a fresh state."""
    running = start_server(tmp_path_factory.mktemp("state"))
    yield running
    running.stop()


@pytest.fixture
def fresh_state(tmp_path: Path) -> Path:
    return tmp_path / "state"
