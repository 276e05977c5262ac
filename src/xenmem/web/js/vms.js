// One card per guest: power state and balloon health, its limits on a scale with the
// balloon target and actual memory, and how those two moved over the last minutes.

import { setBytes } from "./bytes.js";
import { createChart, updateChart } from "./chart.js";
import { h, keyed } from "./dom.js";
import { createScale, updateScale } from "./scale.js";

const HEALTH = {
  cooperative: ["co-operating", "The balloon driver reached its target"],
  ballooning: ["ballooning", "The balloon driver is moving toward its target"],
  inactive: ["inactive", "squeezed found the balloon driver stuck and works around it"],
  uncooperative: ["uncooperative", "Off target for more than 20 s: squeezed does not count on it"],
  "no-driver": ["no driver", "No balloon driver has announced itself yet"],
};

// In reading order on a three-column grid: the minimums above their maximums.
const FIELDS = [
  ["static_min", "static min"],
  ["dynamic_min", "dynamic min"],
  ["target", "target"],
  ["static_max", "static max"],
  ["dynamic_max", "dynamic max"],
  ["actual", "actual"],
];

function createCard() {
  return h("article", { class: "card vm" },
    h("header", { class: "vm-head" },
      h("span", { class: "swatch", "data-kind": "ram" }),
      h("h3"),
      h("span", { class: "badge power" }),
      h("span", { class: "badge health" })),
    h("p", { class: "where" }),
    createScale(),
    h("dl", { class: "limits" }, ...FIELDS.map(([field, label]) =>
      h("div", { "data-field": field }, h("dt", { text: label }), h("dd", { class: "bytes" })))),
    createChart());
}

function healthSince(metrics, health) {
  const since = metrics?.other_config?.[`balloon_${health}_since`];
  return since === undefined ? "" : ` (since ${since} s of host time)`;
}

function updateCard(card, vm) {
  card.dataset.vm = vm.ref;
  card.style.setProperty("--hue", String(vm.hue));
  card.querySelector("h3").textContent = vm.name;
  const power = card.querySelector(".power");
  power.textContent = vm.powerState;
  power.dataset.state = vm.powerState.toLowerCase();
  const health = card.querySelector(".health");
  const [label, meaning] = HEALTH[vm.health] ?? [vm.health ?? "", ""];
  health.hidden = vm.health === null;
  health.textContent = label;
  health.dataset.health = vm.health ?? "";
  health.dataset.tip = `Balloon driver: ${meaning}${healthSince(vm.metrics, vm.health)}`;
  card.querySelector(".where").textContent = vm.hostName === null ? "Not resident on any host" : `on ${vm.hostName}`;
  const values = { ...vm.limits, target: vm.target, actual: vm.actual };
  for (const [field, label] of FIELDS) {
    const value = card.querySelector(`[data-field="${field}"] dd`);
    if (values[field] === null) {
      value.textContent = "—";
      delete value.dataset.bytes;
      value.dataset.tip = `No ${label}: the VM is not running`;
    } else {
      setBytes(value, values[field], label);
    }
  }
  updateScale(card.querySelector(".scale"), vm);
  updateChart(card.querySelector(".chart"), vm);
}

export function renderVms(container, items) {
  keyed(container, items, (vm) => vm.ref, createCard, updateCard);
}
