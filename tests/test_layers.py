"""Layering: data flows downward, nothing imports upward (design guide)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "xenmem"

# package -> packages (and modules) it must never import
FORBIDDEN = {
    "memory": {
        "xenmem.db",
        "xenmem.toolstack",
        "xenmem.xenapi",
        "xenmem.cli",
        "asyncio",
        "time",
        "random",
    },
    "db": {"xenmem.toolstack", "xenmem.xenapi", "xenmem.cli"},
    "toolstack": {"xenmem.xenapi", "xenmem.cli"},
    "xenapi": {"xenmem.cli"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    files = sorted((SRC / package).glob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            for banned in FORBIDDEN[package]:
                assert name != banned and not name.startswith(banned + "."), (path.name, name)
