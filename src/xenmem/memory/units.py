"""Memory units and rounding (xapi-memory.md §1).

Memory is int bytes at every boundary. Two conversion families exist: *free* conversions
(for amounts that are available) round down, *used* conversions (for amounts that are
needed) round up. Every formula that needs KiB, MiB or pages converts through here.
"""

from __future__ import annotations

import re

__all__ = [
    "BYTES_PER_KIB",
    "BYTES_PER_MIB",
    "BYTES_PER_PAGE",
    "INT64_MAX",
    "INT64_MIN",
    "KIB_PER_MIB",
    "KIB_PER_PAGE",
    "PAGES_PER_MIB",
    "SizeParseError",
    "bytes_of_kib",
    "bytes_of_mib",
    "bytes_of_pages",
    "divide_rounding_up",
    "kib_of_bytes_free",
    "kib_of_bytes_used",
    "kib_of_mib",
    "kib_of_pages",
    "mib_of_bytes_free",
    "mib_of_bytes_used",
    "mib_of_kib_free",
    "mib_of_kib_used",
    "pages_of_kib_free",
    "pages_of_kib_used",
    "pages_of_mib",
    "parse_size",
    "round_down_to_mib",
]

BYTES_PER_KIB = 1024
BYTES_PER_MIB = 1024 * 1024
# The range of the API's int and of xapi's Int64 arithmetic.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
BYTES_PER_PAGE = 4096
KIB_PER_PAGE = 4
KIB_PER_MIB = 1024
PAGES_PER_MIB = 256


def divide_rounding_up(numerator: int, denominator: int) -> int:
    """ceil(numerator / denominator) for a non-negative numerator, exactly."""
    return -(-numerator // denominator)


def bytes_of_kib(kib: int) -> int:
    return kib * BYTES_PER_KIB


def bytes_of_mib(mib: int) -> int:
    return mib * BYTES_PER_MIB


def bytes_of_pages(pages: int) -> int:
    return pages * BYTES_PER_PAGE


def kib_of_mib(mib: int) -> int:
    return mib * KIB_PER_MIB


def kib_of_pages(pages: int) -> int:
    return pages * KIB_PER_PAGE


def pages_of_mib(mib: int) -> int:
    return mib * PAGES_PER_MIB


def kib_of_bytes_free(n_bytes: int) -> int:
    return n_bytes // BYTES_PER_KIB


def kib_of_bytes_used(n_bytes: int) -> int:
    return divide_rounding_up(n_bytes, BYTES_PER_KIB)


def mib_of_bytes_free(n_bytes: int) -> int:
    return n_bytes // BYTES_PER_MIB


def mib_of_bytes_used(n_bytes: int) -> int:
    return divide_rounding_up(n_bytes, BYTES_PER_MIB)


def mib_of_kib_free(kib: int) -> int:
    return kib // KIB_PER_MIB


def mib_of_kib_used(kib: int) -> int:
    return divide_rounding_up(kib, KIB_PER_MIB)


def pages_of_kib_free(kib: int) -> int:
    return kib // KIB_PER_PAGE


def pages_of_kib_used(kib: int) -> int:
    return divide_rounding_up(kib, KIB_PER_PAGE)


def round_down_to_mib(n_bytes: int) -> int:
    """The largest whole number of MiB not above `n_bytes`, in bytes."""
    return bytes_of_mib(mib_of_bytes_free(n_bytes))


class SizeParseError(ValueError):
    """A size string that xe would refuse; the message is xe's own wording."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(
            f"Failed to parse field '{field}': expecting an integer "
            f"(possibly with suffix KiB, MiB, GiB, TiB), got '{text}'"
        )
        self.field = field
        self.text = text


_SIZE_MULTIPLIERS = {
    "": 1,
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"([0-9]+)\s*([A-Za-z]*)", re.ASCII)


def parse_size(text: str, field: str = "size") -> int:
    """Bytes from an xe size string: digits, optional whitespace, optional suffix.

    Suffixes are case-insensitive and binary ("kb" = 1024). Negative numbers and unknown
    suffixes raise `SizeParseError` carrying xe's message naming `field`.
    """
    match = _SIZE_RE.fullmatch(text.strip())
    multiplier = _SIZE_MULTIPLIERS.get(match.group(2).lower()) if match else None
    if match is None or multiplier is None:
        raise SizeParseError(field, text)
    return int(match.group(1)) * multiplier
