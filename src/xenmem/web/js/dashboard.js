// The live dashboard of one session: follows event.from, keeps the hosts' numbers and the
// guests' history current, and redraws at most once a frame when anything changed.

import { renderFit } from "./fit.js";
import { History } from "./history.js";
import { renderHosts } from "./hosts.js";
import { balloonHealth, guests, hosts, Palette } from "./model.js";
import { HostNumbers } from "./numbers.js";
import { follow, Records } from "./records.js";
import { renderVms } from "./vms.js";

const RUNNING = new Set(["Running", "Paused"]);

export class Dashboard {
  constructor(session, { page, onStatus }) {
    this.session = session;
    this.page = page;
    this.onStatus = onStatus;
    this.records = new Records();
    this.history = new History();
    this.palette = new Palette();
    this.numbers = new HostNumbers(session, {
      onUpdate: () => this.schedule(),
      onError: (error) => this.trouble(error, "Reading a ledger failed"),
    });
    this.frame = 0;
    this.ended = null;
    // The charts scroll with time even when nothing changes.
    this.clock = setInterval(() => this.schedule(), 1000);
    page.querySelector("#fit form").addEventListener("input", () => this.schedule());
  }

  // Resolves never; rejects when the session ends (logged out, expired, or the server's
  // restart), with `this.ended` saying why.
  async run() {
    try {
      await follow(this.session, this.records, {
        onBatch: (changes, fresh) => this.onBatch(changes, fresh),
        onTrouble: (error) => this.trouble(error, "Reconnecting…"),
      });
    } finally {
      clearInterval(this.clock);
      this.numbers.stop();
      cancelAnimationFrame(this.frame);
    }
  }

  onBatch(changes, fresh) {
    const touched = new Set(fresh ? this.records.all("host").map(([ref]) => ref) : []);
    for (const change of changes) {
      this.records.hostsTouchedBy(change).forEach((host) => touched.add(host));
      if (change.after === undefined && change.cls === "host") {
        this.numbers.forget(change.ref);
      } else if (change.after === undefined && change.cls === "vm") {
        this.history.forget(change.ref);
      }
    }
    touched.forEach((host) => this.numbers.invalidate(host));
    this.noteHistory(Date.now());
    this.onStatus("live", `Live · ${new Date().toLocaleTimeString()}`);
    this.schedule();
  }

  noteHistory(now) {
    for (const [ref, vm] of guests(this.records)) {
      const running = RUNNING.has(vm.power_state);
      const actual = this.records.get("vm_metrics", vm.metrics)?.memory_actual ?? null;
      this.history.note(ref, now, {
        target: running ? vm.memory_target : null,
        actual: running ? actual : null,
        dynamic_min: vm.memory_dynamic_min,
        dynamic_max: vm.memory_dynamic_max,
      });
    }
  }

  // A lost session ends the dashboard; anything else is shown until the next good batch.
  trouble(error, doing) {
    if (error.code === "SESSION_INVALID") {
      this.ended = "The session has ended: sign in again.";
      this.session.aborter.abort();
    } else if (error.name !== "AbortError") {
      this.onStatus("trouble", `${doing} (${error.message})`);
    }
  }

  schedule() {
    if (this.frame === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render(Date.now());
      });
    }
  }

  vmView([ref, vm], hue, now) {
    const metrics = this.records.get("vm_metrics", vm.metrics);
    const running = RUNNING.has(vm.power_state);
    return {
      ref,
      hue,
      metrics,
      now,
      name: vm.name_label,
      powerState: vm.power_state,
      hostName: this.records.get("host", vm.resident_on)?.name_label ?? null,
      health: running ? balloonHealth(metrics) : null,
      limits: {
        static_min: vm.memory_static_min,
        dynamic_min: vm.memory_dynamic_min,
        dynamic_max: vm.memory_dynamic_max,
        static_max: vm.memory_static_max,
      },
      target: running ? vm.memory_target : null,
      actual: running ? (metrics?.memory_actual ?? null) : null,
      points: this.history.points(ref),
    };
  }

  render(now) {
    const [pool] = this.records.all("pool");
    this.page.querySelector("#pool").textContent =
      pool === undefined ? "" : `pool ${pool[1].name_label}`;
    const hostList = hosts(this.records);
    const guestList = guests(this.records);
    const hueOf = this.palette.hues(guestList);
    renderHosts(
      this.page.querySelector("#hosts"),
      hostList.map(([ref, host]) => ({
        ref,
        host,
        numbers: this.numbers.get(ref),
        records: this.records,
        hues: hueOf,
      })),
    );
    renderVms(
      this.page.querySelector("#vms"),
      guestList.map((entry) => this.vmView(entry, hueOf.get(entry[0]), now)),
    );
    this.page.querySelector("#no-vms").hidden = guestList.length > 0;
    renderFit(
      this.page.querySelector("#fit"),
      hostList.map(([ref, host]) => ({
        ref,
        name: host.name_label,
        free: this.numbers.get(ref)?.free,
      })),
    );
  }
}
