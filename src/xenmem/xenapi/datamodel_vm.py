"""VM and VM_metrics: every field with xapi's wire name, type, qualifier and default.

The memory fields follow xapi-memory.md §8: the four limits and the vCPU counts are
required by the constructor; memory_overhead is DynamicRO (computed by VM.create);
domain_type defaults to `unspecified` (VM.create derives it from HVM_boot_policy). The
qualifiers are xapi's: is_a_snapshot and the snapshot fields are DynamicRO (set only by
VM.snapshot), power_state is StaticRO (VM.create refuses Suspended without a suspend
image).
"""

from __future__ import annotations

from xenmem import errors
from xenmem.errors import ErrorDef
from xenmem.memory import DomainType
from xenmem.toolstack.records import PowerState, VmOperation
from xenmem.xenapi.datamodel import REQUIRED, ClassDef, Field, Message, Param, dro, rw, sro
from xenmem.xenapi.roles import READ_ONLY, VM_ADMIN, VM_OPERATOR, VM_POWER_ADMIN, at_least
from xenmem.xenapi.types import (
    BOOL,
    DATETIME,
    FLOAT,
    INT,
    STRING,
    ApiType,
    Enum,
    Map,
    RecordOf,
    Ref,
    Set,
)

__all__ = ["VM", "VM_METRICS"]

SMAP = Map(STRING, STRING)
POWER_STATE = Enum("vm_power_state", tuple(state.value for state in PowerState))
DOMAIN_TYPE = Enum("domain_type", tuple(kind.value for kind in DomainType))
_SHUTDOWN_ACTION = Enum("on_normal_exit", ("destroy", "restart"))
_CRASH_ACTION = Enum(
    "on_crash_behaviour",
    (
        "destroy",
        "coredump_and_destroy",
        "restart",
        "coredump_and_restart",
        "preserve",
        "rename_restart",
    ),
)
_SOFTREBOOT_ACTION = Enum(
    "on_softreboot_behavior", ("soft_reboot", "destroy", "restart", "preserve")
)
_HA_PRIORITY = STRING
_UPDATE_GUIDANCE = Enum(
    "update_guidances",
    (
        "reboot_host",
        "reboot_host_on_livepatch_failure",
        "reboot_host_on_kernel_livepatch_failure",
        "reboot_host_on_xen_livepatch_failure",
        "restart_toolstack",
        "restart_device_model",
        "restart_vm",
    ),
)
_VM_OPERATIONS = Enum("vm_operations", tuple(op.value for op in VmOperation))


def _memory(name: str) -> Field:
    return sro(name, INT, REQUIRED)


