// The pool's records as event.from reports them (protocol §6.1). The first call, with an
// empty token, reports every object as an `add`; later calls report what changed since.

export const CLASSES = ["host", "host_metrics", "vm", "vm_metrics", "pool"];
const NULL_REF = "OpaqueRef:NULL";
const EVENT_TIMEOUT_S = 30;
const RETRY_MS = [500, 1000, 2000, 5000];

export class Records {
  constructor() {
    this.tables = new Map(CLASSES.map((cls) => [cls, new Map()]));
  }

  get(cls, ref) {
    return this.tables.get(cls).get(ref);
  }

  all(cls) {
    return [...this.tables.get(cls)];
  }

  // Applies one event; returns what the object was and is (undefined when absent).
  apply(event) {
    const table = this.tables.get(event.class);
    const before = table.get(event.ref);
    if (event.operation === "del") {
      table.delete(event.ref);
    } else {
      table.set(event.ref, event.snapshot);
    }
    return { cls: event.class, ref: event.ref, before, after: table.get(event.ref) };
  }

  clear() {
    for (const table of this.tables.values()) {
      table.clear();
    }
  }

  // The hosts whose memory an event may have changed: where the object is, or was.
  hostsTouchedBy({ cls, ref, before, after }) {
    const hosts = new Set();
    const placed = (vm) => {
      for (const field of ["resident_on", "scheduled_to_be_resident_on"]) {
        if (vm?.[field] !== undefined && vm[field] !== NULL_REF) {
          hosts.add(vm[field]);
        }
      }
    };
    if (cls === "host") {
      hosts.add(ref);
    } else if (cls === "host_metrics") {
      this.all("host")
        .filter(([, host]) => host.metrics === ref)
        .forEach(([h]) => hosts.add(h));
    } else if (cls === "vm") {
      placed(before);
      placed(after);
    } else if (cls === "vm_metrics") {
      this.all("vm")
        .filter(([, vm]) => vm.metrics === ref)
        .forEach(([, vm]) => placed(vm));
    }
    return hosts;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follows event.from until the session ends. onBatch(changes, fresh) gets each batch's
// applied events; `fresh` is true when the records were rebuilt from a full snapshot.
// Failures other than a lost session are retried, with onTrouble(error) told each time.
export async function follow(session, records, { onBatch, onTrouble }) {
  let token = "";
  let failures = 0;
  for (;;) {
    let batch;
    try {
      batch = await session.call("event.from", CLASSES, token, EVENT_TIMEOUT_S);
    } catch (error) {
      if (error.code === "SESSION_INVALID" || error.name === "AbortError") {
        throw error;
      }
      if (error.code !== undefined) {
        token = ""; // EVENTS_LOST or a token the server no longer reads: start afresh.
      }
      onTrouble(error);
      await sleep(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]);
      continue;
    }
    failures = 0;
    const fresh = token === "";
    if (fresh) {
      records.clear();
    }
    token = batch.token;
    onBatch(
      batch.events.map((event) => records.apply(event)),
      fresh,
    );
  }
}
