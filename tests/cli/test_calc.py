"""`xenmem calc`, run as the installed command."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

XENMEM = shutil.which("xenmem", path=str(Path(sys.executable).parent))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    assert XENMEM is not None, "the xenmem command is not installed in this environment"
    return subprocess.run([XENMEM, "calc", *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["overhead", "--domain-type", "hvm", "--static-max", "4GiB", "--vcpus", "2"], "38797312"),
        (["overhead", "--domain-type", "pv", "--static-max", "1g", "--vcpus", "1"], "11534336"),
        (
            ["overhead", "--domain-type", "pv", "--static-max", "1024MiB", "--vcpus", "1"]
            + ["--shadow-multiplier", "2"],
            "20971520",
        ),
        (
            ["overhead", "--domain-type", "pv_in_pvh", "--static-max", "8GiB", "--vcpus", "4"],
            "193986560",
        ),
        (
            ["footprint", "--domain-type", "hvm", "--static-max", "4GiB", "--target", "2GiB"]
            + ["--vcpus", "2"],
            "2186280960",
        ),
        (
            ["footprint", "--domain-type", "pv", "--static-max", "1GiB", "--target", "1GiB"]
            + ["--vcpus", "1", "--shadow-multiplier", "2"],
            str((1024 + 11) * 1048576),
        ),
        (
            ["footprint", "--domain-type", "pv_in_pvh", "--static-max", "8GiB", "--target", "1GiB"]
            + ["--vcpus", "4"],
            "8783921152",
        ),
        (["maximise", "--domain-type", "hvm", "--vcpus", "2", "--total", "4GiB"], "4256169984"),
        (
            ["maximise", "--domain-type", "hvm", "--vcpus", "2", "--total", "4294967296"]
            + ["--approximate"],
            str(3988 * 1048576),
        ),
    ],
)
def test_prints_the_number_alone(args: list[str], expected: str) -> None:
    result = run(*args)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected + "\n", "")


def test_human_adds_units() -> None:
    result = run("maximise", "--domain-type", "hvm", "--vcpus", "2", "--total", "4GiB", "--human")
    assert result.stdout == "4256169984 (4059 MiB, 3.96 GiB)\n"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["overhead", "--domain-type", "hvm", "--static-max", "-4GiB", "--vcpus", "2"], "'-4GiB'"),
        (["overhead", "--domain-type", "hvm", "--static-max", "four", "--vcpus", "2"], "'four'"),
        (["overhead", "--domain-type", "hvm", "--static-max", "4PiB", "--vcpus", "2"], "'4PiB'"),
        (["overhead", "--domain-type", "hvx", "--static-max", "4GiB", "--vcpus", "2"], "'hvx'"),
        (["overhead", "--domain-type", "hvm", "--static-max", "4GiB", "--vcpus", "0"], "'0'"),
        (["overhead", "--domain-type", "hvm", "--static-max", "4GiB", "--vcpus", "-1"], "'-1'"),
        (
            ["overhead", "--domain-type", "hvm", "--static-max", "4GiB", "--vcpus", "2"]
            + ["--shadow-multiplier", "0.5"],
            "'0.5'",
        ),
        (
            ["overhead", "--domain-type", "hvm", "--static-max", "4GiB", "--vcpus", "2"]
            + ["--shadow-multiplier", "nan"],
            "'nan'",
        ),
        (
            ["footprint", "--domain-type", "hvm", "--static-max", "1GiB", "--target", "2GiB"]
            + ["--vcpus", "2"],
            "2147483648",
        ),
        (["maximise", "--domain-type", "hvm", "--vcpus", "2", "--total", "-1"], "'-1'"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_value(args: list[str], named: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert named in result.stderr
