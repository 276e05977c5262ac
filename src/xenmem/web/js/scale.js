// A VM's four memory limits drawn on one scale from 0 to static_max: the static range, the
// dynamic range inside it, and the balloon target (triangle) and actual memory (dot).

import { human } from "./bytes.js";
import { attrs, pixelViewBox, svg } from "./dom.js";

const HEIGHT = 52;
const PAD = 10;
const TRACK_Y = 16;
const TRACK_H = 12;

export function createScale() {
  return svg(
    "svg",
    { class: "scale", "aria-hidden": "true" },
    svg("rect", { class: "track", x: PAD, y: TRACK_Y, height: TRACK_H, rx: 3 }),
    svg("rect", { class: "static-range", y: TRACK_Y, height: TRACK_H, rx: 3 }),
    svg("rect", { class: "dynamic-range", y: TRACK_Y, height: TRACK_H, rx: 3 }),
    svg("line", { class: "target", y1: TRACK_Y - 4, y2: TRACK_Y + TRACK_H + 4 }),
    svg("path", { class: "target-head" }),
    svg("circle", { class: "actual", cy: TRACK_Y + TRACK_H / 2, r: 4.5 }),
    svg("text", { class: "start", x: PAD, y: HEIGHT - 6, text: "0" }),
    svg("text", { class: "end finish", y: HEIGHT - 6 }),
  );
}

// limits: bytes of static_min, dynamic_min, dynamic_max, static_max; target and actual are
// bytes, or null when the VM is not running.
export function updateScale(scale, { limits, target, actual }) {
  const top = Math.max(limits.static_max, target ?? 0, actual ?? 0, 1);
  const width = pixelViewBox(scale, HEIGHT);
  const x = (bytes) => PAD + ((width - 2 * PAD) * bytes) / top;
  const span = (element, from, to) =>
    attrs(element, { x: x(from), width: Math.max(0, x(to) - x(from)) });
  span(scale.querySelector(".track"), 0, top);
  span(scale.querySelector(".static-range"), limits.static_min, limits.static_max);
  span(scale.querySelector(".dynamic-range"), limits.dynamic_min, limits.dynamic_max);
  attrs(scale.querySelector(".finish"), { x: width - PAD });
  scale.querySelector(".finish").textContent = human(top);
  const running = target !== null;
  for (const marker of scale.querySelectorAll(".target, .target-head, .actual")) {
    marker.classList.toggle("absent", !running);
  }
  if (running) {
    const tx = x(target);
    attrs(scale.querySelector(".target"), { x1: tx, x2: tx });
    attrs(scale.querySelector(".target-head"), { d: `M${tx - 5},${TRACK_Y - 10}h10l-5,6z` });
    attrs(scale.querySelector(".actual"), { cx: x(actual ?? 0) });
  }
}
