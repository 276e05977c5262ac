// A small chart of a VM's balloon target (dashed) and actual memory (solid) inside its
// dynamic range (shaded), on the same 0..static_max scale as the range drawn above it. It
// spans the history kept, from half a minute (a page just opened) to the whole window.

import { human } from "./bytes.js";
import { attrs, pixelViewBox, svg } from "./dom.js";
import { WINDOW_MS } from "./history.js";

const HEIGHT = 84;
const TOP = 8;
const BOTTOM = 66;
const MIN_SPAN_MS = 30 * 1000;

export function createChart() {
  return svg(
    "svg",
    { class: "chart", "aria-hidden": "true" },
    svg("rect", { class: "plot", x: 0, y: TOP, height: BOTTOM - TOP }),
    svg("path", { class: "dynamic-band" }),
    svg("path", { class: "target-line" }),
    svg("path", { class: "actual-line" }),
    svg("text", { class: "axis-label since", x: 2, y: HEIGHT - 4 }),
    svg("text", { class: "axis-label end now", y: HEIGHT - 4, text: "now" }),
    svg("text", { class: "axis-label peak", x: 4, y: TOP + 11 }),
    svg("text", { class: "idle", y: (TOP + BOTTOM) / 2 + 4, text: "not running" }),
  );
}

// A step line through the points' `field`; a null value lifts the pen.
function stepPath(points, field, x, y, now) {
  let d = "";
  let drawing = false;
  points.forEach((point, index) => {
    const value = point[field];
    const until = x(points[index + 1]?.t ?? now);
    if (value === null) {
      drawing = false;
      return;
    }
    d += drawing ? `V${y(value)}` : `M${x(point.t)},${y(value)}`;
    d += `H${until}`;
    drawing = true;
  });
  return d;
}

// The band between two fields, a rectangle per point until the next one.
function bandPath(points, low, high, x, y, now) {
  return points
    .map((point, index) => {
      const [from, until] = [x(point.t), x(points[index + 1]?.t ?? now)];
      return `M${from},${y(point[high])}H${until}V${y(point[low])}H${from}Z`;
    })
    .join("");
}

function ago(ms) {
  return ms < 120 * 1000 ? `−${Math.round(ms / 1000)} s` : `−${Math.round(ms / 60000)} min`;
}

export function updateChart(chart, { points, limits, now }) {
  const peaks = points.map((p) => Math.max(p.target ?? 0, p.actual ?? 0, p.dynamic_max));
  const top = Math.max(limits.static_max, ...peaks, 1);
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, now - (points[0]?.t ?? now)));
  const width = pixelViewBox(chart, HEIGHT);
  attrs(chart.querySelector(".plot"), { width });
  attrs(chart.querySelector(".now"), { x: width - 2 });
  attrs(chart.querySelector(".idle"), { x: width / 2 });
  const x = (t) => (width * Math.max(0, t - (now - span))) / span;
  chart.querySelector(".since").textContent = ago(span);
  const y = (bytes) => BOTTOM - ((BOTTOM - TOP) * bytes) / top;
  chart
    .querySelector(".dynamic-band")
    .setAttribute("d", bandPath(points, "dynamic_min", "dynamic_max", x, y, now));
  chart.querySelector(".target-line").setAttribute("d", stepPath(points, "target", x, y, now));
  chart.querySelector(".actual-line").setAttribute("d", stepPath(points, "actual", x, y, now));
  chart.querySelector(".peak").textContent = human(top);
  chart.querySelector(".idle").classList.toggle(
    "absent",
    points.some((p) => p.target !== null),
  );
}
