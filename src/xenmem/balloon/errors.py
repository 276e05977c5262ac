"""The errors of squeezed's memory interface (squeezer.md §5.1), as exceptions carrying values.

`name` is the variant's wire name and `params` its payload as strings, so a transport can
serialise any of them the same way. Amounts are KiB.
"""

from __future__ import annotations

__all__ = [
    "CannotFreeThisMuchMemory",
    "DomainsRefusedToCooperate",
    "InternalError",
    "InvalidMemoryValue",
    "MemoryInterfaceError",
    "NoReservation",
    "UnknownReservation",
]


class MemoryInterfaceError(Exception):
    name = "Unknown_error"

    def __init__(self, *params: str | int) -> None:
        super().__init__(self.name, *params)
        self.params = tuple(str(p) for p in params)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(self.params)})"


class CannotFreeThisMuchMemory(MemoryInterfaceError):
    """Not enough memory even with every balloonable domain at dynamic_min: (needed, free) KiB."""

    name = "Cannot_free_this_much_memory"

    def __init__(self, needed_kib: int, free_kib: int) -> None:
        super().__init__(needed_kib, free_kib)
        self.needed_kib = needed_kib
        self.free_kib = free_kib


class DomainsRefusedToCooperate(MemoryInterfaceError):
    """The squeeze failed and these stuck balloonable domains are to blame."""

    name = "Domains_refused_to_cooperate"

    def __init__(self, domids: tuple[int, ...]) -> None:
        super().__init__(*domids)
        self.domids = domids


class UnknownReservation(MemoryInterfaceError):
    name = "Unknown_reservation"

    def __init__(self, reservation_id: str) -> None:
        super().__init__(reservation_id)


class NoReservation(MemoryInterfaceError):
    name = "No_reservation"

    def __init__(self) -> None:
        super().__init__()


class InvalidMemoryValue(MemoryInterfaceError):
    name = "Invalid_memory_value"

    def __init__(self, value: int) -> None:
        super().__init__(value)


class InternalError(MemoryInterfaceError):
    name = "Internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
