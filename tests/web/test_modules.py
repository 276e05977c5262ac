"""The dashboard's modules that need a page, on their own, in the browser the page runs in.

Each check imports modules from the served page and calls them from a small JavaScript
function; the results are compared here. The modules that need no page are tested by node
(test_js_units.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from selenium import webdriver

from tests.serving import RunningServer

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
