// Matmul autotuning: on first use of an adapter, time each matmul variant once and keep the faster;
// the choice is cached per adapter (a file in Node, localStorage in the browser) and can be pinned. The
// measuring (src/autotune.ts) is loaded only when the cache has no choice for the adapter: the library
// build makes it a file of its own (dist/lib/autotune.js), which a returning page never fetches.
import { describeAdapter, nodeOnly, type AdapterReport } from "./gpu/device.ts";
import { GpuError } from "./errors.ts";
import type { KernelRegistry } from "./gpu/registry.ts";
import { matmul, type MatmulVariant } from "./kernels.ts";

const KEY = "gradwgsl.matmul-tuning.v5";

function adapterKey(r: AdapterReport): string {
  return `${r.runtime}|${r.vendor}|${r.architecture}|${r.device}|${r.description}`;
}

interface Store {
  get(): Promise<Record<string, MatmulVariant>>;
  set(all: Record<string, MatmulVariant>): Promise<void>;
}

async function store(): Promise<Store> {
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  if (ls) {
    return {
      get: async () => JSON.parse(ls.getItem(KEY) ?? "{}"),
      set: async (all) => ls.setItem(KEY, JSON.stringify(all)),
    };
  }
  if (typeof process !== "undefined" && process.versions?.node) return (await nodeOnly()).cacheFile<Record<string, MatmulVariant>>("matmul-tuning.v5.json");
  return { get: async () => ({}), set: async () => undefined };
}

/**
 * The cached choice for this adapter, or a fresh measurement of the variants that work (then cached).
 * `vec4` (the engine's EngineOptions.vectors) picks the subgroup kernels' entries, so the two settings
 * are measured and cached apart.
 */
export async function tunedMatmul(kernels: KernelRegistry, report: AdapterReport, variants: readonly MatmulVariant[], vec4 = true): Promise<{ variant: MatmulVariant; measured?: Partial<Record<MatmulVariant, number>> }> {
  const s = await store();
  const all = await s.get().catch(() => ({}) as Record<string, MatmulVariant>);
  const key = `${adapterKey(report)}${vec4 ? "" : "|scalar"}`;
  const cached = all[key];
  if (cached && variants.includes(cached)) return { variant: cached };
  const { timeVariants, variantWorks } = await import("./autotune.ts");
  const working: MatmulVariant[] = [];
  for (const v of variants) if (await variantWorks(kernels, v, matmul)) working.push(v);
  const measured = working.length ? await timeVariants(kernels, working, matmul, vec4) : {};
  if (!working.length) throw new GpuError(`no matmul variant computes a product correctly on ${describeAdapter(report)}; the driver is broken. Try another adapter (in Node: adapter: "swiftshader" or "lavapipe").`);
  const variant = working.reduce((best, v) => (measured[v]! < measured[best]! ? v : best));
  await s.set({ ...all, [key]: variant }).catch(() => undefined);
  return { variant, measured };
}
