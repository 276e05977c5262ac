// One card per host: the memory ledger as a stacked bar whose parts add up to the total,
// the same parts in a table, and the numbers admission control and squeezed work with.

import { exact, GIB, human, setBytes } from "./bytes.js";
import { copy, keyed } from "./dom.js";
import { ledgerParts } from "./model.js";

function percent(part, total) {
  return total > 0 ? (100 * part) / total : 0;
}

function shareText(part, total) {
  return `${percent(part, total).toFixed(1)} %`;
}

// Paints an element in the part's colour (the style sheet's, and each guest's own hue).
function paint(element, part) {
  element.dataset.kind = part.kind;
  if (part.hue === undefined) {
    element.style.removeProperty("--hue");
  } else {
    element.style.setProperty("--hue", String(part.hue));
  }
}

function tip(part, total) {
  const size = `${human(part.bytes)} · ${shareText(part.bytes, total)}`;
  return `${part.label}\n${size}\n${exact(part.bytes)}`;
}

function niceStep(total) {
  for (let step = GIB / 4; ; step *= 2) {
    if (total / step <= 8) {
      return step;
    }
  }
}

// Round sizes from 0, and the total itself at the end (none crowding it).
function updateAxis(axis, total) {
  const step = niceStep(total);
  const ticks = [];
  for (let at = 0; at < total - step / 2; at += step) {
    ticks.push(at);
  }
  ticks.push(total);
  keyed(
    axis,
    ticks,
    String,
    () => Object.assign(document.createElement("span"), { className: "tick" }),
    (tick, at) => {
      tick.textContent = human(at);
      tick.style.left = `${percent(at, total)}%`;
    },
  );
}

// Writes the longest of the texts that fits in `width` pixels on a segment, or none.
function fitLabel(label, width, texts) {
  for (const text of texts) {
    label.textContent = text;
    if (label.scrollWidth <= width) {
      return;
    }
  }
  label.textContent = "";
}

function updateSegments(bar, parts, total) {
  // The width the segments are heading for: they may still be moving (a CSS transition).
  const barWidth = bar.clientWidth;
  keyed(
    bar,
    parts,
    (part) => part.key,
    () => copy("ledger-segment"),
    (segment, part) => {
      const share = percent(part.bytes, total);
      paint(segment, part);
      segment.dataset.part = part.key;
      segment.dataset.bytes = String(part.bytes);
      segment.dataset.tip = tip(part, total);
      segment.style.flexBasis = `${share}%`;
      const width = (barWidth * share) / 100;
      fitLabel(segment.firstElementChild, width, [
        `${part.short} ${human(part.bytes)}`,
        part.short,
      ]);
    },
  );
  bar.setAttribute("aria-label", parts.map((p) => `${p.label} ${human(p.bytes)}`).join(", "));
}

function updateTable(tbody, parts, total) {
  keyed(
    tbody,
    parts,
    (part) => part.key,
    () => copy("ledger-row"),
    (row, part) => {
      const [swatch, label, size, share] = row.cells;
      paint(swatch.firstElementChild, part);
      row.dataset.part = part.key;
      row.classList.toggle("alarm", part.kind === "unaccounted" && part.bytes !== 0);
      label.textContent = part.label;
      setBytes(size, part.bytes, part.label);
      share.textContent = shareText(part.bytes, total);
    },
  );
}

function setStat(card, key, bytes, sub = "") {
  const stat = card.querySelector(`[data-stat="${key}"]`);
  setBytes(stat.querySelector(".stat-value"), bytes);
  stat.querySelector(".stat-sub").textContent = sub;
}

function updateCard(card, { ref, host, numbers, records, hues }) {
  card.dataset.host = ref;
  card.querySelector("h2").textContent = host.name_label;
  card.classList.toggle("loading", numbers === undefined);
  if (numbers === undefined) {
    card.querySelector(".host-sub").textContent = "Reading the ledger…";
    return;
  }
  const { ledger, free } = numbers;
  const parts = ledgerParts(ledger, records, hues);
  const guests = parts.filter((part) => part.kind === "ram").length;
  const cpus = host.cpu_info?.cpu_count ?? "?";
  card.querySelector(".host-sub").textContent =
    `${cpus} CPUs · ${guests} ${guests === 1 ? "guest" : "guests"} running`;
  setStat(card, "total", ledger.total);
  setStat(card, "admission", free);
  setStat(card, "free", ledger.free, `+ ${human(ledger.reserve)} reserve`);
  const stuck = ledger.reclaimable_uncooperative;
  setStat(
    card,
    "reclaimable",
    ledger.reclaimable_cooperative,
    stuck > 0 ? `+ ${human(stuck)} uncooperative` : "none uncooperative",
  );
  updateSegments(card.querySelector(".ledger-bar"), parts, ledger.total);
  updateAxis(card.querySelector(".axis"), ledger.total);
  updateTable(card.querySelector("tbody"), parts, ledger.total);
  setBytes(card.querySelector("tfoot .bytes"), ledger.total, "Total");
}

export function renderHosts(container, items) {
  keyed(
    container,
    items,
    (item) => item.ref,
    () => copy("host-card"),
    updateCard,
  );
}
