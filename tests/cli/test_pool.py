"""The pool file and the simulated hosts' defaults (the composition root, `xenmem.cli.pool`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenmem.cli.pool import PoolFileError, dom0_memory_default, load_pool_file, xen_memory_default
from xenmem.toolstack.pool import PoolHost

MIB = 2**20
GIB = 2**30


def test_installer_defaults() -> None:
    assert dom0_memory_default(16 * GIB) == 1856 * MIB
    assert dom0_memory_default(64 * GIB) == 4304 * MIB
    assert dom0_memory_default(256 * GIB) == 8 * GIB
    # 32 MiB + 10.7 per mille of RAM (an estimate) + a 256 MiB crash kernel.
    assert xen_memory_default(64 * GIB) == (32 * 1024 + 718064 + 256 * 1024) * 1024


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[pool]\n", "at least one"),
        ("[[host]]\nmemory = '1GiB'\n", "needs a name"),
        ("[[host]]\nname = 'a'\nmemory = 'lots'\n", "must be positive"),
        ("[[host]]\nname = 'a'\nmemory = '4GiB'\ncpus = 0\n", "must be positive"),
        (
            "[[host]]\nname = 'a'\nmemory = '4GiB'\n[[host]]\nname = 'a'\nmemory = '4GiB'\n",
            "unique",
        ),
        ("[pool]\ndmc = 'yes'\n[[host]]\nname = 'a'\nmemory = '4GiB'\n", "dmc a boolean"),
        ("not toml = = \n", "pool.toml"),
    ],
)
def test_bad_pool_files(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "pool.toml"
    path.write_text(text)
    with pytest.raises(PoolFileError, match=problem):
        load_pool_file(path)


def test_pool_file_defaults(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    path.write_text("[[host]]\nname = 'a'\nmemory = '16g'\n")
    spec = load_pool_file(path)
    assert spec.dmc is True
    assert spec.hosts == (
        PoolHost(
            name="a",
            memory=16 * GIB,
            cpus=1,
            dom0_memory=1856 * MIB,
            xen_memory=xen_memory_default(16 * GIB),
        ),
    )
