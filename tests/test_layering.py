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


def test_memory_and_the_balloon_core_are_pure() -> None:
    pure = modules("memory") + [PACKAGE / "balloon" / f"{name}.py" for name in PURE_BALLOON]
    assert offending(pure, (*EFFECTS, "xenmem.balloon.squeezer", "xenmem.balloon.service")) == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "memory",
            ("xenmem.xen", "xenmem.balloon", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli"),
        ),
        ("xen", ("xenmem.balloon", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli")),
        ("balloon", ("xenmem.xen.simulator", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli")),
        ("toolstack", ("xenmem.xenapi", "xenmem.cli")),
    ],
)
def test_nothing_imports_upward(package: str, forbidden: tuple[str, ...]) -> None:
    assert offending(modules(package), forbidden) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import time\nfrom xenmem.xen.port import XenError\n", encoding="utf-8")
    assert len(offending([module], EFFECTS)) == 2
