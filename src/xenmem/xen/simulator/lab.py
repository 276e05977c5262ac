"""The lab around a simulated host (implements `xen.Lab`): guests chosen by their VM's
other_config, and the host kept on disk so that its guests outlive the toolstack.

A kept host is `{"host": SimulatedHost.to_data(), "saved_at": wall-clock seconds}`; a
restart resumes it at its simulated time plus the time that passed meanwhile (guests run
on while the toolstack is down), so nothing needs saving while nothing changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenmem.files import write_atomically
from xenmem.xen.clock import Clock
from xenmem.xen.simulator.guests import guest_of
from xenmem.xen.simulator.host import SimulatedHost
from xenmem.xen.simulator.spec import HostSpec
from xenmem.xen.simulator.state import HostDataError, seconds, table

__all__ = ["KeptHostError", "SimulatedLab", "load_host", "resume_time"]


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


class KeptHostError(ValueError):
    """A kept host's file cannot be resumed; the message names the file and says why."""


@dataclass(frozen=True, kw_only=True)
class _Kept:
    host: Mapping[str, Any]
    saved_at: float


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """What is wrong with the kept data, as a `KeptHostError` naming its file."""
    try:
        yield
    except HostDataError as error:
        raise KeptHostError(f"{path}: {error}") from None


def _read(path: Path) -> _Kept | None:
    try:
        saved = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KeptHostError(f"{path}: cannot be read ({error.strerror})") from None
    except ValueError as error:  # not UTF-8, not JSON
        raise KeptHostError(f"{path}: not a kept host ({error})") from None
    with _naming(path):
        if not isinstance(saved, Mapping):
            raise HostDataError("not an object")
        return _Kept(host=table(saved, "host"), saved_at=seconds(saved, "saved_at"))


def load_host(spec: HostSpec, clock: Clock, path: Path) -> SimulatedHost | None:
    """The host kept at `path`, resumed on `clock`; None if it was never kept (a fresh
    boot). `clock` must start at `resume_time` or later. Raises `KeptHostError` when the
    file is malformed or its memory does not add up to the host's."""
    kept = _read(path)
    if kept is None:
        return None
    with _naming(path):
        return SimulatedHost.from_data(spec, clock, kept.host)


def resume_time(hosts_dir: Path, scale: float) -> float:
    """The simulated time to resume at: the latest kept host time plus the time that
    passed since it was kept, at the time scale (guests run on while the toolstack is down).
    Raises `KeptHostError` for a malformed file."""
    latest = 0.0
    for path in hosts_dir.glob("*.json"):
        kept = _read(path)
        if kept is None:
            continue
        with _naming(path):
            host_time = seconds(kept.host, "time_s")
        downtime = max(0.0, time.time() - kept.saved_at)
        latest = max(latest, host_time + downtime * scale)
    return latest
