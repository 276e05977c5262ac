// A XenAPI client over JSON-RPC 2.0 on /jsonrpc (protocol §3, §4): the page uses the same
// calls as any other client, with its session reference as the first parameter.

export class XenAPIError extends Error {
  constructor(code, params) {
    super(params.length > 0 ? `${code} (${params.join(", ")})` : code);
    this.name = "XenAPIError";
    this.code = code;
    this.params = params;
  }
}

let nextId = 1;

async function call(method, params, signal) {
  const response = await fetch("/jsonrpc", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", method, params, id: nextId++ }),
    signal,
  });
  if (!response.ok) {
    throw new Error(`${method}: HTTP ${response.status}`);
  }
  const reply = await response.json();
  // A v2 failure carries the XenAPI error code as its message and the parameters as data.
  if ("error" in reply) {
    throw new XenAPIError(reply.error.message, reply.error.data ?? []);
  }
  return reply.result;
}

export class Session {
  static async login(user, password) {
    const ref = await call("session.login_with_password", [user, password]);
    return new Session(ref);
  }

  constructor(ref) {
    this.ref = ref;
    this.aborter = new AbortController();
  }

  call(method, ...args) {
    return call(method, [this.ref, ...args], this.aborter.signal);
  }

  // Ends the session on the server and abandons every call still waiting (event.from).
  async logout() {
    try {
      await call("session.logout", [this.ref]);
    } finally {
      this.aborter.abort();
    }
  }
}
