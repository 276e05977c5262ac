// numbers.js: each host's ledger and free memory, asked again when events say they
// changed, at most once a second per host however busy the pool is.

import assert from "node:assert/strict";
import { test } from "node:test";

import { HostNumbers } from "../../../src/xenmem/web/js/numbers.js";

// A session whose calls wait until the test answers them.
function heldSession() {
  const pending = [];
  return {
    pending,
    call(method, host) {
      return new Promise((resolve, reject) => pending.push({ method, host, resolve, reject }));
    },
    answerAll(value) {
      for (const call of pending.splice(0)) {
        call.resolve(value(call));
      }
    },
  };
}

// Virtual time for both the timers and performance.now, moved only by the test.
function virtualTime(t) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const clock = { now: 0 };
  t.mock.method(performance, "now", () => clock.now);
  const flush = () => new Promise((resolve) => setImmediate(resolve));
  return async (ms) => {
    clock.now += ms;
    t.mock.timers.tick(ms);
    await flush();
  };
}

test("a host's ledger and free memory are fetched together and kept", async (t) => {
  const pass = virtualTime(t);
  const session = heldSession();
  const updated = [];
  const numbers = new HostNumbers(session, { onUpdate: (h) => updated.push(h), onError: null });
  numbers.invalidate("H");
  await pass(0);
  assert.deepEqual(
    session.pending.map((call) => [call.method, call.host]),
    [
      ["host.get_memory_ledger", "H"],
      ["host.compute_free_memory", "H"],
    ],
  );
  session.answerAll((call) => (call.method === "host.get_memory_ledger" ? { total: 9 } : 4));
  await pass(0);
  assert.deepEqual(updated, ["H"]);
  assert.deepEqual(numbers.get("H"), { ledger: { total: 9 }, free: 4 });
  numbers.forget("H");
  assert.equal(numbers.get("H"), undefined);
});

test("changes while a fetch is planned or running make one more fetch, a second later", async (t) => {
  const pass = virtualTime(t);
  const session = heldSession();
  const numbers = new HostNumbers(session, { onUpdate: () => {}, onError: null });
  numbers.invalidate("H");
  numbers.invalidate("H");
  await pass(0);
  assert.equal(session.pending.length, 2); // one fetch: ledger and free memory
  numbers.invalidate("H"); // while it runs
  numbers.invalidate("H");
  await pass(300);
  session.answerAll(() => 0);
  await pass(0);
  assert.equal(session.pending.length, 0);
  await pass(699); // 999 ms after the first fetch began
  assert.equal(session.pending.length, 0);
  await pass(1);
  assert.equal(session.pending.length, 2);
  session.answerAll(() => 0);
  await pass(5000);
  assert.equal(session.pending.length, 0); // nothing changed since
});

test("hosts are fetched independently", async (t) => {
  const pass = virtualTime(t);
  const session = heldSession();
  const numbers = new HostNumbers(session, { onUpdate: () => {}, onError: null });
  numbers.invalidate("H1");
  numbers.invalidate("H2");
  await pass(0);
  assert.deepEqual(
    session.pending.map((call) => call.host),
    ["H1", "H1", "H2", "H2"],
  );
});

test("a failed fetch is reported, and the next change fetches again", async (t) => {
  const pass = virtualTime(t);
  const session = heldSession();
  const errors = [];
  const numbers = new HostNumbers(session, {
    onUpdate: () => assert.fail("no numbers came"),
    onError: (error) => errors.push(error.message),
  });
  numbers.invalidate("H");
  await pass(0);
  for (const call of session.pending.splice(0)) {
    call.reject(new Error("HOST_OFFLINE"));
  }
  await pass(0);
  assert.deepEqual(errors, ["HOST_OFFLINE"]);
  numbers.invalidate("H");
  await pass(1000);
  assert.equal(session.pending.length, 2);
});

test("stop cancels the fetches planned", async (t) => {
  const pass = virtualTime(t);
  const session = heldSession();
  const numbers = new HostNumbers(session, { onUpdate: () => {}, onError: null });
  numbers.invalidate("H");
  numbers.stop();
  await pass(5000);
  assert.equal(session.pending.length, 0);
});
