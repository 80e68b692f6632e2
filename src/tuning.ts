// Matmul autotuning: on first use of an adapter, time each matmul variant once and keep the faster;
// the choice is cached per adapter (a file in Node, localStorage in the browser) and can be pinned.
import { describeAdapter, nodeOnly, type AdapterReport } from "./gpu/device.ts";
import { GpuError } from "./errors.ts";
import { Dispatch, type KernelRegistry } from "./gpu/registry.ts";
import { BufferUsage, MapMode, STORAGE_USAGE } from "./gpu/flags.ts";
import { matmul, type MatmulVariant } from "./kernels.ts";

const KEY = "gradwgsl.matmul-tuning.v3";

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
  if (typeof process !== "undefined" && process.versions?.node) return (await nodeOnly()).cacheFile<Record<string, MatmulVariant>>("matmul-tuning.v3.json");
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

/**
 * Whether a variant computes a ragged product (37×29 · 29×45, values exact in f32) right on this device:
 * a subgroup kernel on a driver whose subgroups are not what it assumes would return garbage, so a
 * variant that fails is never chosen.
 */
export async function variantWorks(kernels: KernelRegistry, variant: MatmulVariant): Promise<boolean> {
  const [M, K, N] = [37, 29, 45];
  const device = kernels.device;
  const av = Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 5) - 2);
  const bv = Float32Array.from({ length: K * N }, (_, i) => ((i * 3) % 7) - 3);
  const upload = (v: Float32Array<ArrayBuffer>, label: string) => {
    const buf = device.createBuffer({ label, size: v.byteLength, usage: STORAGE_USAGE });
    device.queue.writeBuffer(buf, 0, v);
    return buf;
  };
  const [a, b, c] = [upload(av, "check a"), upload(bv, "check b"), upload(new Float32Array(M * N), "check c")];
  const read = device.createBuffer({ label: "check read", size: M * N * 4, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  const d: Dispatch = await matmul({ kernels, matmulVariant: variant }, a, b, c, { M, N, K }, `check matmul ${variant}`);
  try {
    const enc = device.createCommandEncoder({ label: "matmul check" });
    const pass = enc.beginComputePass();
    d.encode(pass);
    pass.end();
    enc.copyBufferToBuffer(c, 0, read, 0, M * N * 4);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(MapMode.READ);
    const got = new Float32Array(read.getMappedRange().slice(0));
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += av[i * K + k]! * bv[k * N + j]!;
        if (got[i * N + j] !== sum) return false;
      }
    }
    return true;
  } finally {
    d.destroy();
    for (const x of [a, b, c, read]) x.destroy();
  }
}

/** The cached choice for this adapter, or a fresh measurement of the variants that work (then cached). */
export async function tunedMatmul(kernels: KernelRegistry, report: AdapterReport, variants: readonly MatmulVariant[]): Promise<{ variant: MatmulVariant; measured?: Partial<Record<MatmulVariant, number>> }> {
  const s = await store();
  const all = await s.get().catch(() => ({}) as Record<string, MatmulVariant>);
  const cached = all[adapterKey(report)];
  if (cached && variants.includes(cached)) return { variant: cached };
  const measured: Partial<Record<MatmulVariant, number>> = {};
  for (const v of variants) if (await variantWorks(kernels, v)) measured[v] = await timeVariant(kernels, v);
  const working = variants.filter((v) => measured[v] !== undefined);
  if (!working.length) throw new GpuError(`no matmul variant computes a product correctly on ${describeAdapter(report)}; the driver is broken. Try another adapter (in Node: adapter: "swiftshader" or "lavapipe").`);
  const variant = working.reduce((best, v) => (measured[v]! < measured[best]! ? v : best));
  await s.set({ ...all, [adapterKey(report)]: variant }).catch(() => undefined);
  return { variant, measured };
}
