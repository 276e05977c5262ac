// What the views show, derived from the records and the hosts' numbers.

const GOLDEN_ANGLE = 137.508;
const VM_PART = /^vm:(.+):(ram|overhead)$/;

const byName = ([refA, a], [refB, b]) =>
  a.name_label.localeCompare(b.name_label, undefined, { numeric: true }) ||
  refA.localeCompare(refB);

export function hosts(records) {
  return records.all("host").sort(byName);
}

// Guests, not templates, snapshots or control domains (dom0 is its own ledger part).
export function guests(records) {
  return records
    .all("vm")
    .filter(([, vm]) => !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain)
    .sort(byName);
}

// A colour per guest, the same in the ledger bar, its table and the guest's card. A guest
// keeps its colour while the page is open; each new one is a golden angle on from the last,
// far from the colours already given.
export class Palette {
  constructor() {
    this.given = new Map();
  }

  // Guest → hue, in the guests' order.
  hues(guestList) {
    for (const [ref] of guestList) {
      if (!this.given.has(ref)) {
        this.given.set(ref, Math.round((200 + this.given.size * GOLDEN_ANGLE) % 360));
      }
    }
    return new Map(guestList.map(([ref]) => [ref, this.given.get(ref)]));
  }
}

// The ledger's parts in the order they are drawn, guests in the order of `hueOf`; their
// bytes add up to ledger.total.
export function ledgerParts(ledger, records, hueOf) {
  const order = new Map([...hueOf.keys()].map((vm, index) => [vm, index]));
  const rank = (part) => order.get(part.vm) ?? order.size;
  const head = [
    { key: "xen", label: "Xen & crash kernel", short: "Xen", kind: "xen" },
    { key: "reserve", label: "squeezed's reserve", short: "reserve", kind: "reserve" },
    { key: "dom0", label: "dom0", short: "dom0", kind: "dom0" },
  ];
  const vms = Object.keys(ledger)
    .map((key) => key.match(VM_PART))
    .filter((match) => match !== null)
    .map(([key, vm, what]) => {
      const name = records.get("vm", vm)?.name_label ?? vm;
      const label = `${name} · ${what === "ram" ? "RAM" : "overhead"}`;
      return { key, vm, label, short: name, kind: what, hue: hueOf.get(vm) };
    })
    .sort((a, b) => rank(a) - rank(b) || a.vm.localeCompare(b.vm) || (a.kind === "ram" ? -1 : 1));
  const tail = [
    {
      key: "reservations",
      label: "Reservations in flight",
      short: "reservations",
      kind: "reservations",
    },
    {
      key: "other_domains",
      label: "Domains of another toolstack",
      short: "other",
      kind: "other",
    },
    { key: "free", label: "Free", short: "free", kind: "free" },
    // Memory none of the other parts explains: 0 unless memory was lost or counted twice.
    { key: "unaccounted", label: "Unaccounted", short: "unaccounted", kind: "unaccounted" },
  ];
  return [...head, ...vms, ...tail].map((part) => ({ ...part, bytes: ledger[part.key] ?? 0 }));
}

export function balloonHealth(metrics) {
  return metrics?.other_config?.balloon_health ?? null;
}
