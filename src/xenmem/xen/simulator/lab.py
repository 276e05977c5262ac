"""The lab around a simulated host (implements `xen.Lab`): guests chosen by their VM's
other_config, and the host kept on disk so that its guests outlive the toolstack.

A kept host is `{"host": SimulatedHost.to_data(), "saved_at": wall-clock seconds}`; a
restart resumes it at its simulated time plus the time that passed meanwhile (guests run
on while the toolstack is down), so nothing needs saving while nothing changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from xenmem.files import write_atomically
from xenmem.xen.clock import Clock
from xenmem.xen.simulator.guests import guest_of
from xenmem.xen.simulator.host import SimulatedHost
from xenmem.xen.simulator.spec import HostSpec

__all__ = ["SimulatedLab", "load_host", "resume_time"]


class SimulatedLab:
    """The lab of one simulated host; with a `path`, `save` keeps the host there."""

    def __init__(self, host: SimulatedHost, path: Path | None = None) -> None:
        self.host = host
        self._path = path
        self._saved_revision: int | None = None

    def check_guest(self, other_config: Mapping[str, str]) -> None:
        guest_of(other_config)

    def attach_guest(self, domid: int, other_config: Mapping[str, str], *, booted: bool) -> None:
        self.host.attach_guest(domid, guest_of(other_config), booted=booted)

    def save(self) -> None:
        if self._path is None or self.host.revision == self._saved_revision:
            return
        data = {"host": self.host.to_data(), "saved_at": time.time()}
        # After to_data: the changes its catching up made are in what is written.
        revision = self.host.revision
        write_atomically(self._path, json.dumps(data).encode())
        self._saved_revision = revision


def _read(path: Path) -> Mapping[str, object] | None:
    try:
        saved: Mapping[str, object] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return saved


def load_host(spec: HostSpec, clock: Clock, path: Path) -> SimulatedHost | None:
    """The host kept at `path`, resumed on `clock`; None if it was never kept (a fresh
    boot). `clock` must start at `resume_time` or later."""
    saved = _read(path)
    if saved is None:
        return None
    data = saved["host"]
    assert isinstance(data, Mapping)
    return SimulatedHost.from_data(spec, clock, data)


def resume_time(hosts_dir: Path, scale: float) -> float:
    """The simulated time to resume at: the latest kept host time plus the time that
    passed since it was kept, at the time scale (guests run on while the toolstack is down)."""
    latest = 0.0
    for path in hosts_dir.glob("*.json"):
        saved = _read(path)
        if saved is None:
            continue
        host, saved_at = saved["host"], saved["saved_at"]
        assert isinstance(host, Mapping) and isinstance(saved_at, float)
        downtime = max(0.0, time.time() - saved_at)
        latest = max(latest, float(host["time_s"]) + downtime * scale)
    return latest
