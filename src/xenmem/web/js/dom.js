// Small helpers to build elements and keep lists of them in step with data, updating nodes
// in place so that hover, focus and tooltips survive the once-a-second refreshes.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(element, props, children) {
  for (const [name, value] of Object.entries(props)) {
    if (name === "text") {
      element.textContent = value;
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value);
    }
  }
  element.append(...children);
  return element;
}

export function h(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, children);
}

export function svg(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

export function attrs(element, props) {
  for (const [name, value] of Object.entries(props)) {
    element.setAttribute(name, value);
  }
}

// Makes `container`'s children one per item, in order: a child is found again by its
// data-key, built by create(item) when new, and passed to update(node, item) every time.
export function keyed(container, items, keyOf, create, update) {
  const existing = new Map([...container.children].map((node) => [node.dataset.key, node]));
  let cursor = container.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let node = existing.get(key);
    existing.delete(key);
    if (node === undefined) {
      node = create(item);
      node.dataset.key = key;
    }
    update(node, item);
    if (node === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      container.insertBefore(node, cursor);
    }
  }
  for (const node of existing.values()) {
    node.remove();
  }
}
