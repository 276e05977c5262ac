"""The state directory's integrity, against `xenmem serve`: a kept host whose memory does
not add up stops the server at start with one line naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving import ROOT_PASSWORD, start_server

GIB_KIB = 2**20


SERVE = [sys.executable, "-m", "xenmem.cli.main", "serve", "--port", "0"]


def serve_until_exit(state_dir: Path) -> subprocess.CompletedProcess[str]:
    """`xenmem serve` on `state_dir`, expected to stop by itself."""
    return subprocess.run(
        [*SERVE, "--state", str(state_dir)],
        env={**os.environ, "XENMEM_ROOT_PASSWORD": ROOT_PASSWORD},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], *naming: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for text in naming:
        assert text in lines[0]
    return lines[0]


@pytest.mark.parametrize("free_change_kib", [32 * GIB_KIB, "negative"])
def test_a_host_file_whose_memory_does_not_add_up_stops_the_server(
    fresh_state: Path, free_change_kib: int | str
) -> None:
    start_server(fresh_state).stop()
    path = sorted((fresh_state / "hosts").glob("*.json"))[0]
    saved = json.loads(path.read_text())
    if free_change_kib == "negative":
        saved["host"]["free_kib"] = -saved["host"]["free_kib"]
    else:
        assert isinstance(free_change_kib, int)
        saved["host"]["free_kib"] += free_change_kib
    path.write_text(json.dumps(saved))
    assert_one_line_refusal(serve_until_exit(fresh_state), str(path), "free")


def test_a_second_server_on_the_same_state_refuses_naming_the_first(fresh_state: Path) -> None:
    first = start_server(fresh_state)
    try:
        refusal = assert_one_line_refusal(
            serve_until_exit(fresh_state), str(fresh_state), str(first.process.pid)
        )
        assert "in use" in refusal
        # The first server goes on serving its books alone.
        first.session().xenapi.host.get_all()
    finally:
        first.stop()
    # The lock ends with its holder: the next server starts.
    start_server(fresh_state).stop()
