"""End to end: the dashboard in headless Chromium against `xenmem serve` with a seeded pool.

The page is checked against the server's own answers through the SDK
(host.get_memory_ledger, host.compute_free_memory, VM and VM_metrics records): first as
the pool settles, then after a dynamic range change made through the SDK. The final state
is saved as test-artifacts/dashboard.png.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.serving import PATIENCE_S, ROOT_PASSWORD, RunningServer, start_server
from xenmem.memory import DomainType, VmMemory, start_requirement
from xenmem.toolstack.ledger import PARTS

GIB = 2**30
MIB = 2**20
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
POOL = """
[pool]
name = "lab"

[[host]]
name = "alpha"
memory = "32GiB"
cpus = 16

[[host]]
name = "beta"
memory = "16GiB"
cpus = 8
"""

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = PATIENCE_S) -> T:
    """check()'s value once it stops failing its assertions; its last failure after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Pool:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.api = server.session()
        records = self.api.xenapi.host.get_all_records()
        self.hosts = {record["name_label"]: ref for ref, record in records.items()}

    def vm(self, name: str, limits: tuple[int, int, int, int], vcpus: int, host: str | None) -> str:
        static_min, dynamic_min, dynamic_max, static_max = limits
        vm = str(
            self.api.xenapi.VM.create(
                {
                    "name_label": name,
                    "memory_static_min": str(static_min),
                    "memory_dynamic_min": str(dynamic_min),
                    "memory_dynamic_max": str(dynamic_max),
                    "memory_static_max": str(static_max),
                    "VCPUs_max": str(vcpus),
                    "VCPUs_at_startup": str(vcpus),
                    "HVM_boot_policy": "BIOS order",
                    # The balloon driver announces itself at once.
                    "other_config": {"xenmem_boot_seconds": "0"},
                }
            )
        )
        if host is not None:
            self.api.xenapi.VM.start_on(vm, self.hosts[host], False, False)
        return vm

    def ledger(self, host: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.api.xenapi.host.get_memory_ledger(host).items()}

    def free(self, host: str) -> int:
        return int(self.api.xenapi.host.compute_free_memory(host))


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    state = tmp_path_factory.mktemp("dashboard")
    pool_file = state / "pool.toml"
    pool_file.write_text(POOL, encoding="utf-8")
    server = start_server(state / "state", "--pool", str(pool_file))
    seeded = Pool(server)
    seeded.vm("web-1", (GIB, 2 * GIB, 4 * GIB, 4 * GIB), 2, "alpha")
    seeded.vm("db-1", (2 * GIB, 8 * GIB, 12 * GIB, 16 * GIB), 4, "alpha")
    seeded.vm("cache", (GIB, 3 * GIB, 6 * GIB, 8 * GIB), 2, "beta")
    seeded.vm("build", (GIB, GIB, 2 * GIB, 2 * GIB), 1, None)
    yield seeded
    server.stop()


def _sign_in(browser: webdriver.Chrome, password: str) -> None:
    field = browser.find_element(By.NAME, "password")
    field.clear()
    field.send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


@pytest.fixture(scope="module")
def page(browser: webdriver.Chrome, pool: Pool) -> webdriver.Chrome:
    """The dashboard, signed in through its form (after a refused wrong password)."""
    browser.get(pool.server.url)
    _sign_in(browser, "not the password")
    error = browser.find_element(By.CSS_SELECTOR, "#login .error")
    eventually(lambda: _equal(error.text, "Wrong user name or password."))
    _sign_in(browser, ROOT_PASSWORD)
    status = browser.find_element(By.ID, "status")
    eventually(lambda: _equal(status.get_attribute("data-state"), "live"))
    return browser


def browser_log(page: webdriver.Chrome) -> list[dict[str, Any]]:
    """The browser console's entries since the last reading."""
    entries: list[dict[str, Any]] = page.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def _equal(actual: object, expected: object) -> None:
    assert actual == expected


