// records.js: the pool's records as event.from reports them, and the loop that follows it.

import assert from "node:assert/strict";
import { test } from "node:test";

import { CLASSES, follow, Records } from "../../../src/xenmem/web/js/records.js";

const NULL = "OpaqueRef:NULL";

test("apply adds, replaces and deletes, and says what was and is", () => {
  const records = new Records();
  const added = records.apply({ class: "vm", operation: "add", ref: "V", snapshot: { a: 1 } });
  assert.deepEqual(added, { cls: "vm", ref: "V", before: undefined, after: { a: 1 } });
  const changed = records.apply({ class: "vm", operation: "mod", ref: "V", snapshot: { a: 2 } });
  assert.deepEqual([changed.before, changed.after], [{ a: 1 }, { a: 2 }]);
  const deleted = records.apply({ class: "vm", operation: "del", ref: "V", snapshot: null });
  assert.deepEqual([deleted.before, deleted.after], [{ a: 2 }, undefined]);
  assert.deepEqual(records.all("vm"), []);
});

test("clear empties every class", () => {
  const records = new Records();
  for (const cls of CLASSES) {
    records.apply({ class: cls, operation: "add", ref: cls, snapshot: {} });
  }
  records.clear();
  assert.deepEqual(
    CLASSES.map((cls) => records.all(cls).length),
    CLASSES.map(() => 0),
  );
});

test("an event touches the hosts a VM is or was on, or the host itself", () => {
  const pool = new Records();
  const add = (cls, ref, snapshot) => pool.apply({ class: cls, operation: "add", ref, snapshot });
  add("host", "H1", { metrics: "HM1" });
  add("host", "H2", { metrics: "HM2" });
  const vm = { resident_on: "H1", scheduled_to_be_resident_on: NULL, metrics: "VM1" };
  add("vm", "V", vm);
  // Leaves H1 for H2 (scheduled there).
  const moved = add("vm", "V", { ...vm, resident_on: NULL, scheduled_to_be_resident_on: "H2" });
  const touched = (change) => [...pool.hostsTouchedBy(change)].sort();
  assert.deepEqual(touched(moved), ["H1", "H2"]);
  assert.deepEqual(touched(add("vm_metrics", "VM1", {})), ["H2"]);
  assert.deepEqual(touched(add("host_metrics", "HM1", {})), ["H1"]);
  assert.deepEqual(touched(add("host", "H2", {})), ["H2"]);
  assert.deepEqual(touched(add("pool", "P", {})), []);
});

class XenAPIError extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

// A session whose event.from answers are given in advance; past them, the session ends.
function scriptedSession(answers) {
  const calls = [];
  return {
    calls,
    async call(method, ...args) {
      calls.push([method, ...args]);
      const answer = answers.shift() ?? new XenAPIError("SESSION_INVALID");
      if (answer instanceof Error) {
        throw answer;
      }
      return answer;
    },
  };
}

const add = (ref, name) => ({ class: "vm", operation: "add", ref, snapshot: { name_label: name } });
const mod = (ref, name) => ({ class: "vm", operation: "mod", ref, snapshot: { name_label: name } });

// Runs `follow` to its end with mocked timers, ticking through each retry's wait.
async function followToTheEnd(t, session, records) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const batches = [];
  const troubles = [];
  const following = follow(session, records, {
    onBatch: (changes, fresh) => batches.push([changes.map((c) => c.ref), fresh]),
    onTrouble: (error) => troubles.push(error.message),
  });
  let ended;
  following.catch((error) => {
    ended = error;
  });
  while (ended === undefined) {
    await new Promise((resolve) => setImmediate(resolve));
    t.mock.timers.tick(5000);
  }
  return { ended, batches, troubles };
}

test("follow applies each batch, passing the token on, until the session ends", async (t) => {
  const records = new Records();
  records.apply(add("stale", "from an earlier session"));
  const session = scriptedSession([
    { token: "t1", events: [add("A", "a"), add("B", "b")] },
    { token: "t2", events: [mod("A", "a2")] },
  ]);
  const { ended, batches, troubles } = await followToTheEnd(t, session, records);
  assert.equal(ended.code, "SESSION_INVALID");
  assert.deepEqual(
    session.calls.map(([method, classes, token, timeout]) => [method, classes, token, timeout]),
    [
      ["event.from", CLASSES, "", 30],
      ["event.from", CLASSES, "t1", 30],
      ["event.from", CLASSES, "t2", 30],
    ],
  );
  // The first batch is a full snapshot: the records are rebuilt from it.
  assert.deepEqual(batches, [
    [["A", "B"], true],
    [["A"], false],
  ]);
  assert.deepEqual(troubles, []);
  assert.deepEqual(
    records.all("vm").map(([ref, vm]) => [ref, vm.name_label]),
    [
      ["A", "a2"],
      ["B", "b"],
    ],
  );
});

test("a XenAPI error starts afresh from an empty token; a network error keeps it", async (t) => {
  const session = scriptedSession([
    { token: "t1", events: [add("A", "a")] },
    new Error("NetworkError"),
    new XenAPIError("EVENTS_LOST"),
    { token: "t9", events: [add("A", "a")] },
  ]);
  const { batches, troubles } = await followToTheEnd(t, session, new Records());
  assert.deepEqual(
    session.calls.map(([, , token]) => token),
    ["", "t1", "t1", "", "t9"],
  );
  assert.deepEqual(troubles, ["NetworkError", "EVENTS_LOST"]);
  assert.deepEqual(
    batches.map(([, fresh]) => fresh),
    [true, true],
  );
});

test("a failure is retried after 0.5 s, the next ones after longer waits", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const session = scriptedSession([new Error("down"), new Error("down"), new Error("down")]);
  const following = follow(session, new Records(), { onBatch: () => {}, onTrouble: () => {} });
  following.catch(() => {});
  const flush = () => new Promise((resolve) => setImmediate(resolve));
  const callsAfter = async (ms) => {
    t.mock.timers.tick(ms);
    await flush();
    return session.calls.length;
  };
  await flush();
  assert.equal(session.calls.length, 1);
  assert.deepEqual(
    [await callsAfter(499), await callsAfter(1), await callsAfter(999), await callsAfter(1)],
    [1, 2, 2, 3],
  );
  assert.deepEqual([await callsAfter(1999), await callsAfter(1)], [3, 4]);
});
