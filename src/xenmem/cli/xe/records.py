"""xe's view of VM and host records: the derived fields plus the few xe computes, and
the selection of objects by `uuid=`, `vm=`/`host=` and field filters (cli_operations.ml
`select_vms`, `select_hosts`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from xenmem.cli.xe.api import NOT_IN_DATABASE, Api, Record
from xenmem.cli.xe.errors import XeFailure
from xenmem.cli.xe.fields import XeField, render, wire_fields
from xenmem.cli.xe.output import ShownField, format_error
from xenmem.xenapi.types import INT

__all__ = [
    "STANDARD_PARAMS",
    "Computed",
    "RecordView",
    "Table",
    "missing_parameter",
    "select",
    "table",
]

# Parameters of every command that never filter objects (xe's `stdparams`).
STANDARD_PARAMS = frozenset({"minimal", "multiple", "force", "params", "all", "trace"})


@dataclass(frozen=True, kw_only=True)
class Computed:
    """A field xe computes from other objects. Expensive ones cost a call per object and
    are shown only when asked for by name."""

    name: str
    value: Callable[[RecordView], str]
    expensive: bool = False


@dataclass(frozen=True, kw_only=True)
class Table:
    """The xe fields of one class: the datamodel's, then the computed ones."""

    cls: str
    fields: tuple[XeField, ...]
    computed: tuple[Computed, ...]
    pseudo: Callable[[Record], tuple[str, ...]]  # what `vm=`/`host=` may match

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields) + tuple(c.name for c in self.computed)

    def field(self, name: str) -> XeField | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, kw_only=True)
class RecordView:
    """One object as xe shows it; values are rendered only when asked for."""

    table: Table
    ref: str
    record: Record
    api: Api

    def value(self, name: str) -> str:
        f = self.table.field(name)
        if f is not None:
            if f.wire not in self.record:  # an older server without this field
                return NOT_IN_DATABASE
            return render(f.type, self.record[f.wire], self.api.uuid_of)
        for computed in self.table.computed:
            if computed.name == name:
                return computed.value(self)
        raise missing_parameter(name)

    def shown(self, params: str | None, *, expensive: bool = False) -> list[ShownField]:
        """The fields `params=` asks for; None or `all`: every field, the expensive ones
        only if `expensive` (xe's param-list shows them, its lists do not)."""
        if params is None or params == "all":
            names = [f.name for f in self.table.fields] + [
                c.name for c in self.table.computed if expensive or not c.expensive
            ]
        else:
            names = [n for n in params.split(",") if n in self.table.names]
        return [ShownField(name=n, qualifier=self.qualifier(n), value=self.value(n)) for n in names]

    def qualifier(self, name: str) -> str:
        f = self.table.field(name)
        return f.qualifier if f is not None else "RO"


def missing_parameter(name: str) -> XeFailure:
    """xe's answer to a field name its record does not have (records.ml
    `CLI_failed_to_find_param`, reported as an error code of its own)."""
    return XeFailure(format_error("Missing parameter", [name]).rstrip("\n"))


def _metrics_value(metrics_cls: str, wire: str) -> Callable[[RecordView], str]:
    """A field of the object's metrics record, `<not in database>` when it has none."""

    def value(view: RecordView) -> str:
        metrics = view.api.record(metrics_cls, str(view.record["metrics"]))
        if metrics is None:
            return NOT_IN_DATABASE
        return render(INT, metrics[wire], view.api.uuid_of)

    return value


def _free_memory_computed(view: RecordView) -> str:
    return str(view.api.call("host.compute_free_memory", view.ref))


_TABLES = {
    "VM": Table(
        cls="VM",
        fields=wire_fields("VM"),
        computed=(
            Computed(name="memory-actual", value=_metrics_value("VM_metrics", "memory_actual")),
        ),
        pseudo=lambda r: (str(r["uuid"]), str(r["name_label"])),
    ),
    "host": Table(
        cls="host",
        fields=wire_fields("host"),
        computed=(
            Computed(name="memory-total", value=_metrics_value("host_metrics", "memory_total")),
            Computed(name="memory-free", value=_metrics_value("host_metrics", "memory_free")),
            Computed(name="memory-free-computed", value=_free_memory_computed, expensive=True),
        ),
        pseudo=lambda r: (str(r["uuid"]), str(r["hostname"]), str(r["name_label"])),
    ),
}


def table(cls: str) -> Table:
    return _TABLES[cls]


def select(
    api: Api,
    cls: str,
    params: Mapping[str, str],
    *,
    ignored: Sequence[str] = (),
    fixed: Mapping[str, str] | None = None,
) -> list[RecordView]:
    """The objects of `cls` every filter in `params` and `fixed` matches.

    `vm=`/`host=` matches a uuid or a name (a host's hostname too); every other key that
    is not the command's own (`ignored`) or a standard one must be an xe field, compared
    with its shown value. `fixed` filters apply as well (xe keeps templates and control
    domains out of most VM commands this way, even when the user filters on them too).
    """
    t = table(cls)
    pseudo_key = cls.lower()
    given = [
        (k, v)
        for k, v in params.items()
        if k not in STANDARD_PARAMS and k not in ignored and k != pseudo_key
    ]
    filters = [*(fixed or {}).items(), *given]
    for name, _ in filters:
        if name not in t.names:
            raise XeFailure(
                f"Error: Parameter '{name}' is not a field of the {cls} class. "
                f"Failed to select {cls} for operation."
            )
    views = [
        RecordView(table=t, ref=ref, record=r, api=api) for ref, r in api.all_records(cls).items()
    ]
    if pseudo_key in params:
        wanted = params[pseudo_key]
        views = [v for v in views if wanted in t.pseudo(v.record)]
    return [v for v in views if all(v.value(k) == want for k, want in filters)]
