"""Records the toolstack keeps for itself, in the same store but outside the XenAPI.

xenopsd keeps its own metadata beside xapi's database (a suspend image's memory size, the
hardware a host stands for); these classes hold that. They are persisted, produce no
events, and no XenAPI message reads them.
"""

from __future__ import annotations

from xenmem.db import Schema

__all__ = ["HOST_BOOT", "INTERNAL_SCHEMAS", "SIMULATED_HOST", "SUSPEND_IMAGE"]

SIMULATED_HOST = "xenmem_simulated_host"
"""Keyed by host ref: the pool file's sizes for it, in bytes, and its CPU count."""

HOST_BOOT = "xenmem_host_boot"
"""Keyed by host ref: what was measured once per host boot (Hypervisor.boot_id), in bytes:
the free memory at boot and Xen's own share."""

SUSPEND_IMAGE = "xenmem_suspend_image"
"""Keyed by VM ref: the memory a suspended VM's image holds, in bytes (xenopsd's
suspend_memory_bytes), which its resume reserves exactly."""

INTERNAL_SCHEMAS = (
    Schema(
        name=SIMULATED_HOST,
        defaults={"memory": 0, "cpus": 1, "dom0_memory": 0, "xen_memory": 0},
        events=False,
    ),
    Schema(name=SUSPEND_IMAGE, defaults={"memory_bytes": 0}, events=False),
    Schema(
        name=HOST_BOOT,
        defaults={"boot_id": "", "boot_free_bytes": 0, "xen_bytes": 0},
        events=False,
    ),
)