READ_HOST = """
const card = document.querySelector(`article.host[data-host="${arguments[0]}"]`);
if (card === null || card.classList.contains("loading")) return null;
const bytes = (element) => Number(element.dataset.bytes);
const byPart = (nodes, cell) =>
  Object.fromEntries([...nodes].map((node) => [node.dataset.part, bytes(cell(node))]));
return {
  rows: byPart(card.querySelectorAll("tbody tr"), (row) => row.cells[2]),
  segments: byPart(card.querySelectorAll(".segment"), (segment) => segment),
  stats: Object.fromEntries([...card.querySelectorAll("[data-stat]")].map(
    (stat) => [stat.dataset.stat, bytes(stat.querySelector(".stat-value"))])),
  total: bytes(card.querySelector("tfoot .bytes")),
  widths: [...card.querySelectorAll(".segment")].map((s) => s.getBoundingClientRect().width),
  bar: card.querySelector(".ledger-bar").getBoundingClientRect().width,
};
"""

READ_VM = """
const card = document.querySelector(`article.vm[data-vm="${arguments[0]}"]`);
if (card === null) return null;
const value = (dd) => (dd.dataset.bytes === undefined ? null : Number(dd.dataset.bytes));
return {
  fields: Object.fromEntries([...card.querySelectorAll("[data-field]")].map(
    (field) => [field.dataset.field, value(field.querySelector("dd"))])),
  power: card.querySelector(".power").textContent,
  health: card.querySelector(".health").dataset.health,
  where: card.querySelector(".where").textContent,
  target_line: card.querySelector(".target-line").getAttribute("d"),
};
"""


def _host_matches(page: webdriver.Chrome, pool: Pool, host: str) -> None:
    ledger, free = pool.ledger(host), pool.free(host)
    shown: dict[str, Any] | None = page.execute_script(READ_HOST, host)
    assert shown is not None, "no numbers shown yet"
    parts = {k: v for k, v in ledger.items() if k in PARTS or k.endswith((":ram", ":overhead"))}
    assert shown["rows"] == parts
    assert shown["segments"] == parts
    assert sum(parts.values()) == ledger["total"] == shown["total"]
    assert shown["stats"] == {
        "total": ledger["total"],
        "admission": free,
        "free": ledger["free"],
        "reclaimable": ledger["reclaimable_cooperative"],
    }
    # The bar's parts fill it exactly (to a pixel's rounding).
    assert sum(shown["widths"]) == pytest.approx(shown["bar"], abs=1.0)


def _vm_matches(page: webdriver.Chrome, pool: Pool, vm: str) -> dict[str, Any]:
    record = pool.api.xenapi.VM.get_record(vm)
    metrics = pool.api.xenapi.VM_metrics.get_record(record["metrics"])
    shown: dict[str, Any] | None = page.execute_script(READ_VM, vm)
    assert shown is not None
    running = record["power_state"] == "Running"
    assert shown["fields"] == {
        "static_min": int(record["memory_static_min"]),
        "dynamic_min": int(record["memory_dynamic_min"]),
        "dynamic_max": int(record["memory_dynamic_max"]),
        "static_max": int(record["memory_static_max"]),
        "target": int(record["memory_target"]) if running else None,
        "actual": int(metrics["memory_actual"]) if running else None,
    }
    assert shown["power"] == record["power_state"]
    assert shown["health"] == (metrics["other_config"].get("balloon_health", "") if running else "")
    return shown


def test_ledgers_and_free_memory_match_the_server(page: webdriver.Chrome, pool: Pool) -> None:
    for host in pool.hosts.values():
        eventually(functools.partial(_host_matches, page, pool, host))
    # Every guest's RAM and overhead are parts of its host's bar.
    alpha = pool.ledger(pool.hosts["alpha"])
    assert len([k for k in alpha if k.endswith(":ram")]) == 2


def test_vm_cards_match_the_server(page: webdriver.Chrome, pool: Pool) -> None:
    vms = pool.api.xenapi.VM.get_all_records()
    guests = {
        ref for ref, vm in vms.items() if not (vm["is_control_domain"] or vm["is_a_template"])
    }
    assert len(guests) == 4
    for vm in guests:
        shown = eventually(functools.partial(_vm_matches, page, pool, vm))
        host = vms[vm]["resident_on"]
        names = {ref: name for name, ref in pool.hosts.items()}
        where = f"on {names[host]}" if host in names else "Not resident on any host"
        assert shown["where"] == where


