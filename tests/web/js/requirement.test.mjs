// requirement.js: the host memory xapi requires to start a VM, from the spec's worked
// examples (xapi-memory.md §2.2, §2.4, §4.3). test_js_units.py compares it with xenmem's
// Python over many more shapes.

import assert from "node:assert/strict";
import { test } from "node:test";

import { GIB, MIB } from "../../../src/xenmem/web/js/bytes.js";
import {
  DOMAIN_TYPES,
  overheadMib,
  startRequirement,
} from "../../../src/xenmem/web/js/requirement.js";

test("A: HVM, static_max 4 GiB, 2 vCPUs, starting at a 2 GiB dynamic_min", () => {
  assert.equal(overheadMib("hvm", 4096, 2), 37);
  const vm = { domainType: "hvm", staticMax: 4 * GIB, dynamicMin: 2 * GIB, vcpus: 2 };
  assert.deepEqual(startRequirement(vm), {
    needed: 2186280960,
    start: 2 * GIB,
    overhead: 37 * MIB,
  });
});

test("B: PV, static_max 1 GiB, 1 vCPU: no memory inside the domain for Xen", () => {
  assert.equal(overheadMib("pv", 1024, 1), 11);
});

test("C: PV-in-PVH starts at static_max and pays for its shim", () => {
  assert.equal(overheadMib("pv_in_pvh", 8192, 4), 185);
  const vm = { domainType: "pv_in_pvh", staticMax: 8 * GIB, dynamicMin: GIB, vcpus: 4 };
  assert.equal(startRequirement(vm).needed, 8783921152);
  assert.equal(startRequirement(vm).start, 8 * GIB);
});

test("PVH is sized as HVM", () => {
  for (const [smax, vcpus] of [
    [256, 1],
    [4097, 7],
    [102400, 64],
  ]) {
    assert.equal(overheadMib("pvh", smax, vcpus), overheadMib("hvm", smax, vcpus));
  }
});

test("the per-vCPU allowance: ceil(38·v / 256) MiB", () => {
  // At static_max 0 the shadow term is its minimum, 1 + v MiB (256 pages per vCPU).
  const allowance = (vcpus) => overheadMib("pv", 0, vcpus) - 1 - vcpus;
  const byVcpus = [1, 6, 7, 13, 14, 20, 32, 64].map(allowance);
  assert.deepEqual(byVcpus, [1, 1, 2, 2, 3, 3, 5, 10]);
});

test("sizes are rounded up to whole MiB before the arithmetic", () => {
  const vm = { domainType: "hvm", staticMax: 4 * GIB + 1, dynamicMin: 2 * GIB + 1, vcpus: 2 };
  const { start, overhead } = startRequirement(vm);
  assert.equal(start, (2048 + 1) * MIB);
  assert.equal(overhead, overheadMib("hvm", 4097, 2) * MIB);
});

test("the form offers every domain type xapi knows", () => {
  assert.deepEqual(DOMAIN_TYPES, ["hvm", "pvh", "pv", "pv_in_pvh"]);
});
