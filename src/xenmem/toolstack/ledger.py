"""host.get_memory_ledger: where every byte of a host is, from one look at it.

An extension of xenmem's (not in xapi). The map's parts add up to
host_metrics.memory_total:

    total = xen + dom0 + Σ vm:<ref>:ram + Σ vm:<ref>:overhead + reservations
            + other_domains + reserve + free + unaccounted

- `xen`: Xen itself and the crash kernel, measured once per host boot (what no domain
  held and was not free then; it does not change while the host runs);
- `dom0`: the control domain;
- `vm:<ref>:ram` / `vm:<ref>:overhead`: a resident guest's pages and Xen's memory for it
  (shadow);
- `reservations`: memory held for domains being built (squeezed's reservation records,
  the part of a new domain's reservation it has not allocated yet, and what domains being
  built hold already);
- `other_domains`: domains the toolstack did not build (on a real host: those of another
  toolstack); never touched, but counted;
- `reserve`: squeezed's host reserve (73728 KiB) kept free of any domain;
- `free`: the rest of Xen's free memory;
- `unaccounted`: what none of the above explains. It is 0 unless memory is lost (a
  domain the records do not know, a miscount): the dashboard and `xenmem status` show it
  in red otherwise.

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

PARTS = (
    "xen",
    "dom0",
    "reservations",
    "other_domains",
    "reserve",
    "free",
    "unaccounted",
)
"""The host-wide parts; with every `vm:<ref>:ram` and `vm:<ref>:overhead` they sum to total."""


def memory_ledger(ctx: Context, host: str) -> dict[str, int]:
    total = ctx.host(host).memory_total
    agent = ctx.pool.agent(host)
    snapshot = agent.snapshot()
    stats = agent.stats(snapshot)
    resident = agent.domains.resident
    building = agent.domains.building
    footprints = {
        d.domid: (bytes_of_kib(d.tot_kib), bytes_of_mib(d.shadow_mib)) for d in snapshot.xen_domains
    }
    usable_free = bytes_of_kib(snapshot.host.free_kib)
    reserve = min(max(0, usable_free), agent.reserve_bytes)
    toolstacks = {0, *resident.values(), *building}
    ledger: dict[str, int] = {
        "total": total,
        "xen": agent.xen_bytes,
        "dom0": sum(footprints.get(0, (0, 0))),
        "reservations": bytes_of_kib(snapshot.unaccounted_kib + snapshot.reserved_kib)
        + sum(sum(footprints.get(domid, (0, 0))) for domid in building),
        "other_domains": sum(sum(f) for domid, f in footprints.items() if domid not in toolstacks),
        "reserve": reserve,
        "free": usable_free - reserve,
        "reclaimable_cooperative": 0,
        "reclaimable_uncooperative": 0,
    }
    guests = 0
    for vm, domid in resident.items():
        ram, overhead = footprints.get(domid, (0, 0))
        ledger |= {f"vm:{vm}:ram": ram, f"vm:{vm}:overhead": overhead}
        guests += ram + overhead
    for vm, stat in stats.items():
        ledger |= {f"vm:{vm}:target": stat.target_bytes, f"vm:{vm}:actual": stat.actual_bytes}
        if stat.can_balloon:
            healthy = not stat.uncooperative and not stat.refused
            key = "reclaimable_cooperative" if healthy else "reclaimable_uncooperative"
            dynamic_min = ctx.vm(vm).constraints.dynamic_min
            ledger[key] += max(0, stat.actual_bytes - dynamic_min)
    for vm in ctx.store.refs_where("VM", "resident_on", host) | ctx.store.refs_where(
        "VM", "scheduled_to_be_resident_on", host
    ):
        view = ctx.vm(vm)
        if not view.is_control_domain:
            ledger[f"vm:{vm}:dynamic_min"] = view.constraints.dynamic_min
            ledger[f"vm:{vm}:memory_overhead"] = view.memory_overhead
    known = sum(ledger[part] for part in PARTS if part != "unaccounted") + guests
    ledger["unaccounted"] = total - known
    return ledger


@implements("host.get_memory_ledger")
def host_get_memory_ledger(ctx: Context, host: str) -> dict[str, int]:
    return memory_ledger(ctx, host)
