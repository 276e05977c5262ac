"""Layering (design.md): pure layers import no effects, and nothing imports upward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import xenmem

PACKAGE = Path(xenmem.__file__).parent
PURE_BALLOON = ("policy", "stuckness", "core", "health", "config", "errors")
ABOVE_BALLOON = ("xenmem.toolstack", "xenmem.xenapi", "xenmem.cli", "xenmem.web")
EFFECTS = (
    *("xenmem.xen", "xenmem.toolstack", "xenmem.xenapi"),
    *("asyncio", "time", "random", "os", "socket", "sqlite3", "threading"),
)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.name} imports {name}"
        for path in paths
        for name in sorted(imports_of(path))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_memory_the_balloon_core_and_rrds_are_pure() -> None:
    pure = modules("memory") + modules("rrd")
    pure += [PACKAGE / "balloon" / f"{name}.py" for name in PURE_BALLOON]
    assert offending(pure, (*EFFECTS, "xenmem.balloon.squeezer", "xenmem.balloon.service")) == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "memory",
            ("xenmem.xen", "xenmem.balloon", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli"),
        ),
        ("xen", ("xenmem.balloon", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli")),
        (
            "rrd",
            ("xenmem.xen", "xenmem.balloon", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli"),
        ),
        ("balloon", ("xenmem.xen.simulator", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli")),
        ("toolstack", ("xenmem.xen.simulator", "xenmem.xenapi", "xenmem.cli")),
        ("xenapi", ("xenmem.xen.simulator", "xenmem.cli")),
        ("web", ("xenmem.xen.simulator",)),
    ],
)
def test_nothing_imports_upward(package: str, forbidden: tuple[str, ...]) -> None:
    assert offending(modules(package), forbidden) == []


# The composition root that picks each host's hypervisor, and the `simulate` command
# that runs squeezed against the reference simulator's scenarios.
KNOWS_THE_SIMULATOR = {"cli/pool.py", "cli/scenario.py"}


def test_only_the_composition_root_knows_the_simulator() -> None:
    above_the_port = [p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(PACKAGE / "xen")]
    knowing = {
        str(path.relative_to(PACKAGE))
        for path in above_the_port
        if offending([path], ("xenmem.xen.simulator",))
    }
    assert knowing == KNOWS_THE_SIMULATOR


def toolstack_imports() -> dict[str, set[str]]:
    """Toolstack module → the toolstack modules it imports, type-only imports included."""
    graph = {}
    for path in modules("toolstack"):
        name = f"xenmem.toolstack.{path.stem}"
        graph[name] = {
            imported
            for imported in imports_of(path)
            if imported.startswith("xenmem.toolstack.") and imported != name
        }
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph`, or [] if it has none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return []


def test_the_toolstack_has_no_import_cycle() -> None:
    assert cycle_in(toolstack_imports()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_record_views_import_nothing_else_from_the_toolstack() -> None:
    assert toolstack_imports()["xenmem.toolstack.records"] == set()


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import time\nfrom xenmem.xen.port import XenError\n", encoding="utf-8")
    assert len(offending([module], EFFECTS)) == 2
