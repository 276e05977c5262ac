"""squeezed in Python: the proportional policy, the squeezer loop and the reservation interface.

`policy`, `stuckness`, `core` and `health` are pure (no I/O, no clock); `squeezer` drives
them through the hypervisor and clock ports; `service` is the §5 memory interface.
"""

from xenmem.balloon.config import SqueezerConfig
from xenmem.balloon.core import (
    Action,
    AdjustTargets,
    Decision,
    Failed,
    Iteration,
    SqueezerState,
    Success,
    one_iteration,
)
from xenmem.balloon.errors import (
    CannotFreeThisMuchMemory,
    DomainsRefusedToCooperate,
    InternalError,
    InvalidMemoryValue,
    MemoryInterfaceError,
    NoReservation,
    UnknownReservation,
)
from xenmem.balloon.health import BalloonHealth
from xenmem.balloon.policy import Domain, Host, compute_target_adjustments
from xenmem.balloon.service import AutoBalloon, DomainZeroPolicy, FixedSize, MemoryService
from xenmem.balloon.squeezer import Squeezer

__all__ = [
    "Action",
    "AdjustTargets",
    "AutoBalloon",
    "BalloonHealth",
    "CannotFreeThisMuchMemory",
    "Decision",
    "Domain",
    "DomainZeroPolicy",
    "DomainsRefusedToCooperate",
    "Failed",
    "FixedSize",
    "Host",
    "InternalError",
    "InvalidMemoryValue",
    "Iteration",
    "MemoryInterfaceError",
    "MemoryService",
    "NoReservation",
    "Squeezer",
    "SqueezerConfig",
    "SqueezerState",
    "Success",
    "UnknownReservation",
    "compute_target_adjustments",
    "one_iteration",
]