def test_the_page_follows_a_dynamic_range_change(page: webdriver.Chrome, pool: Pool) -> None:
    [vm] = pool.api.xenapi.VM.get_by_name_label("web-1")
    alpha = pool.hosts["alpha"]
    eventually(lambda: _vm_matches(page, pool, vm))
    before = page.execute_script(READ_VM, vm)["target_line"]
    pool.api.xenapi.VM.set_memory_dynamic_range(vm, str(GIB), str(3 * GIB))

    def followed() -> dict[str, Any]:
        # With room to spare squeezed gives the guest its dynamic_max, and its driver
        # follows (to a page or so: the simulated driver is as inexact as real ones).
        shown = _vm_matches(page, pool, vm)
        assert shown["fields"]["target"] == 3 * GIB
        assert shown["fields"]["actual"] == pytest.approx(3 * GIB, abs=MIB)
        _host_matches(page, pool, alpha)
        return shown

    shown = eventually(followed)
    assert pool.ledger(alpha)[f"vm:{vm}:ram"] == pytest.approx(3 * GIB, abs=MIB)
    # The chart drew the step down: its target line has a level more than before.
    assert shown["target_line"].count("V") > before.count("V")


def _fill(page: webdriver.Chrome, name: str, value: str) -> None:
    field = page.find_element(By.CSS_SELECTOR, f"#fit [name={name}]")
    field.clear()
    field.send_keys(value)


def test_will_it_fit(page: webdriver.Chrome, pool: Pool) -> None:
    _fill(page, "static_max", "16")
    _fill(page, "dynamic_min", "12")
    _fill(page, "vcpus", "4")
    Select(page.find_element(By.NAME, "domain_type")).select_by_value("hvm")
    vm = VmMemory(
        domain_type=DomainType.HVM,
        static_min=12 * GIB,
        dynamic_min=12 * GIB,
        dynamic_max=16 * GIB,
        static_max=16 * GIB,
        vcpus_max=4,
    )
    needed = start_requirement(vm)

    def rows() -> dict[str, list[str | int]]:
        shown: dict[str, Any] = page.execute_script(
            """
            const rows = [...document.querySelectorAll("#fit tbody tr")];
            const bytes = (cell) => Number(cell.dataset.bytes);
            return {
              needed: Number(document.querySelector("#fit .requirement").dataset.needed),
              rows: Object.fromEntries(rows.map((row) =>
                [row.dataset.host, [row.dataset.fits, bytes(row.cells[1]), bytes(row.cells[2])]])),
            };
            """
        )
        assert shown["needed"] == needed
        expected: dict[str, list[str | int]] = {}
        for ref in pool.hosts.values():
            free = pool.free(ref)
            expected[ref] = ["true" if free >= needed else "false", free, free - needed]
        assert shown["rows"] == expected
        return expected

    fits = eventually(rows)
    # The seeded pool has room for it on alpha only.
    assert fits[pool.hosts["alpha"]][0] == "true"
    assert fits[pool.hosts["beta"]][0] == "false"


def test_exact_bytes_on_hover_and_a_screenshot(page: webdriver.Chrome, pool: Pool) -> None:
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(1440, height + 140)
    page.execute_script("document.activeElement.blur()")
    [db] = pool.api.xenapi.VM.get_by_name_label("db-1")
    segment = page.find_element(By.CSS_SELECTOR, f'.segment[data-part="vm:{db}:ram"]')
    ActionChains(page).move_to_element(segment).perform()
    tooltip = page.find_element(By.ID, "tooltip")
    ram = pool.ledger(pool.hosts["alpha"])[f"vm:{db}:ram"]
    eventually(lambda: _equal(tooltip.text.splitlines()[-1], f"{ram:,} bytes"))
    assert tooltip.text.splitlines()[0] == "db-1 · RAM"
    ARTIFACTS.mkdir(exist_ok=True)
    assert page.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    errors = [entry for entry in browser_log(page) if entry["level"] == "SEVERE"]
    assert errors == []


def test_sign_out_ends_the_session(page: webdriver.Chrome, pool: Pool) -> None:
    session = page.execute_script("return sessionStorage.getItem('xenmem.session')")
    page.find_element(By.ID, "logout").click()
    assert page.find_element(By.ID, "login").is_displayed()
    assert not page.find_element(By.ID, "dashboard").is_displayed()
    proxy = pool.server.proxy()

    def ended() -> None:
        reply = proxy.host.get_all(session)
        assert reply["ErrorDescription"] == ["SESSION_INVALID", session]

    eventually(ended)
