"""Typed views of the records the toolstack reads, built once at the datamodel boundary.

The store holds each object as a map of wire values. The toolstack never reads those by
string key: it builds a frozen view (`VmView`, `HostView`) from the record, once, with
one decoding rule per field, and reads typed values from it (enums, ints, maps). Views
are read from a `Reader`, the store or a transaction, so a check inside a transaction
sees what that transaction wrote.

This module imports nothing else from the toolstack, so that every toolstack module can
use it without an import circle.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from xenmem.db import Record, Store
from xenmem.errors import HANDLE_INVALID
from xenmem.memory import Constraints, DomainType, VmMemory, compute_memory_overhead

__all__ = [
    "NESTED_VIRT_KEY",
    "NOMIGRATE_KEY",
    "NO_DOMAIN_METRICS",
    "HostView",
    "PoolView",
    "PowerState",
    "Reader",
    "VmOperation",
    "VmView",
    "is_domain_zero",
    "is_true",
    "memory_of",
    "nested_virt",
    "nomigrate",
    "read_host",
    "read_pool",
    "read_vm",
    "stored_overhead",
    "update_memory_overhead",
]


class PowerState(enum.StrEnum):
    """VM.power_state as on the wire."""

    HALTED = "Halted"
    PAUSED = "Paused"
    RUNNING = "Running"
    SUSPENDED = "Suspended"


class VmOperation(enum.StrEnum):
    """xapi's vm_operations enum, as on the wire (VM.current_operations, allowed_operations)."""

    SNAPSHOT = "snapshot"
    CLONE = "clone"
    COPY = "copy"
    CREATE_TEMPLATE = "create_template"
    REVERT = "revert"
    CHECKPOINT = "checkpoint"
    SNAPSHOT_WITH_QUIESCE = "snapshot_with_quiesce"
    PROVISION = "provision"
    START = "start"
    START_ON = "start_on"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    CLEAN_SHUTDOWN = "clean_shutdown"
    CLEAN_REBOOT = "clean_reboot"
    HARD_SHUTDOWN = "hard_shutdown"
    POWER_STATE_RESET = "power_state_reset"
    HARD_REBOOT = "hard_reboot"
    SUSPEND = "suspend"
    CSVM = "csvm"
    RESUME = "resume"
    RESUME_ON = "resume_on"
    POOL_MIGRATE = "pool_migrate"
    MIGRATE_SEND = "migrate_send"
    GET_BOOT_RECORD = "get_boot_record"
    SEND_SYSRQ = "send_sysrq"
    SEND_TRIGGER = "send_trigger"
    QUERY_SERVICES = "query_services"
    SHUTDOWN = "shutdown"
    CALL_PLUGIN = "call_plugin"
    CHANGING_MEMORY_LIVE = "changing_memory_live"
    AWAITING_MEMORY_LIVE = "awaiting_memory_live"
    CHANGING_DYNAMIC_RANGE = "changing_dynamic_range"
    CHANGING_STATIC_RANGE = "changing_static_range"
    CHANGING_MEMORY_LIMITS = "changing_memory_limits"
    CHANGING_SHADOW_MEMORY = "changing_shadow_memory"
    CHANGING_SHADOW_MEMORY_LIVE = "changing_shadow_memory_live"
    CHANGING_VCPUS = "changing_VCPUs"
    CHANGING_VCPUS_LIVE = "changing_VCPUs_live"
    CHANGING_NVRAM = "changing_NVRAM"
    ASSERT_OPERATION_VALID = "assert_operation_valid"
    DATA_SOURCE_OP = "data_source_op"
    UPDATE_ALLOWED_OPERATIONS = "update_allowed_operations"
    MAKE_INTO_TEMPLATE = "make_into_template"
    IMPORT = "import"
    EXPORT = "export"
    METADATA_EXPORT = "metadata_export"
    REVERTING = "reverting"
    DESTROY = "destroy"
    CREATE_VTPM = "create_vtpm"


class Reader(Protocol):
    """Where records are read from: the store, or a transaction (which sees its writes)."""

    def get(self, cls: str, ref: str) -> Record | None: ...


def is_true(value: str | None) -> bool:
    """A map value as xapi reads a flag: "1", or "true" in any case (`bool_of_assoc`,
    `Vm_platform.is_true` with default false)."""
    return value is not None and (value == "1" or value.lower() == "true")


