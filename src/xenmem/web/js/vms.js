// One card per guest: power state and balloon health, its limits on a scale with the
// balloon target and actual memory, and how those two moved over the last minutes.

import { setBytes } from "./bytes.js";
import { createChart, updateChart } from "./chart.js";
import { copy, keyed } from "./dom.js";
import { createScale, updateScale } from "./scale.js";

const HEALTH = {
  cooperative: ["co-operating", "The balloon driver reached its target"],
  ballooning: ["ballooning", "The balloon driver is moving toward its target"],
  inactive: ["inactive", "squeezed found the balloon driver stuck and works around it"],
  uncooperative: ["uncooperative", "Off target for more than 20 s: squeezed does not count on it"],
  "no-driver": ["no driver", "No balloon driver has announced itself yet"],
};

function createCard() {
  const card = copy("vm-card");
  card.querySelector(".limits").before(createScale());
  card.append(createChart());
  return card;
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
  card.querySelector(".where").textContent =
    vm.hostName === null ? "Not resident on any host" : `on ${vm.hostName}`;
  const values = { ...vm.limits, target: vm.target, actual: vm.actual };
  for (const row of card.querySelectorAll("[data-field]")) {
    const field = row.dataset.field;
    const label = row.querySelector("dt").textContent;
    const value = row.querySelector("dd");
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
