// "Will it fit?": a VM size in, the hosts with room to start it and what each has left
// after, comparing the start requirement with each host's host.compute_free_memory as
// admission control does (xapi-memory.md §4.3: equality fits).

import { GIB, human, MIB, setBytes } from "./bytes.js";
import { copy, keyed } from "./dom.js";
import { startRequirement } from "./requirement.js";

const UNITS = { MiB: MIB, GiB: GIB };

// The form's VM, or a sentence saying what is wrong with it.
function readForm(form) {
  const size = (name) =>
    Math.round(Number(form.elements[name].value) * UNITS[form.elements[`${name}_unit`].value]);
  const vm = {
    staticMax: size("static_max"),
    dynamicMin: size("dynamic_min"),
    vcpus: Number(form.elements.vcpus.value),
    domainType: form.elements.domain_type.value,
  };
  if (!(vm.staticMax > 0) || !(vm.dynamicMin > 0)) {
    return "Give static max and dynamic min as positive sizes.";
  }
  if (vm.dynamicMin > vm.staticMax) {
    return "Dynamic min cannot be above static max.";
  }
  if (!Number.isInteger(vm.vcpus) || vm.vcpus < 1) {
    return "vCPUs is a whole number, at least 1.";
  }
  return vm;
}

function describe(requirement, vm) {
  const start =
    vm.domainType === "pv_in_pvh" ? "static max (PV in PVH starts at full size)" : "dynamic min";
  return (
    `Needs ${human(requirement.needed)} free to start: ${human(requirement.start)} at ${start}` +
    ` + ${human(requirement.overhead)} overhead.`
  );
}

export function renderFit(box, hosts) {
  const form = box.querySelector("form");
  const summary = box.querySelector(".requirement");
  const tbody = box.querySelector("tbody");
  const vm = readForm(form);
  if (typeof vm === "string") {
    summary.textContent = vm;
    summary.dataset.needed = "";
    summary.classList.add("invalid");
    tbody.replaceChildren();
    return;
  }
  const requirement = startRequirement(vm);
  summary.classList.remove("invalid");
  summary.textContent = describe(requirement, vm);
  summary.dataset.needed = String(requirement.needed);
  summary.dataset.tip = `${requirement.needed.toLocaleString("en-US")} bytes`;
  keyed(
    tbody,
    hosts.filter((host) => host.free !== undefined),
    (host) => host.ref,
    () => copy("fit-row"),
    (row, host) => {
      const [name, free, left] = row.cells;
      const fits = host.free >= requirement.needed;
      row.dataset.host = host.ref;
      row.dataset.fits = String(fits);
      name.textContent = `${fits ? "✓" : "✗"} ${host.name}`;
      setBytes(free, host.free, "host.compute_free_memory");
      setBytes(
        left,
        host.free - requirement.needed,
        fits ? "Left after the VM starts" : "Short by this much",
      );
    },
  );
}
