"""The declarative datamodel: classes, fields, messages; the rest of the server reads it.

Like xapi's IDL, each class declares its fields (wire name, type, qualifier, default) and
its own messages; the implicit per-class messages (get_all, get_record, get_<field>,
set_<field> for RW fields, add_to_/remove_from_ for RW maps, ...) are generated here
(protocol §5), so dispatch, records, listMethods and event snapshots can never disagree
with the declarations. `Model.check` runs when the model loads.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

from xenmem.errors import (
    HANDLE_INVALID,
    MAP_DUPLICATE_KEY,
    MESSAGE_REMOVED,
    UUID_INVALID,
    ErrorDef,
    XenAPIError,
)
from xenmem.xenapi.roles import READ_ONLY, ROLES, at_least
from xenmem.xenapi.types import (
    BOOL,
    DATETIME,
    EPOCH,
    FLOAT,
    INT,
    STRING,
    AnyValue,
    ApiType,
    Enum,
    Map,
    Prim,
    RecordOf,
    Ref,
    Set,
)

__all__ = [
    "REQUIRED",
    "ClassDef",
    "Field",
    "Kind",
    "Message",
    "Model",
    "Param",
    "Qualifier",
    "default_for",
    "dro",
    "rw",
    "sro",
]


class Qualifier(enum.StrEnum):
    """RW: constructor + setter; StaticRO: constructor only; DynamicRO: neither (§8)."""

    RW = "RW"
    STATIC_RO = "StaticRO"
    DYNAMIC_RO = "DynamicRO"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()
"""The default of a constructor field that has none: the caller must give it."""


def default_for(t: ApiType) -> object:
    """The natural default of a type: "", 0, 0.0, false, the epoch, NULL, empty."""
    match t:
        case Prim():
            return {STRING: "", INT: 0, FLOAT: 0.0, BOOL: False, DATETIME: EPOCH}[t]
        case Ref():
            return "OpaqueRef:NULL"
        case Enum(values=values):
            return values[0]
        case Set():
            return []
        case Map() | RecordOf():
            return {}
        case AnyValue():
            return ""


@dataclass(frozen=True, kw_only=True)
class Field:
    name: str
    type: ApiType
    qualifier: Qualifier = Qualifier.DYNAMIC_RO
    default: object = None  # None: default_for(type); REQUIRED: constructor must give it
    removed: bool = False  # lifecycle Removed: the getter answers MESSAGE_REMOVED (§5)
    doc: str = ""

    @property
    def initial(self) -> object:
        """The value a new record starts with when the constructor says nothing."""
        if self.default is None or self.default is REQUIRED:
            return default_for(self.type)
        return self.default


@dataclass(frozen=True, kw_only=True)
class Param:
    name: str
    type: ApiType
    default: object = REQUIRED


class Kind(enum.Enum):
    """What generic code a message runs; CUSTOM ones have an implementation by wire name."""

    CUSTOM = "custom"
    GET_ALL = "get_all"
    GET_ALL_RECORDS = "get_all_records"
    GET_RECORD = "get_record"
    GET_BY_UUID = "get_by_uuid"
    GET_BY_NAME_LABEL = "get_by_name_label"
    GET_FIELD = "get_field"
    SET_FIELD = "set_field"
    ADD_TO_MAP = "add_to_map"
    REMOVE_FROM_MAP = "remove_from_map"
    ADD_TO_SET = "add_to_set"
    REMOVE_FROM_SET = "remove_from_set"

    @property
    def writes(self) -> bool:
        """An implicit setter: set_, add_to_, remove_from_, add_ or remove_."""
        return self in _SETTERS


_SETTERS = frozenset(
    (Kind.SET_FIELD, Kind.ADD_TO_MAP, Kind.REMOVE_FROM_MAP, Kind.ADD_TO_SET, Kind.REMOVE_FROM_SET)
)


@dataclass(frozen=True, kw_only=True)
class Message:
    """One XenAPI call. `params` exclude the session, which `session` says is taken first."""

    cls: str
    name: str
    params: tuple[Param, ...] = ()
    result: ApiType | None = None  # None: void
    roles: frozenset[str] = at_least(READ_ONLY)
    is_async: bool = False
    errors: tuple[ErrorDef, ...] = ()
    session: bool = True
    kind: Kind = Kind.CUSTOM
    field: str = ""
    doc: str = ""

    @property
    def wire_name(self) -> str:
        return f"{self.cls}.{self.name}"

    @property
    def required_count(self) -> int:
        return sum(1 for p in self.params if p.default is REQUIRED)

    def declares(self, error: XenAPIError) -> bool:
        """Whether the message's body may raise `error`: one it declares, or a reference
        argument that names no object (HANDLE_INVALID, which any message with one may
        give). Errors the dispatcher raises before the body runs (session, RBAC,
        parameters) are not the body's."""
        return error.code == HANDLE_INVALID.code or any(e.code == error.code for e in self.errors)


