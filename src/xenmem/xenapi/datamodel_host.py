"""pool, host and host_metrics: every field with xapi's wire name, type and qualifier.

host_metrics.memory_free is lifecycle-Removed: its getter answers MESSAGE_REMOVED while
the field stays in records and event snapshots (protocol §5).
"""

from __future__ import annotations

from xenmem import errors
from xenmem.errors import ErrorDef
from xenmem.xenapi.datamodel import ClassDef, Message, Param, dro, rw
from xenmem.xenapi.roles import POOL_OPERATOR, READ_ONLY, at_least
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

__all__ = ["DATA_SOURCE", "DATA_SOURCES", "HOST", "HOST_METRICS", "POOL"]

SMAP = Map(STRING, STRING)


def _host_message(
    name: str,
    *params: Param,
    result: ApiType | None = None,
    roles: frozenset[str] = at_least(READ_ONLY),
    is_async: bool = True,
    errors_raised: tuple[ErrorDef, ...] = (),
    doc: str,
) -> Message:
    """A host message whose first parameter is the host itself."""
    return Message(
        cls="host",
        name=name,
        params=(Param(name="host", type=Ref("host")), *params),
        result=result,
        roles=roles,
        is_async=is_async,
        errors=errors_raised,
        doc=doc,
    )


DATA_SOURCES = Set(RecordOf("data_source"))


