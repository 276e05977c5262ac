"""xapi's built-in RBAC roles, strongest first; each role holds every permission of the
roles below it, so a message is allowed to a role and everything above it."""

from __future__ import annotations

__all__ = [
    "POOL_ADMIN",
    "POOL_OPERATOR",
    "READ_ONLY",
    "ROLES",
    "VM_ADMIN",
    "VM_OPERATOR",
    "VM_POWER_ADMIN",
    "at_least",
]

POOL_ADMIN = "pool-admin"
POOL_OPERATOR = "pool-operator"
VM_POWER_ADMIN = "vm-power-admin"
VM_ADMIN = "vm-admin"
VM_OPERATOR = "vm-operator"
READ_ONLY = "read-only"

ROLES = (POOL_ADMIN, POOL_OPERATOR, VM_POWER_ADMIN, VM_ADMIN, VM_OPERATOR, READ_ONLY)


def at_least(role: str) -> frozenset[str]:
    """`role` and every stronger one."""
    return frozenset(ROLES[: ROLES.index(role) + 1])
