// bytes.js: sizes for people in binary units, and the exact count kept beside them.

import assert from "node:assert/strict";
import { test } from "node:test";

import { exact, GIB, human, MIB, setBytes } from "../../../src/xenmem/web/js/bytes.js";

test("whole sizes have no decimals; others three significant digits at most", () => {
  const sizes = [0, 1023, 1024, 72 * MIB, 41 * MIB + 1, 1536 * MIB, 12.5 * GIB, 150 * GIB + 1];
  assert.deepEqual(sizes.map(human), [
    "0 B",
    "1023 B",
    "1 KiB",
    "72 MiB",
    "41.0 MiB",
    "1.50 GiB",
    "12.5 GiB",
    "150 GiB",
  ]);
});

test("the unit is the largest that the size reaches, up to TiB", () => {
  assert.equal(human(2 ** 40), "1 TiB");
  assert.equal(human(2 ** 40 - GIB), "1023 GiB");
  assert.equal(human(2048 * 2 ** 40), "2048 TiB");
});

test("a negative size (what a host is short by) keeps its sign", () => {
  assert.equal(human(-1536 * MIB), "-1.50 GiB");
  assert.equal(human(-512), "-512 B");
});

test("the exact count has thousands separators", () => {
  assert.equal(exact(12884901888), "12,884,901,888 bytes");
  assert.equal(exact(0), "0 bytes");
});

test("setBytes shows the size, keeps the count and labels the tooltip", () => {
  const element = { textContent: "", dataset: {} };
  setBytes(element, 3 * GIB);
  assert.equal(element.textContent, "3 GiB");
  assert.deepEqual(element.dataset, { bytes: "3221225472", tip: "3,221,225,472 bytes" });
  setBytes(element, 1024, "Free");
  assert.equal(element.dataset.tip, "Free\n1,024 bytes");
});
