// Sizes for people: binary units (as xe prints them), with the exact byte count on hover.

const UNITS = [
  ["TiB", 2 ** 40],
  ["GiB", 2 ** 30],
  ["MiB", 2 ** 20],
  ["KiB", 2 ** 10],
];

export const MIB = 2 ** 20;
export const GIB = 2 ** 30;

export function human(bytes) {
  const magnitude = Math.abs(bytes);
  const found = UNITS.find(([, size]) => magnitude >= size);
  if (found === undefined) {
    return `${bytes} B`;
  }
  const [unit, size] = found;
  const value = bytes / size;
  if (Number.isInteger(value)) {
    return `${value} ${unit}`;
  }
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

export function exact(bytes) {
  return `${bytes.toLocaleString("en-US")} bytes`;
}

// A size shown as text, its exact value kept in data-bytes (and shown by the tooltip).
export function setBytes(element, bytes, label = "") {
  element.textContent = human(bytes);
  element.dataset.bytes = String(bytes);
  element.dataset.tip = label === "" ? exact(bytes) : `${label}\n${exact(bytes)}`;
}
