"""The built-in templates a new pool starts with (simulator-defaults.md).

Memory limits are those of XenServer / XCP-ng's own templates; the guest behaviour keys
say how their simulated guests balloon: Linux and Windows guest agents announce a balloon
driver after about 20 s and 30 s; an installer has no guest tools at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenmem.db import Transaction
from xenmem.memory import DomainType, VmMemory, compute_memory_overhead
from xenmem.memory.units import BYTES_PER_MIB
from xenmem.xen import BALLOON_KEY, BOOT_SECONDS_KEY

__all__ = ["BUILT_IN_TEMPLATES", "Template", "create_templates"]

_GIB = 1024 * BYTES_PER_MIB


@dataclass(frozen=True, kw_only=True)
class Template:
    name: str
    static_min: int
    dynamic_min: int
    dynamic_max: int
    static_max: int
    vcpus: int
    guest: dict[str, str]

    @property
    def memory(self) -> VmMemory:
        return VmMemory(
            domain_type=DomainType.HVM,
            static_min=self.static_min,
            dynamic_min=self.dynamic_min,
            dynamic_max=self.dynamic_max,
            static_max=self.static_max,
            vcpus_max=self.vcpus,
            target=self.dynamic_min,
        )


BUILT_IN_TEMPLATES = (
    Template(
        name="Debian Bookworm 12",
        static_min=_GIB,
        dynamic_min=2 * _GIB,
        dynamic_max=2 * _GIB,
        static_max=2 * _GIB,
        vcpus=1,
        guest={BOOT_SECONDS_KEY: "20"},
    ),
    Template(
        name="Windows 10 (64-bit)",
        static_min=2 * _GIB,
        dynamic_min=4 * _GIB,
        dynamic_max=4 * _GIB,
        static_max=4 * _GIB,
        vcpus=2,
        guest={BOOT_SECONDS_KEY: "30"},
    ),
    Template(
        name="Windows 11",
        static_min=4 * _GIB,
        dynamic_min=8 * _GIB,
        dynamic_max=8 * _GIB,
        static_max=8 * _GIB,
        vcpus=2,
        guest={BOOT_SECONDS_KEY: "30"},
    ),
    Template(
        name="Other install media",
        static_min=128 * BYTES_PER_MIB,
        dynamic_min=256 * BYTES_PER_MIB,
        dynamic_max=256 * BYTES_PER_MIB,
        static_max=256 * BYTES_PER_MIB,
        vcpus=1,
        guest={BALLOON_KEY: "none"},
    ),
)


def create_templates(tx: Transaction) -> None:
    for template in BUILT_IN_TEMPLATES:
        memory = template.memory
        metrics = tx.create("VM_metrics", {})
        tx.create(
            "VM",
            {
                "name_label": template.name,
                "is_a_template": True,
                "is_default_template": True,
                "HVM_boot_policy": "BIOS order",
                "domain_type": memory.domain_type.value,
                "memory_static_min": memory.static_min,
                "memory_dynamic_min": memory.dynamic_min,
                "memory_target": memory.target,
                "memory_dynamic_max": memory.dynamic_max,
                "memory_static_max": memory.static_max,
                "memory_overhead": compute_memory_overhead(memory),
                "VCPUs_max": memory.vcpus_max,
                "VCPUs_at_startup": memory.vcpus_max,
                "other_config": {"default_template": "true", **template.guest},
                "metrics": metrics,
            },
        )
