// Small helpers to make elements (copies of the page's templates, SVG shapes) and to keep
// lists of them in step with data, updating nodes in place so that hover, focus and
// tooltips survive the once-a-second refreshes.

const SVG_NS = "http://www.w3.org/2000/svg";

// A copy of the first element of <template id="...">.
export function copy(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

export function attrs(element, props) {
  for (const [name, value] of Object.entries(props)) {
    element.setAttribute(name, value);
  }
}

// An SVG element with these attributes (and `text`, its text) holding these children.
export function svg(tag, { text = "", ...props } = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  attrs(element, props);
  element.append(text, ...children);
  return element;
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

// Gives an SVG one unit per pixel, so that its text and markers keep their size at any
// width; returns the width (a default while the SVG is not laid out).
export function pixelViewBox(element, height) {
  const width = element.clientWidth || 400;
  element.setAttribute("viewBox", `0 0 ${width} ${height}`);
  return width;
}
