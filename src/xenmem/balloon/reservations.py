"""Reservation records in the key tree (squeezer.md §5.3).

`/squeezed/state/<session>/<reservation_id>` holds the amount in KiB; a child `in-transfer`
holds the domid it was transferred to.
"""

from __future__ import annotations

from collections.abc import Collection

from xenmem.xen.port import Xenstore

__all__ = [
    "STATE_ROOT",
    "parse_kib",
    "read_amount",
    "record_path",
    "total_reservations",
]

STATE_ROOT = "/squeezed/state"


def record_path(session_id: str, reservation_id: str = "") -> str:
    base = f"{STATE_ROOT}/{session_id}"
    return f"{base}/{reservation_id}" if reservation_id else base


def parse_kib(untrusted_value: str | None) -> int | None:
    """A decimal KiB amount from the key tree, or None if absent or not a number."""
    if untrusted_value is None:
        return None
    try:
        return int(untrusted_value.strip())
    except ValueError:
        return None


def read_amount(store: Xenstore, session_id: str, reservation_id: str) -> int | None:
    return parse_kib(store.read(record_path(session_id, reservation_id)))


def total_reservations(store: Xenstore, live_domids: Collection[int]) -> int:
    """KiB held by every session's records, except those transferred to a live domain:
    that memory is accounted through the domain's initial-reservation instead."""
    total = 0
    for session in store.directory(STATE_ROOT):
        for reservation in store.directory(record_path(session)):
            path = record_path(session, reservation)
            in_transfer = parse_kib(store.read(f"{path}/in-transfer"))
            if in_transfer is not None and in_transfer in live_domids:
                continue
            total += parse_kib(store.read(path)) or 0
    return total
