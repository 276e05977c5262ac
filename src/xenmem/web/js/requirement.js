// The host memory xapi requires to start a VM (xapi-memory.md §2.2, §4.3), for the
// "will it fit?" box. The server answers this only for VMs that exist (VM.maximise_memory,
// VM.compute_memory_overhead), so the page repeats its arithmetic for a VM that does not;
// this goes once the server can size a hypothetical VM itself.

import { MIB } from "./bytes.js";

const PAGES_PER_MIB = 256;

// Per domain type: Xen's memory inside and outside the domain, and the PVH shim (MiB).
const MODELS = {
  hvm: { internal: 1, external: 1, shim: () => 0 },
  pvh: { internal: 1, external: 1, shim: () => 0 },
  pv: { internal: 0, external: 1, shim: () => 0 },
  pv_in_pvh: {
    internal: 1,
    external: 1,
    shim: (staticMaxMib) => 23 + Math.floor(staticMaxMib / 90),
  },
};

export const DOMAIN_TYPES = Object.keys(MODELS);

const mibUsed = (bytes) => Math.ceil(bytes / MIB);

// Overhead in MiB at shadow multiplier 1.0, the default (and what PV always starts with).
export function overheadMib(domainType, staticMaxMib, vcpus) {
  const model = MODELS[domainType];
  const shadowMib = Math.max(1, Math.ceil((256 * vcpus + 2 * staticMaxMib) / PAGES_PER_MIB));
  const perVcpuMib = Math.ceil((38 * vcpus) / PAGES_PER_MIB);
  return model.internal + model.external + shadowMib + perVcpuMib + model.shim(staticMaxMib);
}

// { needed, start, overhead } in bytes: PV-in-PVH starts at static_max, the rest at
// dynamic_min, each plus the overhead of its static_max and vCPUs.
export function startRequirement({ domainType, staticMax, dynamicMin, vcpus }) {
  const staticMaxMib = mibUsed(staticMax);
  const startMib = domainType === "pv_in_pvh" ? staticMaxMib : mibUsed(dynamicMin);
  const overhead = overheadMib(domainType, staticMaxMib, vcpus) * MIB;
  return { needed: startMib * MIB + overhead, start: startMib * MIB, overhead };
}
