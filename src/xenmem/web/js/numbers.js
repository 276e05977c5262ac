// Per host, the numbers that are computed rather than stored: host.get_memory_ledger (where
// every byte is) and host.compute_free_memory (what admission control compares against).
// No event carries them, so events only say when to ask again, and each host is asked at
// most once a second however busy the pool is.

const MIN_INTERVAL_MS = 1000;

export class HostNumbers {
  constructor(session, { onUpdate, onError }) {
    this.session = session;
    this.onUpdate = onUpdate;
    this.onError = onError;
    this.numbers = new Map();
    this.fetches = new Map();
  }

  get(host) {
    return this.numbers.get(host);
  }

  forget(host) {
    this.numbers.delete(host);
  }

  invalidate(host) {
    let state = this.fetches.get(host);
    if (state === undefined) {
      state = { last: -Infinity, timer: null, inFlight: false, dirty: false };
      this.fetches.set(host, state);
    }
    state.dirty = true;
    if (state.inFlight || state.timer !== null) {
      return; // The fetch already planned will see this change too.
    }
    const wait = Math.max(0, state.last + MIN_INTERVAL_MS - performance.now());
    state.timer = setTimeout(() => this.fetch(host, state), wait);
  }

  async fetch(host, state) {
    state.timer = null;
    state.dirty = false;
    state.inFlight = true;
    state.last = performance.now();
    try {
      const [ledger, free] = await Promise.all([
        this.session.call("host.get_memory_ledger", host),
        this.session.call("host.compute_free_memory", host),
      ]);
      this.numbers.set(host, { ledger, free });
      this.onUpdate(host);
    } catch (error) {
      this.onError(error);
    } finally {
      state.inFlight = false;
      if (state.dirty) {
        this.invalidate(host);
      }
    }
  }

  stop() {
    for (const state of this.fetches.values()) {
      clearTimeout(state.timer);
    }
    this.fetches.clear();
  }
}
