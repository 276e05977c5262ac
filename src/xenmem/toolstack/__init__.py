"""What xapi and xenopsd decide: VM and host messages over the object store, host agents.

Each message body is registered under its wire name with `@implements` (see `context`);
importing this package registers them all in `MESSAGES`.
"""

from xenmem.toolstack import data_sources, host, ledger, lifecycle, vm, vm_clone, vm_memory
from xenmem.toolstack.context import MESSAGES, Context, implements

__all__ = [
    "MESSAGES",
    "Context",
    "data_sources",
    "host",
    "implements",
    "ledger",
    "lifecycle",
    "vm",
    "vm_clone",
    "vm_memory",
]
