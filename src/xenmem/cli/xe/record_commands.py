"""Lists and parameters: vm-list, host-list and the *-param-list/get/set commands.

`*-param-*` commands name their object by `uuid=` as xe's do; a field of a map is
`NAME:KEY` (`other-config:foo=bar`).
"""

from __future__ import annotations

from xenmem.cli.xe.commands import Call, command
from xenmem.cli.xe.errors import XeFailure
from xenmem.cli.xe.fields import XeField, parse_value
from xenmem.cli.xe.output import format_record
from xenmem.cli.xe.records import RecordView, missing_parameter, select, table
from xenmem.xenapi.types import Map, Ref

__all__: list[str] = []


@command("vm-list", optional=("params",), description="VMs (not templates) matching the filters.")
def vm_list(call: Call) -> None:
    # Templates stay out unless asked for (xe's template-list shows them).
    fixed = {} if "is-a-template" in call.params else {"is-a-template": "false"}
    views = select(call.api, "VM", call.params, fixed=fixed)
    call.print_records(views, "uuid,name-label,power-state")


@command("host-list", optional=("params",), description="Hosts matching the filters.")
def host_list(call: Call) -> None:
    call.print_records(select(call.api, "host", call.params), "uuid,name-label,name-description")


def _by_uuid(call: Call, cls: str) -> RecordView:
    """The object `uuid=` names; a bad uuid gets the server's UUID_INVALID."""
    ref = str(call.api.call(f"{cls}.get_by_uuid", call.params["uuid"]))
    return RecordView(
        table=table(cls), ref=ref, record=call.api.all_records(cls)[ref], api=call.api
    )


def _param_list(call: Call, cls: str) -> None:
    call.out.write(format_record(_by_uuid(call, cls).shown(None, expensive=True)))


def _param_get(call: Call, cls: str) -> None:
    view = _by_uuid(call, cls)
    name = call.params["param-name"]
    f = view.table.field(name)
    if "param-key" in call.params and f is not None and isinstance(f.type, Map):
        values = view.record[f.wire]
        key = call.params["param-key"]
        if key not in values:
            raise XeFailure(f"Error: Key {key} not found in map")
        call.print(str(values[key]))
        return
    call.print(view.value(name))


def _set_map_key(call: Call, view: RecordView, f: XeField, key: str, value: str) -> None:
    if f.setter is None:
        raise XeFailure(f"Error: Map parameter '{f.name}' is read-only")
    cls = view.table.cls
    if key in view.record[f.wire]:
        call.api.call(f"{cls}.remove_from_{f.wire}", view.ref, key)
    call.api.call(f"{cls}.add_to_{f.wire}", view.ref, key, value)


def _set_field(call: Call, view: RecordView, name: str, text: str) -> None:
    base, _, key = name.partition(":")
    f = view.table.field(base)
    if f is None:
        raise missing_parameter(base)
    if key:
        _set_map_key(call, view, f, key, text)
        return
    if f.setter is None or isinstance(f.type, Map):
        raise XeFailure(f"Error: Parameter '{name}' is read-only")
    if isinstance(f.type, Ref):
        value: object = call.api.call(f"{f.type.cls}.get_by_uuid", text)
    else:
        value = parse_value(f, text)
    call.api.call(f.setter, view.ref, value)


def _param_set(call: Call, cls: str) -> None:
    view = _by_uuid(call, cls)
    for name, text in call.params.items():
        if name != "uuid":
            _set_field(call, view, name, text)


@command("vm-param-list", required=("uuid",), description="Every field of the VM.")
def vm_param_list(call: Call) -> None:
    _param_list(call, "VM")


@command(
    "vm-param-get",
    required=("uuid", "param-name"),
    optional=("param-key",),
    description="One field of the VM (one key of a map field with param-key).",
)
def vm_param_get(call: Call) -> None:
    _param_get(call, "VM")


@command(
    "vm-param-set",
    required=("uuid",),
    description="Set fields of the VM: memory-static-max=4GiB, HVM-shadow-multiplier=1.5, ...",
)
def vm_param_set(call: Call) -> None:
    _param_set(call, "VM")


@command("host-param-list", required=("uuid",), description="Every field of the host.")
def host_param_list(call: Call) -> None:
    _param_list(call, "host")


@command(
    "host-param-get",
    required=("uuid", "param-name"),
    optional=("param-key",),
    description="One field of the host, e.g. memory-free-computed.",
)
def host_param_get(call: Call) -> None:
    _param_get(call, "host")


@command("host-param-set", required=("uuid",), description="Set fields of the host.")
def host_param_set(call: Call) -> None:
    _param_set(call, "host")