@dataclass(frozen=True, kw_only=True)
class ClassDef:
    name: str
    fields: tuple[Field, ...]
    messages: tuple[Message, ...] = ()
    doc: str = ""
    database: bool = True  # has records and the implicit messages
    persist: bool = True  # survives a restart (sessions and tasks do not, as in xapi)
    events: bool = True  # appears in event.from and valid_ref_counts
    enumerable: bool = True  # has get_all / get_all_records
    writer_roles: frozenset[str] = at_least(ROLES[0])
    writer_errors: tuple[ErrorDef, ...] = ()  # what every implicit setter may raise besides

    def field(self, name: str) -> Field:
        return self._fields_by_name[name]

    @property
    def _fields_by_name(self) -> Mapping[str, Field]:
        return {f.name: f for f in self.fields}

    def defaults(self) -> dict[str, object]:
        return {f.name: f.initial for f in self.fields}


def rw(name: str, t: ApiType, default: object = None) -> Field:
    """A read-write field: in the constructor, with a generated setter."""
    return Field(name=name, type=t, qualifier=Qualifier.RW, default=default)


def sro(name: str, t: ApiType, default: object = None) -> Field:
    """A static read-only field: in the constructor, no setter."""
    return Field(name=name, type=t, qualifier=Qualifier.STATIC_RO, default=default)


def dro(name: str, t: ApiType, default: object = None, *, removed: bool = False) -> Field:
    """A dynamic read-only field: maintained by the server only."""
    return Field(
        name=name, type=t, qualifier=Qualifier.DYNAMIC_RO, default=default, removed=removed
    )


def _ref_param(cls: str) -> Param:
    return Param(name="self", type=Ref(cls))


def _implicit(cd: ClassDef) -> Iterable[Message]:
    """The messages xapi generates for every database class (datamodel_utils, §5)."""
    if not cd.database:
        return
    this = Ref(cd.name)
    self_param = _ref_param(cd.name)
    read = partial(Message, cls=cd.name, roles=at_least(READ_ONLY))
    write = partial(Message, cls=cd.name, roles=cd.writer_roles)
    if cd.enumerable:
        yield read(name="get_all", kind=Kind.GET_ALL, result=Set(this))
        yield read(
            name="get_all_records", kind=Kind.GET_ALL_RECORDS, result=Map(this, RecordOf(cd.name))
        )
    yield read(
        name="get_record", kind=Kind.GET_RECORD, params=(self_param,), result=RecordOf(cd.name)
    )
    yield read(
        name="get_by_uuid",
        kind=Kind.GET_BY_UUID,
        params=(Param(name="uuid", type=STRING),),
        result=this,
        errors=(UUID_INVALID,),
    )
    if any(f.name == "name_label" for f in cd.fields):
        yield read(
            name="get_by_name_label",
            kind=Kind.GET_BY_NAME_LABEL,
            params=(Param(name="label", type=STRING),),
            result=Set(this),
        )
    for f in cd.fields:
        yield read(
            name=f"get_{f.name}",
            kind=Kind.GET_FIELD,
            params=(self_param,),
            result=f.type,
            field=f.name,
            errors=(MESSAGE_REMOVED,) if f.removed else (),
        )
    for f in cd.fields:
        if f.qualifier is not Qualifier.RW:
            continue
        value = Param(name="value", type=f.type)
        yield write(
            name=f"set_{f.name}",
            kind=Kind.SET_FIELD,
            params=(self_param, value),
            field=f.name,
            errors=cd.writer_errors,
        )
        if isinstance(f.type, Map):
            key = Param(name="key", type=f.type.key)
            item = Param(name="value", type=f.type.value)
            yield write(
                name=f"add_to_{f.name}",
                kind=Kind.ADD_TO_MAP,
                params=(self_param, key, item),
                field=f.name,
                errors=(MAP_DUPLICATE_KEY, *cd.writer_errors),
            )
            yield write(
                name=f"remove_from_{f.name}",
                kind=Kind.REMOVE_FROM_MAP,
                params=(self_param, key),
                field=f.name,
                errors=cd.writer_errors,
            )
        if isinstance(f.type, Set):
            member = Param(name="value", type=f.type.item)
            yield write(
                name=f"add_{f.name}",
                kind=Kind.ADD_TO_SET,
                params=(self_param, member),
                field=f.name,
                errors=cd.writer_errors,
            )
            yield write(
                name=f"remove_{f.name}",
                kind=Kind.REMOVE_FROM_SET,
                params=(self_param, member),
                field=f.name,
                errors=cd.writer_errors,
            )


