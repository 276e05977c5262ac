import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenmem.memory import units
from xenmem.memory.units import SizeParseError, parse_size

MIB = 1048576


@pytest.mark.parametrize(
    ("n_bytes", "kib_free", "kib_used", "mib_free", "mib_used"),
    [
        (0, 0, 0, 0, 0),
        (1, 0, 1, 0, 1),
        (1023, 0, 1, 0, 1),
        (1024, 1, 1, 0, 1),
        (1025, 1, 2, 0, 1),
        (MIB - 1, 1023, 1024, 0, 1),
        (MIB, 1024, 1024, 1, 1),
        (MIB + 1, 1024, 1025, 1, 2),
    ],
)
def test_free_conversions_round_down_used_round_up(
    n_bytes: int, kib_free: int, kib_used: int, mib_free: int, mib_used: int
) -> None:
    assert units.kib_of_bytes_free(n_bytes) == kib_free
    assert units.kib_of_bytes_used(n_bytes) == kib_used
    assert units.mib_of_bytes_free(n_bytes) == mib_free
    assert units.mib_of_bytes_used(n_bytes) == mib_used


def test_page_and_kib_conversions() -> None:
    assert units.pages_of_mib(1) == 256
    assert units.kib_of_pages(256) == 1024
    assert units.bytes_of_pages(1) == 4096
    assert units.pages_of_kib_free(7) == 1
    assert units.pages_of_kib_used(7) == 2
    assert units.mib_of_kib_free(2047) == 1
    assert units.mib_of_kib_used(1025) == 2
    assert units.bytes_of_kib(73728) == 75497472
    assert units.round_down_to_mib(4256170000) == 4256169984


@given(st.integers(min_value=0, max_value=2**70))
def test_nested_kib_then_mib_ceiling_equals_direct_ceiling(n_bytes: int) -> None:
    # xapi converts policy bytes to KiB and then MiB, each rounding up.
    assert units.mib_of_kib_used(units.kib_of_bytes_used(n_bytes)) == units.mib_of_bytes_used(
        n_bytes
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("4096", 4096),
        ("12b", 12),
        ("12 bytes", 12),
        ("4k", 4096),
        ("4KB", 4096),
        ("4KiB", 4096),
        ("512MiB", 512 * MIB),
        ("512 mb", 512 * MIB),
        ("4g", 4 * 1024**3),
        ("4GiB", 4 * 1024**3),
        ("4GB", 4 * 1024**3),
        ("2T", 2 * 1024**4),
        ("2tib", 2 * 1024**4),
    ],
)
def test_parse_size_accepts_xe_suffixes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "-1", "-4GiB", "4 GiBs", "4PiB", "1.5GiB", "GiB", "0x10"])
def test_parse_size_rejects_with_xe_message(text: str) -> None:
    with pytest.raises(SizeParseError) as caught:
        parse_size(text, "memory-static-max")
    assert str(caught.value) == (
        "Failed to parse field 'memory-static-max': expecting an integer "
        f"(possibly with suffix KiB, MiB, GiB, TiB), got '{text}'"
    )
