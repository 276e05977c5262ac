"""The dashboard's modules on their own, run in the browser that the page runs in.

Each check imports modules from the served page and calls them from a small JavaScript
function; the results are compared here, the sizing arithmetic against xenmem's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from selenium import webdriver

from tests.serving import RunningServer
from xenmem.memory import DomainType, VmMemory, start_requirement

GIB = 2**30
MIB = 2**20
RunModules = Callable[..., Any]


@pytest.fixture(scope="module")
def run(browser: webdriver.Chrome, server: RunningServer) -> RunModules:
    """run(["a.js", ...], "(a, ..., *args) => value", *args): the function's value."""
    browser.get(server.url)

    def call(modules: list[str], function: str, *args: object) -> Any:
        reply: dict[str, Any] = browser.execute_async_script(
            f"""
            const done = arguments[arguments.length - 1];
            const args = [...arguments].slice(0, -1);
            Promise.all({[f"/static/js/{m}" for m in modules]!r}.map((m) => import(m)))
              .then((modules) => done({{ value: ({function})(...modules, ...args) }}))
              .catch((error) => done({{ error: String(error) }}));
            """,
            *args,
        )
        assert "error" not in reply, reply["error"]
        return reply["value"]

    return call


def test_sizes_for_people(run: RunModules) -> None:
    sizes = [0, 1023, 1024, 72 * MIB, 41 * MIB + 1, 1536 * MIB, 12 * GIB + GIB // 2, 150 * GIB + 1]
    assert run(["bytes.js"], "(b, sizes) => sizes.map(b.human)", sizes) == [
        "0 B",
        "1023 B",
        "1 KiB",
        "72 MiB",
        "41.0 MiB",
        "1.50 GiB",
        "12.5 GiB",
        "150 GiB",
    ]
    assert run(["bytes.js"], "(b) => b.exact(12884901888)") == "12,884,901,888 bytes"


def test_start_requirement_is_the_servers(run: RunModules) -> None:
    cases = [
        {"domainType": kind, "staticMax": smax, "dynamicMin": smax // 3 + 12345, "vcpus": vcpus}
        for kind in ("hvm", "pvh", "pv", "pv_in_pvh")
        for smax in (256 * MIB, 4 * GIB + 1, 100 * GIB, 1536 * GIB)
        for vcpus in (1, 7, 14, 64)
    ]
    needed = run(
        ["requirement.js"], "(r, cases) => cases.map((vm) => r.startRequirement(vm).needed)", cases
    )
    assert needed == [
        start_requirement(
            VmMemory(
                domain_type=DomainType(case["domainType"]),
                static_min=case["dynamicMin"],
                dynamic_min=case["dynamicMin"],
                dynamic_max=case["staticMax"],
                static_max=case["staticMax"],
                vcpus_max=case["vcpus"],
            )
        )
        for case in cases
    ]


def test_history_keeps_changes_and_one_point_before_the_window(run: RunModules) -> None:
    early, late = run(
        ["history.js"],
        """(h) => {
          const history = new h.History();
          const sample = (target) => ({ target, actual: target, dynamic_min: 1, dynamic_max: 9 });
          const times = () => history.points("vm").map((point) => [point.t, point.target]);
          history.note("vm", 0, sample(4));
          history.note("vm", 1000, sample(4));
          history.note("vm", 2000, sample(5));
          history.note("vm", 3000, sample(null));
          const early = times();
          history.note("vm", 3000 + h.WINDOW_MS, sample(6));
          return [early, times()];
        }""",
    )
    # An unchanged sample adds nothing.
    assert early == [[0, 4], [2000, 5], [3000, None]]
    # 0 s and 2 s fall out of the window; the last point before it (3 s, not running)
    # stays: it gives the values at the window's start.
    assert late == [[3000, None], [3000 + 5 * 60 * 1000, 6]]


def test_ledger_parts_in_order_with_refs_that_hold_colons(run: RunModules) -> None:
    ledger = {
        "total": 100,
        "xen": 5,
        "dom0": 10,
        "reservations": 1,
        "reserve": 2,
        "free": 40,
        "vm:OpaqueRef:b:ram": 20,
        "vm:OpaqueRef:b:overhead": 1,
        "vm:OpaqueRef:a:overhead": 1,
        "vm:OpaqueRef:a:ram": 20,
        "vm:OpaqueRef:a:target": 20,
        "reclaimable_cooperative": 3,
    }
    parts = run(
        ["model.js", "records.js"],
        """(model, records, ledger) => {
          const pool = new records.Records();
          for (const [ref, name] of [["OpaqueRef:a", "web"], ["OpaqueRef:b", "db"]]) {
            pool.apply({ class: "vm", operation: "add", ref, snapshot: { name_label: name } });
          }
          const hues = new model.Palette().hues(model.guests(pool));
          return model.ledgerParts(ledger, pool, hues).map((part) => [part.label, part.bytes]);
        }""",
        ledger,
    )
    assert parts == [
        ["Xen & crash kernel", 5],
        ["squeezed's reserve", 2],
        ["dom0", 10],
        ["db · RAM", 20],
        ["db · overhead", 1],
        ["web · RAM", 20],
        ["web · overhead", 1],
        ["Reservations in flight", 1],
        ["Domains of another toolstack", 0],
        ["Free", 40],
        ["Unaccounted", 0],
    ]
    assert sum(bytes_ for _, bytes_ in parts) == ledger["total"]


def test_events_touch_the_hosts_a_vm_is_or_was_on(run: RunModules) -> None:
    touched = run(
        ["records.js"],
        """(r) => {
          const pool = new r.Records();
          const add = (cls, ref, snapshot) =>
            pool.apply({ class: cls, operation: "add", ref, snapshot });
          const away = "OpaqueRef:NULL";
          add("host", "H1", { metrics: "HM1" });
          add("host", "H2", { metrics: "HM2" });
          const vm = { resident_on: "H1", scheduled_to_be_resident_on: away, metrics: "VM1" };
          add("vm", "V", vm);
          // Leaves H1 for H2 (scheduled there).
          const moving = { ...vm, resident_on: away, scheduled_to_be_resident_on: "H2" };
          const moved = add("vm", "V", moving);
          const sorted = (change) => [...pool.hostsTouchedBy(change)].sort();
          return [
            sorted(moved),
            sorted(add("vm_metrics", "VM1", {})),
            sorted(add("host_metrics", "HM1", {})),
            sorted(add("pool", "P", {})),
          ];
        }""",
    )
    assert touched == [["H1", "H2"], ["H2"], ["H1"], []]


def test_keyed_lists_reuse_their_nodes(run: RunModules) -> None:
    same, order = run(
        ["dom.js"],
        """(dom) => {
          const list = document.createElement("ul");
          const make = () => document.createElement("li");
          const show = (node, item) => { node.textContent = item; };
          dom.keyed(list, ["a", "b", "c"], String, make, show);
          const before = [...list.children];
          dom.keyed(list, ["c", "a", "d"], String, make, show);
          const after = [...list.children];
          const reused = [after[0] === before[2], after[1] === before[0]];
          return [reused, after.map((node) => node.textContent)];
        }""",
    )
    assert same == [True, True]
    assert order == ["c", "a", "d"]
