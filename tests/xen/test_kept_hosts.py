"""A kept host file is checked when it is loaded: types, signs, and memory that adds up
(Xen + domains + free + scrub = total); anything else is refused naming the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xenmem.memory.model import DomainType
from xenmem.xen import VirtualClock, domain_path
from xenmem.xen.simulator import (
    Guest,
    HostSpec,
    Ideal,
    Intermittent,
    KeptHostError,
    SimulatedHost,
    SimulatedLab,
    load_host,
    resume_time,
)

MIB = 1024
GIB = 1024 * MIB
SPEC = HostSpec.default(16 * 2**30)


def kept_host(path: Path) -> SimulatedHost:
    """A host with dom0, two guests (one ballooning), memory to scrub, kept at `path`."""
    clock = VirtualClock()
    host = SimulatedHost(SPEC, clock)
    for driver in (Ideal(rate_kib_s=100 * MIB), Intermittent(rate_kib_s=80 * MIB, interval_s=3.0)):
        domid = host.create_domain(domain_type=DomainType.HVM, max_kib=4 * GIB)
        host.build_domain(domid, memory_kib=2 * GIB, shadow_mib=20)
        host.xenstore.write(domain_path(domid, "memory/target"), str(GIB))
        host.attach_guest(domid, Guest(driver=driver, boot_delay_s=1.0))
        host.unpause_domain(domid)
    extra = host.create_domain(domain_type=DomainType.PV, max_kib=GIB)
    host.build_domain(extra, memory_kib=GIB, shadow_mib=0)
    host.destroy_domain(extra)
    clock.advance(2.0)
    SimulatedLab(host, path).save()
    return host


def load(path: Path) -> SimulatedHost | None:
    return load_host(SPEC, VirtualClock(start_s=resume_time(path.parent, 1.0)), path)


def tampered(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    saved = json.loads(path.read_text())
    change(saved)
    path.write_text(json.dumps(saved))


def test_a_kept_host_loads_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    original = kept_host(path)
    loaded = load(path)
    assert loaded is not None
    assert loaded.to_data()["domains"] == original.to_data()["domains"]
    assert load(tmp_path / "never-kept.json") is None


def _domain(saved: dict[str, Any], domid: int) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in saved["host"]["domains"] if d["domid"] == domid)
    return found


def _set(*keys: str | int, value: object) -> Callable[[dict[str, Any]], None]:
    def change(saved: dict[str, Any]) -> None:
        target: Any = saved
        for key in keys[:-1]:
            target = _domain(saved, key) if isinstance(key, int) else target[key]
        target[keys[-1]] = value

    return change


def _free_plus(kib: int) -> Callable[[dict[str, Any]], None]:
    def change(saved: dict[str, Any]) -> None:
        saved["host"]["free_kib"] += kib

    return change


def _moved_from_free_to_scrub(kib: int) -> Callable[[dict[str, Any]], None]:
    """Parts that still add up, but one of them negative."""

    def change(saved: dict[str, Any]) -> None:
        saved["host"]["scrub_kib"] = -kib
        saved["host"]["free_kib"] += 2 * kib

    return change


def _duplicate_domain(saved: dict[str, Any]) -> None:
    saved["host"]["domains"].append(dict(_domain(saved, 1)))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_free_plus(32 * GIB), "not the host's"),
        (_free_plus(-1), "not the host's"),
        (_set("host", "free_kib", value=-5), "free_kib is -5"),
        (_moved_from_free_to_scrub(GIB), "scrub_kib is -"),
        (_set("host", "free_kib", value="1024"), "free_kib is '1024'"),
        (_set("host", "free_kib", value=1024.5), "free_kib is 1024.5"),
        (_set("host", "consumed_kib", value=True), "consumed_kib is True"),
        (_set("host", "tick", value=None), "tick is None"),
        (_set("host", 1, "tot_kib", value=-GIB), "domain 1: tot_kib is"),
        (_set("host", 1, "shadow_mib", value=2**70), "not the host's"),
        (_set("host", 2, "domain_type", value="bogus"), "domain 2: domain_type is 'bogus'"),
        (_set("host", 2, "paused", value="no"), "domain 2: paused is 'no'"),
        (_set("host", 1, "guest", "boot_delay_s", value="soon"), "boot_delay_s is 'soon'"),
        (_set("host", 1, "guest", "driver", "kind", value="Bogus"), "unknown balloon driver"),
        (_set("host", 2, "guest", "driver", "interval_s", value=0), "interval_s must be > 0"),
        (_set("host", 2, "guest", "driver", "rate_kib_s", value=float("nan")), "rate_kib_s"),
        (_set("host", 1, "guest", "extra", value=1), "malformed Guest"),
        (_duplicate_domain, "domain 1 is there twice"),
        (_set("host", "domains", value={}), "domains is not a list"),
        (_set("host", "xenstore", "local", value="x"), "xenstore key 'local'"),
        (_set("host", "xenstore", "/local", value=3), "xenstore key '/local'"),
        (_set("host", "time_s", value=float("inf")), "time_s is inf"),
        (_set("saved_at", value="yesterday"), "saved_at is 'yesterday'"),
        (_set("host", value=[]), "host is not an object"),
    ],
)
def test_a_host_file_that_is_not_a_host_is_refused_naming_the_file(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    path = tmp_path / "host.json"
    kept_host(path)
    tampered(path, change)
    with pytest.raises(KeptHostError) as refused:
        load(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b"[1, 2]", b"null"])
def test_a_host_file_that_is_not_json_is_refused_naming_the_file(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "host.json"
    path.write_bytes(content)
    with pytest.raises(KeptHostError, match=f"^{path}: "):
        load(path)
