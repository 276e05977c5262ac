"""What a toolstack message receives besides its arguments, and the message registry.

A message body is a function registered under its wire name:

    @implements("host.compute_free_memory")
    def compute_free_memory(ctx: Context, host: str) -> int: ...

so `grep '"host.compute_free_memory"'` finds its declaration (xenapi datamodel) and its
body (here) in one step. Bodies may be plain functions or coroutines; a body that checks
and then writes must do both inside one `ctx.store.transaction()` with no `await` between
them (that is what makes admission atomic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from xenmem.db import NULL_REF, Record, Store
from xenmem.errors import HANDLE_INVALID, INTERNAL_ERROR
from xenmem.toolstack.records import HostView, VmView, read_host, read_vm

if TYPE_CHECKING:
    from xenmem.toolstack.runtime import PoolRuntime

__all__ = ["MESSAGES", "Context", "implements"]

F = TypeVar("F", bound=Callable[..., object])

MESSAGES: dict[str, Callable[..., object]] = {}
"""Wire name → message body; filled by the `implements` decorators at import."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """The store, the caller's session and, for an `Async.` call, its task; and the
    running pool, for messages that act on hosts."""

    store: Store
    session: str = NULL_REF
    task: str = NULL_REF
    runtime: PoolRuntime | None = None

    @property
    def pool(self) -> PoolRuntime:
        if self.runtime is None:
            raise INTERNAL_ERROR("no running pool")
        return self.runtime

    def record(self, cls: str, ref: str) -> Record:
        """The object's record, or HANDLE_INVALID [cls, ref] (protocol §5)."""
        record = self.store.get(cls, ref)
        if record is None:
            raise HANDLE_INVALID(cls, ref)
        return record

    def vm(self, ref: str) -> VmView:
        """The VM's typed view, or HANDLE_INVALID [VM, ref]."""
        return read_vm(self.store, ref)

    def host(self, ref: str) -> HostView:
        """The host's typed view (with its metrics), or HANDLE_INVALID [host, ref]."""
        return read_host(self.store, ref)


def implements(wire_name: str) -> Callable[[F], F]:
    """Register the decorated function as the body of message `wire_name`."""

    def register(function: F) -> F:
        if wire_name in MESSAGES:
            raise ValueError(f"{wire_name} implemented twice")
        MESSAGES[wire_name] = function
        return function

    return register