_HOST_OPERATIONS = Enum(
    "host_allowed_operations",
    (
        "provision",
        "evacuate",
        "shutdown",
        "reboot",
        "power_on",
        "vm_start",
        "vm_resume",
        "vm_migrate",
        "apply_updates",
        "enable",
    ),
)
_POOL_OPERATIONS = Enum(
    "pool_allowed_operations",
    (
        "ha_enable",
        "ha_disable",
        "cluster_create",
        "designate_new_master",
        "configure_repositories",
        "sync_updates",
        "sync_bundle",
        "get_updates",
        "apply_updates",
        "tls_verification_enable",
        "cert_refresh",
        "exchange_certificates_on_join",
        "exchange_ca_certificates_on_join",
        "copy_primary_host_certs",
        "eject",
    ),
)
_GUIDANCE = Enum(
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
_DISPLAY = Enum("host_display", ("enabled", "disable_on_reboot", "disabled", "enable_on_reboot"))
_NUMA = Enum("host_numa_affinity_policy", ("any", "best_effort", "default_policy"))
_SCHED_GRAN = Enum("host_sched_gran", ("core", "cpu", "socket"))

POOL = ClassDef(
    name="pool",
    fields=(
        dro("uuid", STRING),
        rw("name_label", STRING),
        rw("name_description", STRING),
        dro("master", Ref("host")),
        rw("default_SR", Ref("SR")),
        rw("suspend_image_SR", Ref("SR")),
        rw("crash_dump_SR", Ref("SR")),
        rw("other_config", SMAP),
        dro("ha_enabled", BOOL, False),
        dro("ha_configuration", SMAP),
        dro("ha_statefiles", Set(STRING)),
        dro("ha_host_failures_to_tolerate", INT, 0),
        dro("ha_plan_exists_for", INT, 0),
        rw("ha_allow_overcommit", BOOL, False),
        dro("ha_overcommitted", BOOL, False),
        dro("blobs", Map(STRING, Ref("blob"))),
        rw("tags", Set(STRING)),
        rw("gui_config", SMAP),
        rw("health_check_config", SMAP),
        dro("wlb_url", STRING),
        dro("wlb_username", STRING),
        dro("wlb_enabled", BOOL, False),
        dro("wlb_verify_cert", BOOL, False),
        dro("redo_log_enabled", BOOL, False),
        dro("redo_log_vdi", Ref("VDI")),
        dro("vswitch_controller", STRING),
        dro("restrictions", SMAP),
        dro("metadata_VDIs", Set(Ref("VDI"))),
        dro("ha_cluster_stack", STRING, "xhad"),
        dro("allowed_operations", Set(_POOL_OPERATIONS)),
        dro("current_operations", Map(STRING, _POOL_OPERATIONS)),
        dro("guest_agent_config", SMAP),
        dro("cpu_info", SMAP),
        rw("policy_no_vendor_device", BOOL, False),
        rw("live_patching_disabled", BOOL, False),
        rw("igmp_snooping_enabled", BOOL, False),
        dro("uefi_certificates", STRING),
        dro("custom_uefi_certificates", STRING),
        dro("is_psr_pending", BOOL, False),
        dro("tls_verification_enabled", BOOL, False),
        dro("repositories", Set(Ref("Repository"))),
        dro("client_certificate_auth_enabled", BOOL, False),
        dro("client_certificate_auth_name", STRING),
        dro("repository_proxy_url", STRING),
        dro("repository_proxy_username", STRING),
        dro("repository_proxy_password", Ref("secret")),
        dro("migration_compression", BOOL, False),
        dro("coordinator_bias", BOOL, True),
        dro("telemetry_uuid", Ref("secret")),
        dro(
            "telemetry_frequency",
            Enum("telemetry_frequency", ("daily", "weekly", "monthly")),
            "weekly",
        ),
        dro("telemetry_next_collection", DATETIME),
        dro("last_update_sync", DATETIME),
        dro("update_sync_frequency", Enum("update_sync_frequency", ("daily", "weekly")), "weekly"),
        dro("update_sync_day", INT, 0),
        dro("update_sync_enabled", BOOL, False),
        dro("recommendations", SMAP),
        dro("license_server", SMAP),
        dro("ha_reboot_vm_on_internal_shutdown", BOOL, True),
        dro("ext_auth_max_threads", INT, 1),
        dro("local_auth_max_threads", INT, 8),
        dro("ext_auth_cache_enabled", BOOL, False),
        dro("ext_auth_cache_size", INT, 50),
        dro("ext_auth_cache_expiry", INT, 300),
    ),
    writer_roles=at_least(POOL_OPERATOR),
    doc="The pool: a set of hosts under one coordinator (master).",
)

HOST = ClassDef(
    name="host",
    fields=(
        dro("uuid", STRING),
        rw("name_label", STRING),
        rw("name_description", STRING),
        dro("memory_overhead", INT, 0),
        dro("allowed_operations", Set(_HOST_OPERATIONS)),
        dro("current_operations", Map(STRING, _HOST_OPERATIONS)),
        dro("API_version_major", INT, 0),
        dro("API_version_minor", INT, 0),
        dro("API_version_vendor", STRING),
        dro("API_version_vendor_implementation", SMAP),
        dro("enabled", BOOL, True),
        dro("software_version", SMAP),
        rw("other_config", SMAP),
        dro("capabilities", Set(STRING)),
        dro("cpu_configuration", SMAP),
        dro("sched_policy", STRING),
        dro("supported_bootloaders", Set(STRING)),
        dro("resident_VMs", Set(Ref("VM"))),
        rw("logging", SMAP),
        dro("PIFs", Set(Ref("PIF"))),
        rw("suspend_image_sr", Ref("SR")),
        rw("crash_dump_sr", Ref("SR")),
        dro("crashdumps", Set(Ref("host_crashdump"))),
        dro("patches", Set(Ref("host_patch"))),
        dro("updates", Set(Ref("pool_update"))),
        dro("PBDs", Set(Ref("PBD"))),
        dro("host_CPUs", Set(Ref("host_cpu"))),
        dro("cpu_info", SMAP),
        rw("hostname", STRING),
        rw("address", STRING),
        dro("metrics", Ref("host_metrics")),
        dro("license_params", SMAP),
        dro("ha_statefiles", Set(STRING)),
        dro("ha_network_peers", Set(STRING)),
        dro("blobs", Map(STRING, Ref("blob"))),
        rw("tags", Set(STRING)),
        dro("external_auth_type", STRING),
        dro("external_auth_service_name", STRING),
        dro("external_auth_configuration", SMAP),
        dro("edition", STRING),
        rw("license_server", SMAP),
        dro("bios_strings", SMAP),
        dro("power_on_mode", STRING),
        dro("power_on_config", SMAP),
        dro("local_cache_sr", Ref("SR")),
        dro("chipset_info", SMAP),
        dro("PCIs", Set(Ref("PCI"))),
        dro("PGPUs", Set(Ref("PGPU"))),
        dro("PUSBs", Set(Ref("PUSB"))),
        dro("ssl_legacy", BOOL, False),
        rw("guest_VCPUs_params", SMAP),
        rw("display", _DISPLAY, "enabled"),
        dro("virtual_hardware_platform_versions", Set(INT)),
        dro("control_domain", Ref("VM")),
        dro("updates_requiring_reboot", Set(Ref("pool_update"))),
        dro("features", Set(Ref("Feature"))),
        dro("iscsi_iqn", STRING),
        dro("multipathing", BOOL, False),
        dro("uefi_certificates", STRING),
        dro("certificates", Set(Ref("Certificate"))),
        dro("editions", Set(STRING)),
        dro("pending_guidances", Set(_GUIDANCE)),
        dro("tls_verification_enabled", BOOL, False),
        dro("last_software_update", DATETIME),
        dro("https_only", BOOL, False),
        dro(
            "latest_synced_updates_applied",
            Enum("latest_synced_updates_applied_state", ("yes", "no", "unknown")),
            "unknown",
        ),
        dro("numa_affinity_policy", _NUMA, "default_policy"),
        dro("pending_guidances_recommended", Set(_GUIDANCE)),
        dro("pending_guidances_full", Set(_GUIDANCE)),
        dro("last_update_hash", STRING),
        dro("ssh_enabled", BOOL, True),
        dro("ssh_enabled_timeout", INT, 0),
        dro("ssh_expiry", DATETIME),
        dro("console_idle_timeout", INT, 0),
        dro("ssh_auto_mode", BOOL, False),
        dro("secure_boot", BOOL, False),
        dro("max_cstate", STRING),
        dro("sched_gran", _SCHED_GRAN, "cpu"),
    ),
    messages=(
        _host_message(
            "compute_free_memory",
            result=INT,
            doc="Bytes free for new VMs: total - host overhead - Σ(dynamic_min + overhead) of "
            "the VMs resident or scheduled here (xapi-memory.md §4.2).",
        ),
        _host_message(
            "compute_memory_overhead",
            result=INT,
            doc="The host's memory overhead in bytes (the stored host.memory_overhead, §5).",
        ),
        _host_message(
            "get_memory_ledger",
            result=Map(STRING, INT),
            doc="xenmem extension: where every byte of the host is, in bytes. The parts xen, "
            "dom0, reservations, reserve, free and every vm:<ref>:ram and vm:<ref>:overhead "
            "add up to total; vm:<ref>:dynamic_min, target, actual, memory_overhead and "
            "reclaimable_cooperative, reclaimable_uncooperative are details.",
        ),
        _host_message(
            "get_data_sources",
            result=DATA_SOURCES,
            is_async=False,
            doc="The host RRD's data sources, by name (their value is always 0).",
        ),
        _host_message(
            "query_data_source",
            Param(name="data_source", type=STRING),
            result=FLOAT,
            is_async=False,
            errors_raised=(errors.INTERNAL_ERROR,),
            doc="The newest 5-s average of a data source of the host's RRD (NaN if unknown); "
            "INTERNAL_ERROR for a source the RRD does not have.",
        ),
    ),
    writer_roles=at_least(POOL_OPERATOR),
    doc="A physical host running Xen.",
)

HOST_METRICS = ClassDef(
    name="host_metrics",
    fields=(
        dro("uuid", STRING),
        dro("memory_total", INT, 0),
        dro("memory_free", INT, 0, removed=True),
        dro("live", BOOL, False),
        dro("last_updated", DATETIME),
        rw("other_config", SMAP),
    ),
    writer_roles=at_least(POOL_OPERATOR),
    doc="Run-time metrics of a host.",
)

DATA_SOURCE = ClassDef(
    name="data_source",
    fields=(
        dro("name_label", STRING),
        dro("name_description", STRING),
        dro("enabled", BOOL, False),
        dro("standard", BOOL, False),
        dro("units", STRING),
        dro("min", FLOAT),
        dro("max", FLOAT),
        dro("value", FLOAT),
    ),
    database=False,
    persist=False,
    events=False,
    doc="A data source recorded in an RRD (host and VM get_data_sources).",
)
