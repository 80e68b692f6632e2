// Measuring the matmul variants on an adapter: whether each computes a product right, and how fast each
// runs a training step's products. Loaded by src/tuning.ts only when its cache has no choice for the
// adapter (a file of its own in the library build, dist/lib/autotune.js).
import type { Dispatch, KernelRegistry } from "./gpu/registry.ts";
import { BufferUsage, MapMode, STORAGE_USAGE } from "./gpu/flags.ts";
import type { matmul as Matmul, MatmulVariant } from "./kernels.ts";

/**
 * kernels.ts's matmul, which the caller passes in: a value import of kernels.ts from here, a module the
 * core loads on first use, makes the library build split the core into chunks shared with this one.
 */
export type MatmulBuilder = typeof Matmul;

/**
 * One variant's share of a training step: the three products of a dense layer of 128 units on 2048
 * inputs at batch 64 (forward; dX, B transposed; dW, A transposed, so a tall output), encoded into one
 * pass. Timing the step's mix rather than one product keeps a variant that is fast on one shape and
 * slow on the others (direct's 32-row blocks on a short dW) from being chosen. With 512 inputs the
 * k4 variants' lead on SwiftShader (5–10% there, 15–20% at the reference CNN's 5408) was within the
 * noise of a shared machine.
 */
async function stepProducts(kernels: KernelRegistry, variant: MatmulVariant, matmul: MatmulBuilder, vec4: boolean): Promise<{ run(): Promise<number>; destroy(): void }> {
  const device = kernels.device;
  const [B, IN, OUT] = [64, 2048, 128];
  const make = (n: number, label: string) => device.createBuffer({ label, size: n * 4, usage: STORAGE_USAGE });
  const [x, w, y, dx, dw] = [make(B * IN, "tune x"), make(IN * OUT, "tune w"), make(B * OUT, "tune y"), make(B * IN, "tune dx"), make(IN * OUT, "tune dw")];
  const ctx = { kernels, matmulVariant: variant, vec4 };
  const ds: Dispatch[] = [
    await matmul(ctx, x, w, y, { M: B, N: OUT, K: IN }, `tune forward ${variant}`),
    await matmul(ctx, y, w, dx, { M: B, N: IN, K: OUT, transB: true }, `tune dX ${variant}`),
    await matmul(ctx, x, y, dw, { M: IN, N: OUT, K: B, transA: true }, `tune dW ${variant}`),
  ];
  return {
    async run() {
      const t0 = performance.now();
      const enc = device.createCommandEncoder({ label: "matmul tuning" });
      const pass = enc.beginComputePass();
      for (const d of ds) d.encode(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    },
    destroy() {
      for (const d of ds) d.destroy();
      for (const b of [x, w, y, dx, dw]) b.destroy();
    },
  };
}

/**
 * Milliseconds per run of each variant's step products (stepProducts): two warm-ups each, then 7 rounds
 * that take the variants in turn, so a slow spell of a shared machine falls on all of them alike; the
 * fastest round per variant, since another process can only slow a run down (CPU drivers spread a
 * dispatch over threads, and their times swing by half between runs). A variant more than twice as
 * slow as the best in its second warm-up (tiled on a CPU driver) keeps that time and sits out the rounds.
 * `vec4`: the engine's EngineOptions.vectors, which picks a subgroup kernel's entries (its vec4-B twins).
 */
export async function timeVariants(kernels: KernelRegistry, variants: readonly MatmulVariant[], matmul: MatmulBuilder, vec4 = true): Promise<Partial<Record<MatmulVariant, number>>> {
  const runs = await Promise.all(variants.map((v) => stepProducts(kernels, v, matmul, vec4)));
  try {
    // The first run of each compiles its pipelines (lavapipe compiles at first dispatch); the second screens.
    for (const r of runs) await r.run();
    const times: number[][] = [];
    for (const r of runs) times.push([await r.run()]);
    const best = Math.min(...times.map((t) => t[0]!));
    const contenders = runs.flatMap((_, i) => (times[i]![0]! <= 2 * best ? [i] : []));
    if (contenders.length > 1) {
      for (const i of contenders) times[i] = [];
      for (let round = 0; round < 7; round++) for (const i of contenders) times[i]!.push(await runs[i]!.run());
    }
    return Object.fromEntries(variants.map((v, i) => [v, Math.min(...times[i]!)]));
  } finally {
    for (const r of runs) r.destroy();
  }
}

/**
 * Whether a variant computes a ragged product (37×29 · 29×45, values exact in f32) right on this device:
 * a subgroup kernel on a driver whose subgroups are not what it assumes would return garbage, so a
 * variant that fails is never chosen.
 */
export async function variantWorks(kernels: KernelRegistry, variant: MatmulVariant, matmul: MatmulBuilder): Promise<boolean> {
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