_VM_FIELDS = (
    dro("uuid", STRING),
    dro("allowed_operations", Set(_VM_OPERATIONS)),
    dro("current_operations", Map(STRING, _VM_OPERATIONS)),
    rw("name_label", STRING),
    rw("name_description", STRING),
    sro("power_state", POWER_STATE, PowerState.HALTED.value),
    rw("user_version", INT, 1),
    rw("is_a_template", BOOL, False),
    dro("is_default_template", BOOL, False),
    dro("suspend_VDI", Ref("VDI")),
    dro("resident_on", Ref("host")),
    dro("scheduled_to_be_resident_on", Ref("host")),
    rw("affinity", Ref("host")),
    dro("memory_overhead", INT, 0),
    sro("memory_target", INT, 0),
    _memory("memory_static_max"),
    _memory("memory_dynamic_max"),
    _memory("memory_dynamic_min"),
    _memory("memory_static_min"),
    rw("VCPUs_params", SMAP),
    sro("VCPUs_max", INT, REQUIRED),
    sro("VCPUs_at_startup", INT, REQUIRED),
    rw("actions_after_softreboot", _SOFTREBOOT_ACTION, "soft_reboot"),
    rw("actions_after_shutdown", _SHUTDOWN_ACTION, "destroy"),
    rw("actions_after_reboot", _SHUTDOWN_ACTION, "restart"),
    rw("actions_after_crash", _CRASH_ACTION, "restart"),
    dro("consoles", Set(Ref("console"))),
    dro("VIFs", Set(Ref("VIF"))),
    dro("VBDs", Set(Ref("VBD"))),
    dro("VUSBs", Set(Ref("VUSB"))),
    dro("crash_dumps", Set(Ref("crashdump"))),
    dro("VTPMs", Set(Ref("VTPM"))),
    rw("PV_bootloader", STRING),
    rw("PV_kernel", STRING),
    rw("PV_ramdisk", STRING),
    rw("PV_args", STRING),
    rw("PV_bootloader_args", STRING),
    rw("PV_legacy_args", STRING),
    sro("HVM_boot_policy", STRING),
    rw("HVM_boot_params", SMAP),
    sro("HVM_shadow_multiplier", FLOAT, 1.0),
    rw("platform", SMAP),
    rw("PCI_bus", STRING),
    rw("other_config", SMAP),
    dro("domid", INT, -1),
    dro("domarch", STRING),
    dro("last_boot_CPU_flags", SMAP),
    dro("is_control_domain", BOOL, False),
    dro("metrics", Ref("VM_metrics")),
    dro("guest_metrics", Ref("VM_guest_metrics")),
    dro("last_booted_record", STRING),
    rw("recommendations", STRING),
    rw("xenstore_data", SMAP),
    sro("ha_always_run", BOOL, False),
    sro("ha_restart_priority", _HA_PRIORITY),
    dro("is_a_snapshot", BOOL, False),
    dro("snapshot_of", Ref("VM")),
    dro("snapshots", Set(Ref("VM"))),
    dro("snapshot_time", DATETIME),
    dro("transportable_snapshot_id", STRING),
    dro("blobs", Map(STRING, Ref("blob"))),
    rw("tags", Set(STRING)),
    rw("blocked_operations", Map(_VM_OPERATIONS, STRING)),
    dro("snapshot_info", SMAP),
    dro("snapshot_metadata", STRING),
    dro("parent", Ref("VM")),
    dro("children", Set(Ref("VM"))),
    dro("bios_strings", SMAP),
    dro("protection_policy", Ref("VMPP")),
    dro("is_snapshot_from_vmpp", BOOL, False),
    dro("snapshot_schedule", Ref("VMSS")),
    dro("is_vmss_snapshot", BOOL, False),
    dro("appliance", Ref("VM_appliance")),
    dro("start_delay", INT, 0),
    dro("shutdown_delay", INT, 0),
    dro("order", INT, 0),
    dro("VGPUs", Set(Ref("VGPU"))),
    dro("attached_PCIs", Set(Ref("PCI"))),
    rw("suspend_SR", Ref("SR")),
    dro("version", INT, 0),
    sro("generation_id", STRING, "0:0"),
    dro("hardware_platform_version", INT, 0),
    sro("has_vendor_device", BOOL, False),
    dro("requires_reboot", BOOL, False),
    sro("reference_label", STRING),
    sro("domain_type", DOMAIN_TYPE, "unspecified"),
    dro("NVRAM", SMAP),
    dro("pending_guidances", Set(_UPDATE_GUIDANCE)),
    dro("pending_guidances_recommended", Set(_UPDATE_GUIDANCE)),
    dro("pending_guidances_full", Set(_UPDATE_GUIDANCE)),
)

_SELF = Param(name="self", type=Ref("VM"))
_START_FLAGS = (Param(name="start_paused", type=BOOL), Param(name="force", type=BOOL))
# Every message run as a VM operation: the check's errors, and what waiting for another
# operation to end may answer (too many waiting, or the call's task cancelled).
_OPERATION_ERRORS = (
    errors.OPERATION_BLOCKED,
    errors.VM_BAD_POWER_STATE,
    errors.OTHER_OPERATION_IN_PROGRESS,
    errors.VM_IS_TEMPLATE,
    errors.VM_IS_SNAPSHOT,
    errors.OPERATION_NOT_ALLOWED,
    errors.TOO_MANY_PENDING_TASKS,
    errors.TASK_CANCELLED,
)
_LIMIT_ERRORS = (
    *_OPERATION_ERRORS,
    errors.MEMORY_CONSTRAINT_VIOLATION_ORDER,
    errors.MEMORY_CONSTRAINT_VIOLATION_MAXPIN,
)
# A new static_max may make the overhead leave int64: INVALID_VALUE.
_STATIC_LIMIT_ERRORS = (*_LIMIT_ERRORS, errors.INVALID_VALUE)
_DYNAMIC_RANGE_ERRORS = (
    *_LIMIT_ERRORS,
    errors.VM_IS_USING_NESTED_VIRT,
    errors.HOST_NOT_ENOUGH_FREE_MEMORY,
)
_BOOT_ERRORS = (
    errors.INVALID_VALUE,
    errors.VALUE_NOT_SUPPORTED,
    errors.MEMORY_CONSTRAINT_VIOLATION,
    errors.HOST_NOT_LIVE,
    errors.HOST_DISABLED,
    errors.HOST_NOT_ENOUGH_FREE_MEMORY,
    errors.HOST_NOT_ENOUGH_PCPUS,
)
_PLACEMENT_ERRORS = (
    *_OPERATION_ERRORS,
    *_BOOT_ERRORS,
    errors.MEMORY_CONSTRAINT_VIOLATION_MAXPIN,
    errors.NO_HOSTS_AVAILABLE,
    errors.VMS_FAILED_TO_COOPERATE,
    errors.INTERNAL_ERROR,
)


