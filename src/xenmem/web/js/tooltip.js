// One tooltip for the whole page: any element with data-tip shows it on hover, near the
// pointer. Views rewrite data-tip as numbers change, so it is read at every move.

const OFFSET = 14;

export function installTooltip(tooltip) {
  const place = (event) => {
    const target = event.target instanceof Element ? event.target.closest("[data-tip]") : null;
    if (target === null || target.dataset.tip === "") {
      tooltip.hidden = true;
      return;
    }
    tooltip.textContent = target.dataset.tip;
    tooltip.hidden = false;
    const { width, height } = tooltip.getBoundingClientRect();
    const left = Math.min(event.clientX + OFFSET, window.innerWidth - width - 4);
    const top =
      event.clientY + OFFSET + height > window.innerHeight
        ? event.clientY - height - OFFSET
        : event.clientY + OFFSET;
    tooltip.style.left = `${Math.max(4, left)}px`;
    tooltip.style.top = `${Math.max(4, top)}px`;
  };
  document.addEventListener("pointermove", place);
  document.addEventListener("pointerover", place);
  document.addEventListener("pointerleave", () => {
    tooltip.hidden = true;
  });
}
