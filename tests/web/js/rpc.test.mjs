// rpc.js: the page's XenAPI client over JSON-RPC 2.0 (protocol §3, §4), against a fetch
// that records the requests and answers as the server would.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Session, XenAPIError } from "../../../src/xenmem/web/js/rpc.js";

function server(t, answer) {
  const requests = [];
  t.mock.method(globalThis, "fetch", async (url, init) => {
    const body = JSON.parse(init.body);
    requests.push({ url, init, body });
    const { status = 200, reply } = answer(body);
    return { ok: status === 200, status, json: async () => reply };
  });
  return requests;
}

test("login, then calls with the session first, each with its own id", async (t) => {
  const requests = server(t, ({ id, method }) => ({
    reply: { jsonrpc: "2.0", id, result: method === "session.login_with_password" ? "S" : 7 },
  }));
  const session = await Session.login("root", "pw");
  assert.equal(session.ref, "S");
  assert.equal(await session.call("host.compute_free_memory", "H"), 7);
  assert.deepEqual(
    requests.map(({ url, init, body }) => [url, init.method, init.headers, body.jsonrpc]),
    [
      ["/jsonrpc", "POST", { "content-type": "application/json" }, "2.0"],
      ["/jsonrpc", "POST", { "content-type": "application/json" }, "2.0"],
    ],
  );
  assert.deepEqual(
    requests.map(({ body }) => [body.method, body.params]),
    [
      ["session.login_with_password", ["root", "pw"]],
      ["host.compute_free_memory", ["S", "H"]],
    ],
  );
  assert.notEqual(requests[0].body.id, requests[1].body.id);
});

test("a XenAPI failure becomes a XenAPIError with its code and parameters", async (t) => {
  server(t, ({ id }) => ({
    reply: { jsonrpc: "2.0", id, error: { code: 1, message: "HANDLE_INVALID", data: ["VM", "x"] } },
  }));
  const failure = await new Session("S").call("VM.get_record", "x").catch((error) => error);
  assert.ok(failure instanceof XenAPIError);
  assert.deepEqual([failure.code, failure.params], ["HANDLE_INVALID", ["VM", "x"]]);
  assert.equal(failure.message, "HANDLE_INVALID (VM, x)");
});

test("a failure without parameters is named by its code alone", () => {
  const failure = new XenAPIError("SESSION_INVALID", []);
  assert.equal(failure.message, "SESSION_INVALID");
  assert.equal(failure.name, "XenAPIError");
});

test("an HTTP error is an error of the transport, not a XenAPI one", async (t) => {
  server(t, () => ({ status: 503, reply: null }));
  const failure = await new Session("S").call("pool.get_all").catch((error) => error);
  assert.ok(!(failure instanceof XenAPIError));
  assert.equal(failure.message, "pool.get_all: HTTP 503");
});

test("logout ends the session and abandons the calls still waiting", async (t) => {
  const requests = server(t, ({ id }) => ({ reply: { jsonrpc: "2.0", id, result: "" } }));
  const session = new Session("S");
  await session.call("event.from", ["vm"], "", 30);
  const waiting = requests[0].init.signal;
  assert.equal(waiting.aborted, false);
  await session.logout();
  assert.deepEqual(requests[1].body.params, ["S"]);
  assert.equal(requests[1].body.method, "session.logout");
  assert.equal(waiting.aborted, true);
});
