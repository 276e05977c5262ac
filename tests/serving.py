"""Start `xenmem serve` as a real subprocess on a free port, for black-box tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import XenAPI

from xenmem.xenapi.dispatch import UNDECLARED

ROOT_PASSWORD = "s3cret-root"
_GIB = 2**30
_ADDRESS = re.compile(r"XenAPI at (https?://\S+/)")


@dataclass
class RunningServer:
    url: str
    state_dir: Path
    process: subprocess.Popen[str]
    banner: list[str]
    args: tuple[str, ...] = ()  # the serve options it was started with, but the time scale
    closers: list[Callable[[], None]] = field(default_factory=list)

    def client(self) -> XenAPI.Session:
        """An SDK session object, not logged in; closed when the server stops."""
        session = XenAPI.Session(self.url)
        self.closers.append(session("close"))
        return session

    def proxy(self) -> RawXenAPI:
        """A raw XML-RPC client, to see envelopes the SDK would hide; closed when the
        server stops."""
        raw = RawXenAPI(xmlrpc.client.ServerProxy(self.url, allow_none=True))
        self.closers.append(raw.close)
        return raw

    def session(self, user: str = "root", password: str = ROOT_PASSWORD) -> XenAPI.Session:
        session = self.client()
        session.xenapi.login_with_password(user, password, "1.0", "xenmem-tests")
        return session

    def stop(self) -> str:
        """Stop the server (as Ctrl-C would); return what it wrote on stderr, in which no
        message may have raised an error it does not declare."""
        for close in self.closers:
            close()
        self.closers.clear()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=15)
        assert UNDECLARED not in stderr, stderr
        return stderr

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])


class RawXenAPI:
    """XML-RPC without the SDK, which unwraps replies and logs in again on SESSION_INVALID:
    `raw.VM.get_all(session)` answers the envelope, a struct with Status and Value or
    ErrorDescription."""

    def __init__(self, proxy: xmlrpc.client.ServerProxy, method: str = "") -> None:
        self._proxy = proxy
        self._method = method

    def __getattr__(self, name: str) -> RawXenAPI:
        return RawXenAPI(self._proxy, f"{self._method}.{name}" if self._method else name)

    def __call__(self, *params: object) -> dict[str, Any]:
        reply = getattr(self._proxy, self._method)(*params)
        assert isinstance(reply, dict), reply
        return reply

    def list_methods(self) -> list[str]:
        """system.listMethods, the one call answered without an envelope."""
        methods = self._proxy.system.listMethods()
        assert isinstance(methods, list)
        return [str(method) for method in methods]

    def close(self) -> None:
        self._proxy("close")()


# Simulated seconds per real second for test servers: a host's boot-time sampling (9 s)
# and a guest's balloon driver start (20 s) take a fraction of a real second.
TEST_TIME_SCALE = 100.0

# A clock slow enough that wait_memory_target_live's 256 simulated seconds outlast any test
# (more than pytest's 300 s timeout): a wait on a guest that cannot reach its target is
# still waiting whenever the test looks, however slow the machine.
HELD_TIME_SCALE = 0.5

# How long a test waits for a state change it is sure to see: only a hung run takes this
# long, so it bounds the run without making the test depend on the machine's speed.
PATIENCE_S = 120.0


def until(condition: Callable[[], bool], seconds: float = PATIENCE_S) -> None:
    """Return once `condition()` holds; fail if it still does not after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def start_server(
    state_dir: Path,
    *args: str,
    password: str | None = ROOT_PASSWORD,
    port: int = 0,
    time_scale: float = TEST_TIME_SCALE,
) -> RunningServer:
    env = {k: v for k, v in os.environ.items() if k != "XENMEM_ROOT_PASSWORD"}
    if password is not None:
        env["XENMEM_ROOT_PASSWORD"] = password
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xenmem.cli.main",
            "serve",
            "--port",
            str(port),
            "--state",
            str(state_dir),
            "--time-scale",
            str(time_scale),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line.rstrip("\n"))
        match = _ADDRESS.search(line)
        if match:
            return RunningServer(
                url=match.group(1), state_dir=state_dir, process=process, banner=banner, args=args
            )
    _, stderr = process.communicate(timeout=10)
    raise RuntimeError(f"xenmem serve did not start: {banner} {stderr}")


def add_user(state_dir: Path, name: str, role: str, password: str) -> None:
    """`xenmem user add`, as an administrator would run it beside the server."""
    subprocess.run(
        [sys.executable, "-m", "xenmem.cli.main", "user", "add", name, "--role", role]
        + ["--state", str(state_dir)],
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


def start_again(stopped: RunningServer, *, time_scale: float) -> RunningServer:
    """Serve a stopped server's state again, on a clock of `time_scale`. The hosts keep
    their boot-time measurement (nine simulated seconds), so a slow clock starts quickly.
    Sessions and tasks do not survive the restart."""
    return start_server(stopped.state_dir, *stopped.args, time_scale=time_scale)


def vm_record(name: str, **overrides: object) -> dict[str, object]:
    """VM.create's argument for a halted HVM VM: 1-4 GiB static, 2-4 GiB dynamic, 2 vCPUs;
    int64 values as strings, as SDK callers pass them."""
    return {
        "name_label": name,
        "memory_static_min": str(_GIB),
        "memory_static_max": str(4 * _GIB),
        "memory_dynamic_min": str(2 * _GIB),
        "memory_dynamic_max": str(4 * _GIB),
        "VCPUs_max": "2",
        "VCPUs_at_startup": "2",
        "HVM_boot_policy": "BIOS order",
        **overrides,
    }
