// history.js: the points a VM's chart is drawn from, kept by the page itself.

import assert from "node:assert/strict";
import { test } from "node:test";

import { History, WINDOW_MS } from "../../../src/xenmem/web/js/history.js";

const sample = (target) => ({ target, actual: target, dynamic_min: 1, dynamic_max: 9 });
const targets = (history, vm) => history.points(vm).map((point) => [point.t, point.target]);

test("a point per change: an unchanged sample adds nothing", () => {
  const history = new History();
  history.note("vm", 0, sample(4));
  history.note("vm", 1000, sample(4));
  history.note("vm", 2000, sample(5));
  history.note("vm", 3000, sample(null)); // halted: no value
  assert.deepEqual(targets(history, "vm"), [
    [0, 4],
    [2000, 5],
    [3000, null],
  ]);
});

test("any field changing makes a point", () => {
  const history = new History();
  history.note("vm", 0, sample(4));
  history.note("vm", 1000, { ...sample(4), actual: 5 });
  assert.equal(history.points("vm").length, 2);
});

test("the window keeps one point from before it, which gives its starting values", () => {
  const history = new History();
  history.note("vm", 0, sample(4));
  history.note("vm", 2000, sample(5));
  history.note("vm", 3000, sample(null));
  history.note("vm", 3000 + WINDOW_MS, sample(6));
  assert.equal(WINDOW_MS, 5 * 60 * 1000);
  assert.deepEqual(targets(history, "vm"), [
    [3000, null],
    [3000 + WINDOW_MS, 6],
  ]);
});

test("each VM has its own series, which can be forgotten", () => {
  const history = new History();
  history.note("a", 0, sample(1));
  history.note("b", 0, sample(2));
  history.note("b", 10, sample(2));
  assert.deepEqual(targets(history, "a"), [[0, 1]]);
  assert.deepEqual(targets(history, "b"), [[0, 2]]);
  history.forget("a");
  assert.deepEqual(history.points("a"), []);
  assert.deepEqual(targets(history, "b"), [[0, 2]]);
});
