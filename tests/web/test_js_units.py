"""The dashboard's modules that need no page, tested by node's own test runner.

tests/web/js/*.test.mjs import the modules by relative path; `node --test` runs them here,
and a failure shows node's report. The start requirement the page computes is also
compared with xenmem's Python, node evaluating the JavaScript. What needs a page (the DOM
helpers, the views) is tested in Chromium (test_modules.py, test_dashboard.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tests.serving import PATIENCE_S
from xenmem.memory import DomainType, VmMemory, start_requirement

HERE = Path(__file__).parent
MODULES = HERE.parents[1] / "src" / "xenmem" / "web" / "js"
NODE_TESTS = sorted((HERE / "js").glob("*.test.mjs"))
GIB = 2**30
MIB = 2**20


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("the dashboard's module tests need node (Debian's nodejs)")
    return node


def _page_bound() -> set[str]:
    """The modules that touch the page (`document`), directly or through an import."""
    imports = {
        path.name: set(re.findall(r'from "\./([\w.]+)"', path.read_text()))
        for path in MODULES.glob("*.js")
    }
    bound = {name for name in imports if "document" in (MODULES / name).read_text()}
    while grown := {name for name, used in imports.items() if used & bound} - bound:
        bound |= grown
    return bound


def test_every_module_without_the_page_has_node_tests() -> None:
    pure = {path.name for path in MODULES.glob("*.js")} - _page_bound()
    tested = {path.name.removesuffix(".test.mjs") + ".js" for path in NODE_TESTS}
    assert tested == pure
    assert {"bytes.js", "requirement.js", "history.js", "model.js", "records.js"} <= pure


def test_the_node_tests_pass() -> None:
    result = subprocess.run(
        [_node(), "--test", "--test-reporter=tap", *map(str, NODE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=PATIENCE_S,
    )
    report = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"node --test failed:\n{report}", pytrace=False)
    counts = dict(re.findall(r"^# (pass|fail) (\d+)$", result.stdout, re.MULTILINE))
    assert counts["fail"] == "0", report
    assert int(counts["pass"]) >= 2 * len(NODE_TESTS), report


def evaluate(modules: list[str], function: str, *args: object) -> Any:
    """`function(...modules, ...args)` evaluated by node, the modules imported from the
    dashboard's js directory; args and the value cross as JSON."""
    script = f"""
        const [urls, args] = JSON.parse(process.argv[1]);
        const modules = await Promise.all(urls.map((url) => import(url)));
        process.stdout.write(JSON.stringify(({function})(...modules, ...args)));
    """
    urls = [(MODULES / module).as_uri() for module in modules]
    result = subprocess.run(
        [_node(), "--input-type=module", "-e", script, json.dumps([urls, list(args)])],
        capture_output=True,
        text=True,
        check=False,
        timeout=PATIENCE_S,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class PageVm(TypedDict):
    """The page's description of a VM, as requirement.js takes it."""

    domainType: str
    staticMax: int
    dynamicMin: int
    vcpus: int


def test_the_pages_start_requirement_is_the_servers() -> None:
    cases: list[PageVm] = [
        {"domainType": kind, "staticMax": smax, "dynamicMin": smax // 3 + 12345, "vcpus": vcpus}
        for kind in ("hvm", "pvh", "pv", "pv_in_pvh")
        for smax in (256 * MIB, 4 * GIB + 1, 100 * GIB, 1536 * GIB)
        for vcpus in (1, 7, 14, 64)
    ]
    needed = evaluate(
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
