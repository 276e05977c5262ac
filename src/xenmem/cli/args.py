"""argparse value types shared by the `xenmem` subcommands; each names the bad value."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from xenmem.memory import DomainType, parse_size
from xenmem.memory.units import SizeParseError

__all__ = [
    "OneLineErrorParser",
    "domain_type_arg",
    "multiplier_arg",
    "size_arg",
    "vcpus_arg",
]


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad usage is one line on stderr and exit status 2, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def size_arg(text: str) -> int:
    """A size in bytes, with xe's suffixes (4GiB, 512MiB, 4g, plain bytes)."""
    try:
        return parse_size(text)
    except SizeParseError as error:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: expecting a non-negative integer "
            "(possibly with suffix KiB, MiB, GiB, TiB)"
        ) from error


def vcpus_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid vCPU count {text!r}: expecting an integer >= 1")
    return value


def multiplier_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1.0):
        raise argparse.ArgumentTypeError(
            f"invalid shadow multiplier {text!r}: expecting a number >= 1.0"
        )
    return value


_DOMAIN_TYPES = [t.value for t in DomainType if t is not DomainType.UNSPECIFIED]


def domain_type_arg(text: str) -> DomainType:
    if text not in _DOMAIN_TYPES:
        raise argparse.ArgumentTypeError(
            f"invalid domain type {text!r}: expecting one of {', '.join(_DOMAIN_TYPES)}"
        )
    return DomainType(text)
