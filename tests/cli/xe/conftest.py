"""One `xenmem serve` for the xe tests, the SDK beside it, and `xe` run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import XenAPI

from tests.serving import ROOT_PASSWORD, RunningServer, start_server

XE = str(Path(sys.executable).parent / "xe")  # the installed console script
GIB = 2**30
MIB = 2**20


@dataclass
class Xe:
    """Runs the `xe` console script against the test server, in a clean environment."""

    server: RunningServer
    home: Path

    def bare(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        """`xe ARGS` with no connection switches (they come from ~/.xe or `env`)."""
        environment = {k: v for k, v in os.environ.items() if k != "XE_EXTRA_ARGS"}
        environment.update(HOME=str(self.home), **env)
        return subprocess.run(
            [XE, *args],
            check=False,
            capture_output=True,
            text=True,
            input=stdin,
            env=environment,
            timeout=120,
        )

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        switches = ["-s", "127.0.0.1", "-p", str(self.server.port), "-u", "root"]
        return self.bare(*switches, "-pw", ROOT_PASSWORD, *args, stdin=stdin)

    def ok(self, *args: str) -> str:
        """The standard output of a command that must succeed quietly."""
        result = self(*args)
        assert (result.returncode, result.stderr) == (0, ""), (args, result.stderr)
        return result.stdout


def failure(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a command that must fail as xe fails: status 1, no traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    return result.stderr


def parse_records(text: str) -> list[dict[str, str]]:
    """xe's record output as dicts of field name → value (qualifiers dropped)."""
    records: list[dict[str, str]] = []
    for block in text.split("\n\n\n"):
        fields = {}
        for line in block.splitlines():
            label, _, value = line.partition(": ")
            fields[label.split(" (")[0].strip()] = value
        if fields:
            records.append(fields)
    return records


@pytest.fixture(scope="package")
def xe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Simulated time runs fast so that ballooning and waits finish quickly.
    running = start_server(tmp_path_factory.mktemp("xe-state"), time_scale=1000.0)
    yield running
    running.stop()


@pytest.fixture(scope="package")
def api(xe_server: RunningServer) -> Iterator[XenAPI.Session]:
    session = xe_server.session()
    yield session
    session.xenapi.session.logout()


@pytest.fixture(scope="package")
def xe(xe_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Xe:
    return Xe(server=xe_server, home=tmp_path_factory.mktemp("home"))
