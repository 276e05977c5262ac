"""host.get_memory_ledger: where every byte of a host is, from one look at it.

An extension of xenmem's (not in xapi). The map's parts add up to
host_metrics.memory_total:

    total = xen + dom0 + Σ vm:<ref>:ram + Σ vm:<ref>:overhead + reservations + reserve + free

- `xen`: Xen itself and the crash kernel (what no domain holds and is not free);
- `dom0`: the control domain;
- `vm:<ref>:ram` / `vm:<ref>:overhead`: a resident guest's pages and Xen's memory for it
  (shadow);
- `reservations`: memory held for domains being built (squeezed's reservations and the
  unbuilt part of a new domain's reservation);
- `reserve`: squeezed's host reserve (73728 KiB) kept free of any domain;
- `free`: the rest.

Details beside the parts: `total`; per resident or scheduled VM `vm:<ref>:dynamic_min`,
`vm:<ref>:memory_overhead` (xapi's accounting), and for resident ones `vm:<ref>:target`,
`vm:<ref>:actual`; `reclaimable_cooperative` and `reclaimable_uncooperative`, the memory
guests hold above their dynamic_min, by whether their balloon driver co-operates.
All values are bytes.
"""

from __future__ import annotations

from xenmem.memory.units import bytes_of_kib, bytes_of_mib
from xenmem.toolstack.context import Context, implements

__all__ = ["PARTS", "memory_ledger"]

PARTS = ("xen", "dom0", "reservations", "reserve", "free")
"""The host-wide parts; with every `vm:<ref>:ram` and `vm:<ref>:overhead` they sum to total."""


def memory_ledger(ctx: Context, host: str) -> dict[str, int]:
    total = ctx.host(host).memory_total
    agent = ctx.pool.agent(host)
    snapshot = agent.snapshot()
    stats = agent.stats(snapshot)
    footprints = {
        d.domid: (bytes_of_kib(d.tot_kib), bytes_of_mib(d.shadow_mib)) for d in snapshot.xen_domains
    }
    usable_free = bytes_of_kib(snapshot.host.free_kib)
    reserve = min(max(0, usable_free), agent.reserve_bytes)
    ledger: dict[str, int] = {
        "total": total,
        "dom0": sum(footprints.get(0, (0, 0))),
        "reservations": bytes_of_kib(snapshot.unaccounted_kib + snapshot.reserved_kib),
        "reserve": reserve,
        "free": usable_free - reserve,
        "reclaimable_cooperative": 0,
        "reclaimable_uncooperative": 0,
    }
    guests = 0
    for vm, stat in stats.items():
        dynamic_min = ctx.vm(vm).constraints.dynamic_min
        ram, overhead = footprints.get(stat.domid, (0, 0))
        ledger |= {
            f"vm:{vm}:ram": ram,
            f"vm:{vm}:overhead": overhead,
            f"vm:{vm}:target": stat.target_bytes,
            f"vm:{vm}:actual": stat.actual_bytes,
        }
        guests += ram + overhead
        if stat.can_balloon:
            healthy = not stat.uncooperative and not stat.refused
            key = "reclaimable_cooperative" if healthy else "reclaimable_uncooperative"
            ledger[key] += max(0, stat.actual_bytes - dynamic_min)
    for vm in ctx.store.refs_where("VM", "resident_on", host) | ctx.store.refs_where(
        "VM", "scheduled_to_be_resident_on", host
    ):
        view = ctx.vm(vm)
        if not view.is_control_domain:
            ledger[f"vm:{vm}:dynamic_min"] = view.constraints.dynamic_min
            ledger[f"vm:{vm}:memory_overhead"] = view.memory_overhead
    held = sum(ledger[part] for part in PARTS if part != "xen") + guests
    ledger["xen"] = total - held
    return ledger


@implements("host.get_memory_ledger")
def host_get_memory_ledger(ctx: Context, host: str) -> dict[str, int]:
    return memory_ledger(ctx, host)
