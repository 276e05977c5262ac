"""XenAPI errors as values: declared once as `ErrorDef`, raised as `XenAPIError`.

Every code and parameter list restates xapi's wire behaviour (spec xapi-memory.md §7,
xenapi-protocol.md). Parameters are always strings on the wire; `ErrorDef.__call__`
turns ints into decimal strings so callers cannot get the form wrong.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

__all__ = [
    "BALLOONING_TIMEOUT_BEFORE_MIGRATION",
    "EVENTS_LOST",
    "EVENT_FROM_TOKEN_PARSE_FAILURE",
    "HANDLE_INVALID",
    "HOST_DISABLED",
    "HOST_NOT_ENOUGH_FREE_MEMORY",
    "HOST_NOT_ENOUGH_PCPUS",
    "HOST_NOT_LIVE",
    "INTERNAL_ERROR",
    "INVALID_VALUE",
    "MAP_DUPLICATE_KEY",
    "MEMORY_CONSTRAINT_VIOLATION",
    "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
    "MEMORY_CONSTRAINT_VIOLATION_ORDER",
    "MESSAGE_METHOD_UNKNOWN",
    "MESSAGE_PARAMETER_COUNT_MISMATCH",
    "MESSAGE_REMOVED",
    "NO_ASYNC_MODE",
    "NO_HOSTS_AVAILABLE",
    "OPERATION_BLOCKED",
    "OPERATION_NOT_ALLOWED",
    "OTHER_OPERATION_IN_PROGRESS",
    "RBAC_PERMISSION_DENIED",
    "SESSION_AUTHENTICATION_FAILED",
    "SESSION_INVALID",
    "SESSION_NOT_REGISTERED",
    "TASK_CANCELLED",
    "TOO_MANY_PENDING_TASKS",
    "UUID_INVALID",
    "VALUE_NOT_SUPPORTED",
    "VMS_FAILED_TO_COOPERATE",
    "VM_BAD_POWER_STATE",
    "VM_IS_IMMOBILE",
    "VM_IS_SNAPSHOT",
    "VM_IS_TEMPLATE",
    "VM_IS_USING_NESTED_VIRT",
    "VM_MEMORY_TARGET_WAIT_TIMEOUT",
    "ErrorDef",
    "XenAPIError",
    "all_error_defs",
    "logged_internal_error",
]

_REGISTRY: dict[str, ErrorDef] = {}


class XenAPIError(Exception):
    """A XenAPI failure: xapi's error code and its string parameters."""

    def __init__(self, code: str, params: tuple[str, ...] = ()) -> None:
        super().__init__(code, *params)
        self.code = code
        self.params = params

    def __str__(self) -> str:
        return f"{self.code}: {list(self.params)}" if self.params else self.code

    def __repr__(self) -> str:
        return f"XenAPIError({self.code!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, XenAPIError):
            return NotImplemented
        return (self.code, self.params) == (other.code, other.params)

    def __hash__(self) -> int:
        return hash((self.code, self.params))

    @property
    def description(self) -> list[str]:
        """The wire form: `[code, *params]` (xapi's ErrorDescription)."""
        return [self.code, *self.params]


@dataclass(frozen=True)
class ErrorDef:
    """One XenAPI error code and the parameters xapi actually sends with it.

    `variadic` errors (e.g. VMS_FAILED_TO_COOPERATE with one ref per VM) take any number
    of parameters; all others must be given exactly the declared ones.
    """

    code: str
    params: tuple[str, ...] = ()
    variadic: bool = False

    def __post_init__(self) -> None:
        if self.code in _REGISTRY and _REGISTRY[self.code] != self:
            raise ValueError(f"error {self.code} declared twice, differently")
        _REGISTRY[self.code] = self

    def __call__(self, *params: str | int) -> XenAPIError:
        if not self.variadic and len(params) != len(self.params):
            raise TypeError(f"{self.code} takes {list(self.params)}, got {len(params)} params")
        return XenAPIError(self.code, tuple(str(p) for p in params))

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, XenAPIError) and error.code == self.code


def all_error_defs() -> dict[str, ErrorDef]:
    """Every declared error, by code."""
    return dict(_REGISTRY)


# Memory errors (xapi-memory.md §7). The parameter tuples list what xapi sends, which
# sometimes differs from what its datamodel documents (noted where so).