def _int(record: Record, name: str) -> int:
    value = record[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} is not an int: {value!r}")
    return value


def _float(record: Record, name: str) -> float:
    value = record[name]
    if not isinstance(value, float):
        raise TypeError(f"{name} is not a float: {value!r}")
    return value


def _str_map(record: Record, name: str) -> Mapping[str, str]:
    value = record[name]
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} is not a map: {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _str_list(record: Record, name: str) -> list[str]:
    value = record[name]
    if not isinstance(value, list):
        raise TypeError(f"{name} is not a list: {value!r}")
    return [str(v) for v in value]


def _get(reader: Reader, cls: str, ref: str) -> Record:
    record = reader.get(cls, ref)
    if record is None:
        raise HANDLE_INVALID(cls, ref)
    return record


@dataclass(frozen=True, kw_only=True)
class VmView:
    """What the toolstack reads of a VM record; sizes in bytes."""

    ref: str
    uuid: str
    name_label: str
    power_state: PowerState
    memory: VmMemory
    memory_overhead: int
    vcpus_at_startup: int
    is_control_domain: bool
    is_a_template: bool
    is_a_snapshot: bool
    is_default_template: bool
    current_operations: Mapping[str, VmOperation]
    blocked_operations: Mapping[str, str]
    other_config: Mapping[str, str]
    platform: Mapping[str, str]
    resident_on: str
    scheduled_to_be_resident_on: str
    affinity: str
    metrics: str
    parent: str
    children: tuple[str, ...]
    hvm_boot_policy: str
    pv_kernel: str
    pv_ramdisk: str
    pv_args: str

    @classmethod
    def of(cls, ref: str, record: Record) -> VmView:
        operations = _str_map(record, "current_operations")
        return cls(
            ref=ref,
            uuid=str(record["uuid"]),
            name_label=str(record["name_label"]),
            power_state=PowerState(str(record["power_state"])),
            memory=memory_of(record),
            memory_overhead=stored_overhead(record),
            vcpus_at_startup=_int(record, "VCPUs_at_startup"),
            is_control_domain=bool(record["is_control_domain"]),
            is_a_template=bool(record["is_a_template"]),
            is_a_snapshot=bool(record["is_a_snapshot"]),
            is_default_template=bool(record["is_default_template"]),
            current_operations={task: VmOperation(op) for task, op in operations.items()},
            blocked_operations=_str_map(record, "blocked_operations"),
            other_config=_str_map(record, "other_config"),
            platform=_str_map(record, "platform"),
            resident_on=str(record["resident_on"]),
            scheduled_to_be_resident_on=str(record["scheduled_to_be_resident_on"]),
            affinity=str(record["affinity"]),
            metrics=str(record["metrics"]),
            parent=str(record["parent"]),
            children=tuple(_str_list(record, "children")),
            hvm_boot_policy=str(record["HVM_boot_policy"]),
            pv_kernel=str(record["PV_kernel"]),
            pv_ramdisk=str(record["PV_ramdisk"]),
            pv_args=str(record["PV_args"]),
        )

    @property
    def constraints(self) -> Constraints:
        return self.memory.constraints

    @property
    def platform_nested_virt(self) -> bool:
        """platform:nested-virt, which VM.start checks (xapi_vm `assert_memory_constraints`)
        and a domain is built with."""
        return is_true(self.platform.get(NESTED_VIRT_KEY))

    @property
    def platform_nomigrate(self) -> bool:
        """platform:nomigrate, which a domain is built with."""
        return is_true(self.platform.get(NOMIGRATE_KEY))


def stored_overhead(record: Record) -> int:
    """A VM record's memory_overhead, in bytes."""
    return _int(record, "memory_overhead")


def memory_of(record: Record) -> VmMemory:
    """The memory-relevant part of a VM record (also of a record not yet stored)."""
    return VmMemory(
        domain_type=DomainType(str(record["domain_type"])),
        static_min=_int(record, "memory_static_min"),
        dynamic_min=_int(record, "memory_dynamic_min"),
        dynamic_max=_int(record, "memory_dynamic_max"),
        static_max=_int(record, "memory_static_max"),
        vcpus_max=_int(record, "VCPUs_max"),
        target=_int(record, "memory_target"),
        shadow_multiplier=_float(record, "HVM_shadow_multiplier"),
    )


@dataclass(frozen=True, kw_only=True)
class HostView:
    """What the toolstack reads of a host record and its host_metrics; sizes in bytes."""

    ref: str
    uuid: str
    name_label: str
    enabled: bool
    memory_overhead: int
    memory_total: int
    cpu_count: int
    control_domain: str
    metrics: str

    @classmethod
    def of(cls, ref: str, record: Record, metrics: Record) -> HostView:
        cpu_info = _str_map(record, "cpu_info")
        return cls(
            ref=ref,
            uuid=str(record["uuid"]),
            name_label=str(record["name_label"]),
            enabled=bool(record["enabled"]),
            memory_overhead=stored_overhead(record),
            memory_total=_int(metrics, "memory_total"),
            cpu_count=int(cpu_info.get("cpu_count", "1")),
            control_domain=str(record["control_domain"]),
            metrics=str(record["metrics"]),
        )


@dataclass(frozen=True, kw_only=True)
class PoolView:
    """What the toolstack reads of the pool record."""

    ref: str
    coordinator: str
    coordinator_bias: bool
    dmc_enabled: bool
    other_config: Mapping[str, str]

    @classmethod
    def of(cls, ref: str, record: Record) -> PoolView:
        restrictions = _str_map(record, "restrictions")
        return cls(
            ref=ref,
            coordinator=str(record["master"]),
            coordinator_bias=bool(record["coordinator_bias"]),
            # DMC is on only when the pool says restrict_dmc = false (xapi-memory.md §3.2).
            dmc_enabled=restrictions.get("restrict_dmc") == "false",
            other_config=_str_map(record, "other_config"),
        )


def read_pool(store: Store) -> PoolView | None:
    """The pool's one record, or None before the pool's first boot."""
    for ref, record in store.records("pool").items():
        return PoolView.of(ref, record)
    return None


def read_vm(reader: Reader, ref: str) -> VmView:
    """The VM's view, or HANDLE_INVALID [VM, ref]."""
    return VmView.of(ref, _get(reader, "VM", ref))


def read_host(reader: Reader, ref: str) -> HostView:
    """The host's view (with its metrics), or HANDLE_INVALID [host, ref]."""
    record = _get(reader, "host", ref)
    return HostView.of(ref, record, _get(reader, "host_metrics", str(record["metrics"])))


NESTED_VIRT_KEY = "nested-virt"
NOMIGRATE_KEY = "nomigrate"
NO_DOMAIN_METRICS: Mapping[str, object] = {
    "memory_actual": 0,
    "nested_virt": False,
    "nomigrate": False,
}
"""VM_metrics once the VM's domain is gone (shut down, suspended): what xenopsd reports
for a VM without a domain (its `halted_vm` state), which xapi copies into VM_metrics."""


def _metrics_flag(reader: Reader, vm: VmView, field: str, platform_key: str) -> bool:
    """A flag xapi reads from VM_metrics (where the last domain build put it), or from the
    platform key when the VM has no metrics (xapi_vm_lifecycle `nested_virt`, `nomigrate`)."""
    metrics = reader.get("VM_metrics", vm.metrics)
    if metrics is None:
        return is_true(vm.platform.get(platform_key))
    return bool(metrics[field])


def nested_virt(reader: Reader, vm: VmView) -> bool:
    """Whether the VM uses nested virtualisation, as xapi decides it: VM_metrics.nested_virt
    (what its domain was built with while it has one; false before and after, and what
    the source had for a snapshot, clone or copy), else platform:nested-virt."""
    return _metrics_flag(reader, vm, "nested_virt", NESTED_VIRT_KEY)


def nomigrate(reader: Reader, vm: VmView) -> bool:
    """Whether the VM must not move: VM_metrics.nomigrate, else platform:nomigrate."""
    return _metrics_flag(reader, vm, "nomigrate", NOMIGRATE_KEY)


def is_domain_zero(reader: Reader, vm: VmView) -> bool:
    """Whether the VM is dom0: a control domain that is the control domain of the host it
    is resident on (xapi's Helpers.is_domain_zero)."""
    if not vm.is_control_domain:
        return False
    host = reader.get("host", vm.resident_on)
    return host is not None and host["control_domain"] == vm.ref


def update_memory_overhead(store: Store, vm: str) -> None:
    """Recompute and store VM.memory_overhead from the VM's current limits (§2.6)."""
    with store.transaction() as tx:
        view = read_vm(tx, vm)
        tx.update("VM", vm, {"memory_overhead": compute_memory_overhead(view.memory)})
