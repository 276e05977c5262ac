"""Layering: data flows downward and the pure cores import nothing effectful (design.md)."""

import ast
from pathlib import Path

import xenmem

PACKAGE_ROOT = Path(xenmem.__file__).parent

# Which imports each part of the package may never make.
FORBIDDEN: dict[str, set[str]] = {
    "memory": {"xenmem.xen", "xenmem.balloon", "xenmem.toolstack", "xenmem.xenapi", "xenmem.cli"}
    | {"asyncio", "time", "random", "socket", "sqlite3", "os", "threading"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def violations(part: str, forbidden: set[str]) -> list[str]:
    found = []
    for path in sorted((PACKAGE_ROOT / part).rglob("*.py")):
        for name in imported_modules(path):
            if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
                found.append(f"{path.relative_to(PACKAGE_ROOT)} imports {name}")
    return found


def test_layers_import_nothing_forbidden() -> None:
    assert all((PACKAGE_ROOT / part).is_dir() for part in FORBIDDEN)
    assert [v for part, bad in FORBIDDEN.items() for v in violations(part, bad)] == []


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import time\nfrom xenmem.xen.port import X\n")
    assert imported_modules(module) == {"time", "xenmem.xen.port"}