# Documented with [constraint]; xapi sends no parameter.
MEMORY_CONSTRAINT_VIOLATION = ErrorDef("MEMORY_CONSTRAINT_VIOLATION")
MEMORY_CONSTRAINT_VIOLATION_ORDER = ErrorDef("MEMORY_CONSTRAINT_VIOLATION_ORDER")
MEMORY_CONSTRAINT_VIOLATION_MAXPIN = ErrorDef("MEMORY_CONSTRAINT_VIOLATION_MAXPIN", ("reason",))
HOST_NOT_ENOUGH_FREE_MEMORY = ErrorDef("HOST_NOT_ENOUGH_FREE_MEMORY", ("needed", "available"))
INVALID_VALUE = ErrorDef("INVALID_VALUE", ("field", "value"))
VALUE_NOT_SUPPORTED = ErrorDef("VALUE_NOT_SUPPORTED", ("field", "value", "reason"))
NO_HOSTS_AVAILABLE = ErrorDef("NO_HOSTS_AVAILABLE")
# Documented with no parameter; xapi sends one VM ref per guest that refused to balloon.
VMS_FAILED_TO_COOPERATE = ErrorDef("VMS_FAILED_TO_COOPERATE", variadic=True)
BALLOONING_TIMEOUT_BEFORE_MIGRATION = ErrorDef("BALLOONING_TIMEOUT_BEFORE_MIGRATION", ("vm",))
INTERNAL_ERROR = ErrorDef("INTERNAL_ERROR", ("message",))

# Operation checks (xapi-memory.md §3.4, xapi_vm_lifecycle).
OPERATION_BLOCKED = ErrorDef("OPERATION_BLOCKED", ("ref", "code"))
VM_BAD_POWER_STATE = ErrorDef("VM_BAD_POWER_STATE", ("vm", "expected", "actual"))
OTHER_OPERATION_IN_PROGRESS = ErrorDef(
    "OTHER_OPERATION_IN_PROGRESS", ("class", "object", "operation_type", "operation_ref")
)
VM_IS_TEMPLATE = ErrorDef("VM_IS_TEMPLATE", ("vm", "operation"))
VM_IS_SNAPSHOT = ErrorDef("VM_IS_SNAPSHOT", ("vm", "operation"))
VM_IS_USING_NESTED_VIRT = ErrorDef("VM_IS_USING_NESTED_VIRT", ("vm",))
VM_IS_IMMOBILE = ErrorDef("VM_IS_IMMOBILE", ("vm",))
OPERATION_NOT_ALLOWED = ErrorDef("OPERATION_NOT_ALLOWED", ("reason",))
# More than 100 calls already wait for other operations to end (xapi `queue_thread`).
TOO_MANY_PENDING_TASKS = ErrorDef("TOO_MANY_PENDING_TASKS")

# Protocol, session, event and task errors (xenapi-protocol.md §2.2, §4-6).

MESSAGE_METHOD_UNKNOWN = ErrorDef("MESSAGE_METHOD_UNKNOWN", ("method",))
# Both counts exclude the session argument (§5).
MESSAGE_PARAMETER_COUNT_MISMATCH = ErrorDef(
    "MESSAGE_PARAMETER_COUNT_MISMATCH", ("method", "expected", "received")
)
MESSAGE_REMOVED = ErrorDef("MESSAGE_REMOVED")
HANDLE_INVALID = ErrorDef("HANDLE_INVALID", ("class", "handle"))
UUID_INVALID = ErrorDef("UUID_INVALID", ("class", "uuid"))
SESSION_INVALID = ErrorDef("SESSION_INVALID", ("handle",))
# Documented with no parameter; xapi sends the user name and a reason (§4).
SESSION_AUTHENTICATION_FAILED = ErrorDef("SESSION_AUTHENTICATION_FAILED", ("uname", "reason"))
SESSION_NOT_REGISTERED = ErrorDef("SESSION_NOT_REGISTERED", ("handle",))
EVENTS_LOST = ErrorDef("EVENTS_LOST")
RBAC_PERMISSION_DENIED = ErrorDef("RBAC_PERMISSION_DENIED", ("permission", "message"))
MAP_DUPLICATE_KEY = ErrorDef("MAP_DUPLICATE_KEY", ("class", "field", "uuid", "key"))
EVENT_FROM_TOKEN_PARSE_FAILURE = ErrorDef("EVENT_FROM_TOKEN_PARSE_FAILURE", ("token",))
TASK_CANCELLED = ErrorDef("TASK_CANCELLED", ("task",))
# Not a datamodel error: the text xapi sends for `Async.` on a message without async mode.
NO_ASYNC_MODE = ErrorDef("Fault", ("reason",))

# Admission, lifecycle and live memory (xapi-memory.md §4.4, §6, §7).
HOST_NOT_LIVE = ErrorDef("HOST_NOT_LIVE")
HOST_DISABLED = ErrorDef("HOST_DISABLED", ("host",))
HOST_NOT_ENOUGH_PCPUS = ErrorDef("HOST_NOT_ENOUGH_PCPUS", ("vcpus", "pcpus"))
VM_MEMORY_TARGET_WAIT_TIMEOUT = ErrorDef("VM_MEMORY_TARGET_WAIT_TIMEOUT", ("task",))


def logged_internal_error(log: logging.Logger, what: str) -> XenAPIError:
    """INTERNAL_ERROR for the unexpected exception being handled, logged with its
    traceback under a fresh reference.

    The client gets the reference only: an exception's text may name files of the state
    directory (xapi sends the text itself).
    """
    reference = uuid.uuid4().hex[:12]
    log.exception("internal error %s: %s failed", reference, what)
    return INTERNAL_ERROR(f"internal error {reference}; details are in the server's log")