def _vm_message(
    name: str,
    *params: Param,
    result: ApiType | None = None,
    roles: frozenset[str] = at_least(VM_POWER_ADMIN),
    is_async: bool = True,
    errors_raised: tuple[ErrorDef, ...] = _OPERATION_ERRORS,
    doc: str,
) -> Message:
    """A VM message whose first parameter is the VM itself."""
    return Message(
        cls="VM",
        name=name,
        params=(_SELF, *params),
        result=result,
        roles=roles,
        is_async=is_async,
        errors=errors_raised,
        doc=doc,
    )


def _value(name: str, t: ApiType = INT) -> Param:
    return Param(name=name, type=t)


_VM_MESSAGES = (
    Message(
        cls="VM",
        name="create",
        params=(Param(name="args", type=RecordOf("VM")),),
        result=Ref("VM"),
        roles=at_least(VM_ADMIN),
        is_async=True,
        errors=(errors.VM_BAD_POWER_STATE, errors.INVALID_VALUE),
        doc="Create a halted VM from a record; omitted optional fields take xapi's defaults, "
        "blocked_operations is ignored.",
    ),
    _vm_message(
        "destroy", roles=at_least(VM_ADMIN), doc="Destroy a halted or suspended VM and its metrics."
    ),
    _vm_message(
        "clone",
        _value("new_name", STRING),
        result=Ref("VM"),
        roles=at_least(VM_ADMIN),
        doc="A new halted VM like a halted VM, template or snapshot: memory settings and "
        "overhead included, a fresh other_config:mac_seed.",
    ),
    _vm_message(
        "copy",
        _value("new_name", STRING),
        Param(name="sr", type=Ref("SR")),
        result=Ref("VM"),
        roles=at_least(VM_ADMIN),
        doc="As clone (with no disks, `sr` does not matter).",
    ),
    _vm_message(
        "snapshot",
        _value("new_name", STRING),
        Param(name="ignore_vdis", type=Set(Ref("VDI")), default=[]),
        result=Ref("VM"),
        doc="A snapshot of the VM in any power state: a halted template that is a snapshot "
        "of it, with its memory settings and overhead; it becomes the VM's parent.",
    ),
    Message(
        cls="VM",
        name="compute_memory_overhead",
        params=(Param(name="vm", type=Ref("VM")),),
        result=INT,
        roles=at_least(READ_ONLY),
        is_async=True,
        doc="The VM's memory overhead in bytes, computed from its current limits.",
    ),
    _vm_message(
        "maximise_memory",
        _value("total"),
        _value("approximate", BOOL),
        result=INT,
        roles=at_least(READ_ONLY),
        errors_raised=(errors.INVALID_VALUE,),
        doc="The largest static_max (bytes, whole MiB) that fits with its overheads in `total`; "
        "`approximate` sizes for 64 vCPUs.",
    ),
    _vm_message(
        "start",
        *_START_FLAGS,
        roles=at_least(VM_OPERATOR),
        errors_raised=_PLACEMENT_ERRORS,
        doc="Start a halted VM on a host chosen for it.",
    ),
    _vm_message(
        "start_on",
        Param(name="host", type=Ref("host")),
        *_START_FLAGS,
        errors_raised=_PLACEMENT_ERRORS,
        doc="Start a halted VM on the given host.",
    ),
    _vm_message("clean_shutdown", roles=at_least(VM_OPERATOR), doc="Shut a running VM down."),
    _vm_message(
        "hard_shutdown",
        roles=at_least(VM_OPERATOR),
        doc="Stop a running, paused or suspended VM at once.",
    ),
    _vm_message(
        "suspend",
        roles=at_least(VM_OPERATOR),
        errors_raised=(*_OPERATION_ERRORS, errors.VM_IS_IMMOBILE),
        doc="Suspend a running VM: its memory is saved and freed.",
    ),
    _vm_message(
        "resume",
        *_START_FLAGS,
        roles=at_least(VM_OPERATOR),
        errors_raised=_PLACEMENT_ERRORS,
        doc="Resume a suspended VM on a host chosen for it.",
    ),
    _vm_message(
        "resume_on",
        Param(name="host", type=Ref("host")),
        *_START_FLAGS,
        errors_raised=_PLACEMENT_ERRORS,
        doc="Resume a suspended VM on the given host.",
    ),
    _vm_message("pause", roles=at_least(VM_OPERATOR), doc="Pause a running VM."),
    _vm_message("unpause", roles=at_least(VM_OPERATOR), doc="Unpause a paused VM."),
    _vm_message(
        "pool_migrate",
        Param(name="host", type=Ref("host")),
        Param(name="options", type=SMAP),
        errors_raised=(*_PLACEMENT_ERRORS, errors.VM_IS_IMMOBILE),
        doc="Move a running VM to another host of the pool; it balloons to dynamic_min first.",
    ),
    _vm_message(
        "assert_can_boot_here",
        Param(name="host", type=Ref("host")),
        roles=at_least(READ_ONLY),
        errors_raised=_BOOT_ERRORS,
        doc="Fail with the reason if the VM could not boot on the host now.",
    ),
    _vm_message(
        "set_memory_dynamic_range",
        _value("min"),
        _value("max"),
        errors_raised=_DYNAMIC_RANGE_ERRORS,
        doc="Set dynamic_min and dynamic_max (and the target to dynamic_min); a running VM "
        "is rebalanced at once.",
    ),
    _vm_message(
        "set_memory_dynamic_min",
        _value("value"),
        is_async=False,
        errors_raised=_DYNAMIC_RANGE_ERRORS,
        doc="Set dynamic_min, keeping dynamic_max.",
    ),
    _vm_message(
        "set_memory_dynamic_max",
        _value("value"),
        is_async=False,
        errors_raised=_DYNAMIC_RANGE_ERRORS,
        doc="Set dynamic_max, keeping dynamic_min.",
    ),
    _vm_message(
        "set_memory_static_range",
        _value("min"),
        _value("max"),
        errors_raised=_STATIC_LIMIT_ERRORS,
        doc="Set static_min and static_max (boot-time limits).",
    ),
    _vm_message(
        "set_memory_static_min",
        _value("value"),
        is_async=False,
        errors_raised=_STATIC_LIMIT_ERRORS,
        doc="Set static_min, keeping static_max.",
    ),
    _vm_message(
        "set_memory_static_max",
        _value("value"),
        is_async=False,
        errors_raised=_STATIC_LIMIT_ERRORS,
        doc="Set static_max, keeping static_min.",
    ),
    _vm_message(
        "set_memory_limits",
        _value("static_min"),
        _value("static_max"),
        _value("dynamic_min"),
        _value("dynamic_max"),
        errors_raised=_STATIC_LIMIT_ERRORS,
        doc="Set all four limits; the target becomes dynamic_min.",
    ),
    _vm_message(
        "set_memory",
        _value("value"),
        errors_raised=_STATIC_LIMIT_ERRORS,
        doc="Set static_max, dynamic_min and dynamic_max to `value`; static_min is kept.",
    ),
    _vm_message(
        "set_HVM_shadow_multiplier",
        _value("value", FLOAT),
        is_async=False,
        errors_raised=(*_OPERATION_ERRORS, errors.INVALID_VALUE),
        doc="Set a halted VM's shadow multiplier (>= 1.0).",
    ),
    _vm_message(
        "set_shadow_multiplier_live",
        _value("multiplier", FLOAT),
        errors_raised=(
            *_OPERATION_ERRORS,
            errors.INVALID_VALUE,
            errors.HOST_NOT_ENOUGH_FREE_MEMORY,
        ),
        doc="Set a running VM's shadow multiplier; growing shadow needs free host memory.",
    ),
    _vm_message(
        "set_VCPUs_max",
        _value("value"),
        roles=at_least(VM_ADMIN),
        is_async=False,
        errors_raised=(*_OPERATION_ERRORS, errors.INVALID_VALUE),
        doc="Set a halted VM's maximum vCPU count (>= 1 and >= VCPUs_at_startup); its memory "
        "overhead follows.",
    ),
    _vm_message(
        "set_VCPUs_at_startup",
        _value("value"),
        roles=at_least(VM_ADMIN),
        is_async=False,
        errors_raised=(errors.OPERATION_NOT_ALLOWED, errors.INVALID_VALUE),
        doc="Set the VM's vCPU count at boot (1 to VCPUs_max), in any power state, beside any "
        "operation; its memory overhead follows. Not on dom0.",
    ),
    _vm_message(
        "set_domain_type",
        _value("value", DOMAIN_TYPE),
        roles=at_least(VM_ADMIN),
        is_async=False,
        errors_raised=(errors.INVALID_VALUE,),
        doc="Set the domain type the VM boots as (not `unspecified`); HVM_boot_policy becomes "
        '"BIOS order" for hvm and "" otherwise. The memory overhead is not recomputed.',
    ),
    _vm_message(
        "set_HVM_boot_policy",
        _value("value", STRING),
        roles=at_least(VM_ADMIN),
        is_async=False,
        errors_raised=(),
        doc='Set the HVM boot policy; the domain type becomes pv for "" and hvm otherwise. '
        "The memory overhead is not recomputed.",
    ),
    _vm_message(
        "set_memory_target_live",
        _value("target"),
        errors_raised=(
            *_OPERATION_ERRORS,
            errors.MEMORY_CONSTRAINT_VIOLATION_ORDER,
            errors.HOST_NOT_ENOUGH_FREE_MEMORY,
        ),
        doc="Hold a running VM's balloon target at `target` (within its dynamic range) until "
        "the range changes or the VM stops.",
    ),
    _vm_message(
        "wait_memory_target_live",
        roles=at_least(READ_ONLY),
        errors_raised=(
            *_OPERATION_ERRORS,
            errors.VM_MEMORY_TARGET_WAIT_TIMEOUT,
        ),
        doc="Wait (up to 256 s) until a running VM is within 1 MiB of its balloon target.",
    ),
    _vm_message(
        "get_data_sources",
        result=Set(RecordOf("data_source")),
        roles=at_least(READ_ONLY),
        is_async=False,
        errors_raised=(),
        doc="The data sources of the VM's RRD while it runs, by name; none otherwise.",
    ),
    _vm_message(
        "query_data_source",
        Param(name="data_source", type=STRING),
        result=FLOAT,
        roles=at_least(READ_ONLY),
        is_async=False,
        errors_raised=(errors.INTERNAL_ERROR,),
        doc="The newest 5-s average of a data source of the running VM's RRD (NaN if "
        "unknown); INTERNAL_ERROR for a VM not running or a source its RRD does not have.",
    ),
    _vm_message(
        "get_cooperative",
        result=BOOL,
        roles=at_least(READ_ONLY),
        errors_raised=(),
        doc="Whether the guest is co-operating: running, with a balloon driver that has "
        "reached its target and is not flagged uncooperative.",
    ),
)

VM = ClassDef(
    name="VM",
    fields=_VM_FIELDS,
    messages=_VM_MESSAGES,
    writer_roles=at_least(VM_ADMIN),
    doc="A virtual machine (or template, or control domain).",
)

VM_METRICS = ClassDef(
    name="VM_metrics",
    fields=(
        dro("uuid", STRING),
        dro("memory_actual", INT, 0),
        dro("VCPUs_number", INT, 0),
        dro("VCPUs_utilisation", Map(INT, FLOAT)),
        dro("VCPUs_CPU", Map(INT, INT)),
        dro("VCPUs_params", SMAP),
        dro("VCPUs_flags", Map(INT, Set(STRING))),
        dro("state", Set(STRING)),
        dro("start_time", DATETIME),
        dro("install_time", DATETIME),
        dro("last_updated", DATETIME),
        rw("other_config", SMAP),
        dro("hvm", BOOL, False),
        dro("nested_virt", BOOL, False),
        dro("nomigrate", BOOL, False),
        dro("current_domain_type", DOMAIN_TYPE, "unspecified"),
    ),
    writer_roles=at_least(VM_ADMIN),
    doc="Run-time metrics of a VM.",
)
