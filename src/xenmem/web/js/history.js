// Each VM's balloon target, actual memory and dynamic range over the last minutes. The
// server keeps no history, so the page keeps its own from the events it sees: a point per
// change, each value holding until the next point.

export const WINDOW_MS = 5 * 60 * 1000;

const unchanged = (sample, point) => Object.keys(sample).every((key) => sample[key] === point[key]);

export class History {
  constructor() {
    this.series = new Map();
  }

  // `sample` maps names to bytes, or to null while there is no value (a halted VM).
  note(vm, now, sample) {
    let points = this.series.get(vm);
    if (points === undefined) {
      points = [];
      this.series.set(vm, points);
    }
    const last = points.at(-1);
    if (last !== undefined && unchanged(sample, last)) {
      return;
    }
    points.push({ ...sample, t: now });
    // Keep one point from before the window: it gives the values at the window's start.
    const firstInside = points.findIndex((point) => point.t > now - WINDOW_MS);
    if (firstInside > 1) {
      points.splice(0, firstInside - 1);
    }
  }

  points(vm) {
    return this.series.get(vm) ?? [];
  }

  forget(vm) {
    this.series.delete(vm);
  }
}
