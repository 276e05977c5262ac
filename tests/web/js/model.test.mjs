// model.js: what the views show, derived from the records and a host's ledger.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  balloonHealth,
  guests,
  hosts,
  ledgerParts,
  Palette,
} from "../../../src/xenmem/web/js/model.js";
import { Records } from "../../../src/xenmem/web/js/records.js";

function pool(entries) {
  const records = new Records();
  for (const [cls, ref, snapshot] of entries) {
    records.apply({ class: cls, operation: "add", ref, snapshot });
  }
  return records;
}

test("hosts and guests are in natural name order, then by ref", () => {
  const records = pool([
    ["host", "H2", { name_label: "host-10" }],
    ["host", "H1", { name_label: "host-9" }],
    ["vm", "B", { name_label: "web" }],
    ["vm", "A", { name_label: "web" }],
    ["vm", "C", { name_label: "db" }],
  ]);
  assert.deepEqual(
    hosts(records).map(([ref]) => ref),
    ["H1", "H2"],
  );
  assert.deepEqual(
    guests(records).map(([ref]) => ref),
    ["C", "A", "B"],
  );
});

test("templates, snapshots and control domains are not guests", () => {
  const records = pool([
    ["vm", "T", { name_label: "t", is_a_template: true }],
    ["vm", "S", { name_label: "s", is_a_snapshot: true }],
    ["vm", "D", { name_label: "dom0", is_control_domain: true }],
    ["vm", "G", { name_label: "g" }],
  ]);
  assert.deepEqual(
    guests(records).map(([ref]) => ref),
    ["G"],
  );
});

test("a guest keeps its hue; a new one gets the next, a golden angle on", () => {
  const palette = new Palette();
  const first = palette.hues([["A"], ["B"]]);
  assert.deepEqual([...first], [
    ["A", 200],
    ["B", 338],
  ]);
  const later = palette.hues([["C"], ["B"]]);
  assert.deepEqual([...later], [
    ["C", Math.round((200 + 2 * 137.508) % 360)],
    ["B", 338],
  ]);
});

test("ledger parts: fixed ones first, guests in hue order (refs may hold colons), then the rest", () => {
  const ledger = {
    total: 100,
    xen: 5,
    dom0: 10,
    reservations: 1,
    reserve: 2,
    free: 40,
    "vm:OpaqueRef:b:ram": 20,
    "vm:OpaqueRef:b:overhead": 1,
    "vm:OpaqueRef:a:overhead": 1,
    "vm:OpaqueRef:a:ram": 20,
    "vm:OpaqueRef:a:target": 20,
    reclaimable_cooperative: 3,
  };
  const records = pool([
    ["vm", "OpaqueRef:a", { name_label: "web" }],
    ["vm", "OpaqueRef:b", { name_label: "db" }],
  ]);
  const hues = new Palette().hues(guests(records));
  const parts = ledgerParts(ledger, records, hues).map((part) => [part.label, part.bytes]);
  assert.deepEqual(parts, [
    ["Xen & crash kernel", 5],
    ["squeezed's reserve", 2],
    ["dom0", 10],
    ["db · RAM", 20],
    ["db · overhead", 1],
    ["web · RAM", 20],
    ["web · overhead", 1],
    ["Reservations in flight", 1],
    ["Domains of another toolstack", 0],
    ["Free", 40],
    ["Unaccounted", 0],
  ]);
  assert.equal(
    parts.reduce((sum, [, bytes]) => sum + bytes, 0),
    ledger.total,
  );
});

test("a guest the records do not know yet is named by its ref and drawn last", () => {
  const ledger = { "vm:X:ram": 7, "vm:A:ram": 3 };
  const records = pool([["vm", "A", { name_label: "known" }]]);
  const hues = new Palette().hues(guests(records));
  const guestParts = ledgerParts(ledger, records, hues).filter((part) => part.kind === "ram");
  assert.deepEqual(
    guestParts.map((part) => [part.label, part.hue]),
    [
      ["known · RAM", 200],
      ["X · RAM", undefined],
    ],
  );
});

test("balloon health comes from the VM's metrics, or is unknown", () => {
  assert.equal(balloonHealth({ other_config: { balloon_health: "stuck" } }), "stuck");
  assert.equal(balloonHealth({ other_config: {} }), null);
  assert.equal(balloonHealth(undefined), null);
});
