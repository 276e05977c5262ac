"""The served datamodel: every class, and what the store needs to know about them."""

from __future__ import annotations

from collections.abc import Mapping

from xenmem.db import Relation, Schema
from xenmem.errors import INTERNAL_ERROR
from xenmem.toolstack import host
from xenmem.toolstack.internal import INTERNAL_SCHEMAS
from xenmem.xenapi.datamodel import REQUIRED, Model, Qualifier
from xenmem.xenapi.datamodel_host import DATA_SOURCE, HOST, HOST_METRICS, POOL
from xenmem.xenapi.datamodel_session import EVENT, SESSION, TASK
from xenmem.xenapi.datamodel_vm import VM, VM_METRICS
from xenmem.xenapi.types import ApiType, decode

__all__ = [
    "INDEXES",
    "MODEL",
    "RELATIONS",
    "decode_arg",
    "decode_record",
    "event_classes",
    "schemas",
]

MODEL = Model(classes=(POOL, HOST, HOST_METRICS, VM, VM_METRICS, SESSION, TASK, EVENT, DATA_SOURCE))

# Set fields xapi derives from a ref field on the other side (one-to-many relations).
RELATIONS = (
    Relation(one_class="host", set_field="resident_VMs", many_class="VM", ref_field="resident_on"),
    Relation(one_class="task", set_field="subtasks", many_class="task", ref_field="subtask_of"),
    Relation(one_class="VM", set_field="snapshots", many_class="VM", ref_field="snapshot_of"),
    Relation(one_class="VM", set_field="children", many_class="VM", ref_field="parent"),
)

# Running totals the toolstack reads instead of scanning every VM (free memory, §4.2),
# and the fields it looks VMs up by.
SUMS = host.SUMS
INDEXES = host.INDEXES


def schemas() -> list[Schema]:
    """The datamodel's database classes and the toolstack's own records."""
    served = [
        Schema(name=cd.name, defaults=cd.defaults(), persist=cd.persist, events=cd.events)
        for cd in MODEL.classes
        if cd.database
    ]
    return served + list(INTERNAL_SCHEMAS)


def event_classes() -> dict[str, str]:
    """Lower-cased class name (as events spell it, §6.1) → datamodel class name."""
    return {cd.name.lower(): cd.name for cd in MODEL.classes if cd.database and cd.events}


def decode_record(cls: str, untrusted: Mapping[str, object]) -> dict[str, object]:
    """A complete constructor record: the RW and StaticRO fields, given or defaulted.

    DynamicRO and unknown members are ignored (clients often pass a whole record back);
    a required field that is missing is INTERNAL_ERROR, as an argument xapi cannot unmarshal.
    """
    record: dict[str, object] = {}
    for f in MODEL.cls(cls).fields:
        if f.qualifier is Qualifier.DYNAMIC_RO:
            continue
        if f.name in untrusted:
            record[f.name] = decode(f.type, untrusted[f.name], f.name, decode_record)
        elif f.default is REQUIRED:
            raise INTERNAL_ERROR(f"missing field {f.name} in {cls} record")
        else:
            record[f.name] = f.initial
    return record


def decode_arg(t: ApiType, value: object, what: str) -> object:
    """An untrusted argument as type `t`, or INTERNAL_ERROR."""
    return decode(t, value, what, decode_record)
