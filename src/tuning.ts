// Matmul autotuning: on first use of an adapter, time each matmul variant once and keep the faster;
// the choice is cached per adapter (a file in Node, localStorage in the browser) and can be pinned.
import type { AdapterReport } from "./gpu/device.ts";
import { Dispatch, type KernelRegistry } from "./gpu/registry.ts";
import { STORAGE_USAGE } from "./gpu/flags.ts";
import { MATMUL_TILES, matmul, type MatmulVariant } from "./kernels.ts";

const VARIANTS = Object.keys(MATMUL_TILES) as MatmulVariant[];
const KEY = "gradwgsl.matmul-tuning.v2";

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
  if (typeof process !== "undefined" && process.versions?.node) {
    // getBuiltinModule, not import(): a bundler sees no node:* import to externalize in browser builds.
    const fs = process.getBuiltinModule("node:fs/promises");
    const path = process.getBuiltinModule("node:path");
    const os = process.getBuiltinModule("node:os");
    const dir = process.env.GRADWGSL_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "gradwgsl");
    const file = path.join(dir, "matmul-tuning.v2.json");
    return {
      get: async () => JSON.parse(await fs.readFile(file, "utf8").catch(() => "{}")),
      set: async (all) => {
        await fs.mkdir(dir, { recursive: true });
        // Write then rename, so processes tuning at the same time never leave a half-written file.
        const tmp = `${file}.${process.pid}.tmp`;
        await fs.writeFile(tmp, JSON.stringify(all, null, 2));
        await fs.rename(tmp, file);
      },
    };
  }
  return { get: async () => ({}), set: async () => undefined };
}

/** Milliseconds per run of one variant on a shape like the reference CNN's dense layer (median of 3). */
export async function timeVariant(kernels: KernelRegistry, variant: MatmulVariant, M = 64, N = 128, K = 512): Promise<number> {
  const device = kernels.device;
  const make = (n: number, label: string) => device.createBuffer({ label, size: n * 4, usage: STORAGE_USAGE });
  const [a, b, c] = [make(M * K, "tune a"), make(K * N, "tune b"), make(M * N, "tune c")];
  const d: Dispatch = await matmul({ kernels, matmulVariant: variant }, a, b, c, { M, N, K }, `tune matmul ${variant}`);
  const once = async () => {
    const enc = device.createCommandEncoder({ label: "matmul tuning" });
    const pass = enc.beginComputePass();
    d.encode(pass);
    d.encode(pass);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  d.destroy();
  for (const x of [a, b, c]) x.destroy();
  return times.sort((x, y) => x - y)[1]!;
}

/** The cached choice for this adapter, or a fresh measurement (then cached). */
export async function tunedMatmul(kernels: KernelRegistry, report: AdapterReport): Promise<{ variant: MatmulVariant; measured?: Record<MatmulVariant, number> }> {
  const s = await store();
  const all = await s.get().catch(() => ({}) as Record<string, MatmulVariant>);
  const cached = all[adapterKey(report)];
  if (cached && VARIANTS.includes(cached)) return { variant: cached };
  const measured = {} as Record<MatmulVariant, number>;
  for (const v of VARIANTS) measured[v] = await timeVariant(kernels, v);
  const variant = VARIANTS.reduce((best, v) => (measured[v] < measured[best] ? v : best));
  await s.set({ ...all, [adapterKey(report)]: variant }).catch(() => undefined);
  return { variant, measured };
}