@dataclass(frozen=True, kw_only=True)
class Model:
    classes: tuple[ClassDef, ...]
    _messages: dict[str, Message] = field(default_factory=dict, repr=False)
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for cd in self.classes:
            for m in (*_implicit(cd), *cd.messages):
                if m.wire_name in self._messages:
                    raise ValueError(f"message {m.wire_name} declared twice")
                self._messages[m.wire_name] = m
                # The `Class_message` spelling, generated from the known pairs (§5).
                self._aliases[f"{m.cls}_{m.name}"] = m.wire_name
        self.check()

    def cls(self, name: str) -> ClassDef:
        for cd in self.classes:
            if cd.name == name:
                return cd
        raise KeyError(name)

    @property
    def messages(self) -> Mapping[str, Message]:
        return self._messages

    def resolve(self, name: str) -> Message | None:
        """A message by wire name or by its `Class_message` alias."""
        message = self._messages.get(name)
        if message is None and name in self._aliases:
            message = self._messages[self._aliases[name]]
        return message

    def check(self) -> None:
        """Fail fast on an inconsistent model: bad references, defaults, roles, names."""
        names = {cd.name for cd in self.classes}
        for cd in self.classes:
            seen: set[str] = set()
            for f in cd.fields:
                if f.name in seen:
                    raise ValueError(f"{cd.name}.{f.name} declared twice")
                seen.add(f.name)
                _check_type(f.type, names, f"{cd.name}.{f.name}")
                if f.default is REQUIRED and f.qualifier is Qualifier.DYNAMIC_RO:
                    raise ValueError(f"{cd.name}.{f.name}: a DynamicRO field needs a default")
            if cd.database and "uuid" not in seen:
                raise ValueError(f"{cd.name} has no uuid field")
        for m in self._messages.values():
            if m.cls not in names:
                raise ValueError(f"{m.wire_name}: unknown class")
            if not m.roles or not m.roles <= set(ROLES):
                raise ValueError(f"{m.wire_name}: bad roles {sorted(m.roles)}")
            if m.roles != at_least(max(m.roles, key=ROLES.index)):
                raise ValueError(f"{m.wire_name}: roles must be a role and all above it")
            optional = False
            for p in m.params:
                _check_type(p.type, names, f"{m.wire_name}({p.name})")
                if p.default is not REQUIRED:
                    optional = True
                elif optional:
                    raise ValueError(f"{m.wire_name}: required {p.name} after an optional one")
            if m.result is not None:
                _check_type(m.result, names, f"{m.wire_name} result")


# Classes that records may point to without being modelled here (VDI, SR, ...): a ref to
# them is a plain string, always NULL or empty in xenmem.
_FOREIGN = frozenset(
    {
        "VBD",
        "VIF",
        "VDI",
        "SR",
        "PIF",
        "PBD",
        "PCI",
        "PGPU",
        "VGPU",
        "VUSB",
        "PUSB",
        "VTPM",
        "console",
        "crashdump",
        "host_crashdump",
        "host_patch",
        "pool_update",
        "host_cpu",
        "VM_guest_metrics",
        "VMPP",
        "VMSS",
        "VM_appliance",
        "blob",
        "user",
        "subject",
        "role",
        "secret",
        "Certificate",
        "Feature",
        "Repository",
        "network",
        "Cluster_host",
        "Observer",
        "Driver_variant",
        "Host_driver",
        "PCI_group",
    }
)


def _check_type(t: ApiType, names: set[str], where: str) -> None:
    match t:
        case Ref(cls=c) | RecordOf(cls=c):
            if c not in names and c not in _FOREIGN:
                raise ValueError(f"{where}: unknown class {c}")
        case Set(item=item):
            _check_type(item, names, where)
        case Map(key=k, value=v):
            _check_type(k, names, where)
            _check_type(v, names, where)
        case Enum(values=values):
            if not values:
                raise ValueError(f"{where}: empty enum")
        case _:
            pass
