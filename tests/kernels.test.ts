// Every kernel on a real WebGPU adapter against the float64 CPU reference: random data, poisoned
// outputs, shapes that are no multiple of any tile size.
import { afterAll, describe, expect, it } from "vitest";
import type { Engine } from "../src/engine.ts";
import * as ops from "../src/ops.ts";
import type { Activation, MatmulVariant } from "../src/kernels.ts";
import * as ref from "./reference/cpu.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

// Created while the tests are collected, so that each matmul variant this adapter can run gets its tests
// (subgroup only where subgroups have 8 lanes: lavapipe; tests/device.test.ts checks that it is offered there).
const e: Engine = await gpuEngine();
const VARIANTS = e.matmulVariants;
console.log(`adapter: ${e.describe()}; matmul variant: ${e.matmulVariant} of ${VARIANTS.join(", ")}`);
afterAll(() => e?.dispose());

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [33, 65, 17],
  [97, 41, 75], // several blocks of either variant, ragged in every dimension
  [64, 5408, 128],
];
const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];
let seed = 1;

/** Runs `fn` with the engine's matmul variant switched, to test both kernels on one adapter. */
async function withVariant<T>(v: MatmulVariant, fn: () => Promise<T>): Promise<T> {
  const saved = e.matmulVariant;
  (e as { matmulVariant: MatmulVariant }).matmulVariant = v;
  try {
    return await fn();
  } finally {
    (e as { matmulVariant: MatmulVariant }).matmulVariant = saved;
  }
}

describe.each(VARIANTS)("matmul (%s)", (variant) => {
  for (const [M, K, N] of SHAPES) {
    for (const [ta, tb] of TRANSPOSES) {
      it(`${M}×${K}×${N} transA=${ta} transB=${tb}`, async () => {
        const a = randomArray(M * K, seed++);
        const b = randomArray(K * N, seed++);
        const c = await withVariant(variant, async () => {
          const at = e.tensor(a, ta ? [K, M] : [M, K]);
          const bt = e.tensor(b, tb ? [N, K] : [K, N]);
          return (await ops.matmul(at, bt, { transposeA: ta, transposeB: tb })).read();
        });
        expectRelClose(c, ref.matmul(a, b, M, N, K, ta, tb), 1e-4, "C");
      });
    }
  }

  for (const act of ["linear", "relu", "sigmoid", "tanh"] as Activation[]) {
    it(`fused bias + ${act} forward and fused backprop, 33×17×21, every transpose`, async () => {
      const [M, K, N] = [33, 17, 21];
      for (const [ta, tb] of TRANSPOSES) {
        const a = randomArray(M * K, seed++);
        const b = randomArray(K * N, seed++);
        const bias = randomArray(N, seed++);
        const dy = randomArray(M * N, seed++);
        await withVariant(variant, async () => {
          const [at, bt, biast] = [e.tensor(a, ta ? [K, M] : [M, K]), e.tensor(b, tb ? [N, K] : [K, N]), e.tensor(bias, [N])];
          const o = { transposeA: ta, transposeB: tb, bias: biast, activation: act };
          const y = await ops.matmul(at, bt, o);
          const z = ref.matmul(a, b, M, N, K, ta, tb).map((v, i) => v + bias[i % N]!);
          const yRef = ref.activation(act, z);
          expectRelClose(await y.read(), yRef, 1e-4, "y");
          // Backward from the GPU's own y (as training does), checked against the reference formulas.
          const yGpu = await y.read();
          const g = await ops.matmulBackward(at, bt, y, e.tensor(dy, [M, N]), o);
          const dz = ref.activationBackward(act, yGpu, dy);
          const opB = tb ? transpose(b, N, K) : b; // (K, N)
          const opA = ta ? transpose(a, K, M) : a; // (M, K)
          const dOpA = ref.matmul(dz, opB, M, K, N, false, true); // (M, K)
          const dOpB = ref.matmul(opA, dz, K, N, M, true, false); // (K, N)
          expectRelClose(await g.da.read(), ta ? transpose(dOpA, M, K) : dOpA, 1e-4, "dA");
          expectRelClose(await g.db.read(), tb ? transpose(dOpB, K, N) : dOpB, 1e-4, "dB");
          expectRelClose(await g.dbias.read(), ref.biasGrad(dz, M, N), 1e-4, "dbias");
        });
      }
    });
  }
});

function transpose(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

const CONVS: ref.Conv2dGeom[] = [];
for (const C of [1, 3]) for (const S of [1, 2]) for (const padding of ["valid", "same"] as const) CONVS.push({ B: 2, H: 9, W: 7, C, KH: 3, KW: 3, SH: S, SW: S, padding });
CONVS.push({ B: 3, H: 28, W: 28, C: 1, KH: 3, KW: 3, SH: 1, SW: 1, padding: "valid" }); // the reference CNN's conv
CONVS.push({ B: 2, H: 6, W: 11, C: 5, KH: 2, KW: 4, SH: 2, SW: 3, padding: "same" });
CONVS.push({ B: 2, H: 7, W: 6, C: 12, KH: 3, KW: 3, SH: 2, SW: 2, padding: "same" }); // whole channel groups
CONVS.push({ B: 1, H: 5, W: 8, C: 9, KH: 3, KW: 2, SH: 1, SW: 1, padding: "same" }); // a last group of one

describe("conv2d (im2col + matmul) and its backward (col2im)", () => {
  for (const g of CONVS) {
    const acts: Activation[] = ["relu", "linear", "tanh", "sigmoid"];
    const act = acts[(g.C + g.SH + (g.padding === "same" ? 2 : 0)) % 4]!;
    it(`B${g.B} ${g.H}×${g.W}×${g.C} k${g.KH}×${g.KW} s${g.SH}×${g.SW} ${g.padding} ${act}`, async () => {
      const F = 5;
      const x = randomArray(g.B * g.H * g.W * g.C, seed++);
      const w = randomArray(g.KH * g.KW * g.C * F, seed++);
      const b = randomArray(F, seed++);
      const [xt, wt, bt] = [e.tensor(x, [g.B, g.H, g.W, g.C]), e.tensor(w, [g.KH, g.KW, g.C, F]), e.tensor(b, [F])];
      const o = { strides: [g.SH, g.SW] as [number, number], padding: g.padding, bias: bt, activation: act };
      const y = await ops.conv2d(xt, wt, o);
      const { OH, OW } = ref.convOutput(g);
      expect(y.shape).toEqual([g.B, OH, OW, F]);
      expectRelClose(await y.read(), ref.conv2d(x, w, b, g, F, act), 1e-4, "y");
      const yGpu = await y.read();
      const dy = randomArray(y.size, seed++);
      const grads = await ops.conv2dBackward(xt, wt, y, e.tensor(dy, y.shape), o);
      const r = ref.conv2dBackward(x, w, yGpu, dy, g, F, act);
      expectRelClose(await grads.dx.read(), r.dx, 1e-4, "dx");
      expectRelClose(await grads.dw.read(), r.dw, 1e-4, "dw");
      expectRelClose(await grads.db.read(), r.db, 1e-4, "db");
    });
  }
});

const POOLS: ref.Pool2dGeom[] = [
  { B: 2, H: 26, W: 26, C: 32, PH: 2, PW: 2, SH: 2, SW: 2, padding: "valid" }, // the reference CNN's pool
  { B: 2, H: 7, W: 9, C: 3, PH: 2, PW: 2, SH: 2, SW: 2, padding: "same" },
  { B: 1, H: 7, W: 5, C: 2, PH: 3, PW: 3, SH: 1, SW: 1, padding: "valid" }, // overlapping windows
  { B: 2, H: 5, W: 8, C: 1, PH: 3, PW: 2, SH: 2, SW: 1, padding: "same" },
  { B: 3, H: 11, W: 7, C: 5, PH: 3, PW: 2, SH: 3, SW: 2, padding: "valid" }, // tiling windows, uncovered remainder
  { B: 10, H: 11, W: 7, C: 12, PH: 3, PW: 2, SH: 3, SW: 2, padding: "valid" }, // the same, channels a multiple of 4, batch chunks of 8
  { B: 19, H: 9, W: 7, C: 3, PH: 2, PW: 2, SH: 2, SW: 2, padding: "same" }, // batch chunks of 8 on CPU adapters, the last one short
  { B: 3, H: 8, W: 6, C: 4, PH: 2, PW: 2, SH: 2, SW: 2, padding: "same" }, // 'same' with nothing to pad: the tiling kernels
];

describe("pooling", () => {
  for (const g of POOLS) {
    const o = { poolSize: [g.PH, g.PW] as [number, number], strides: [g.SH, g.SW] as [number, number], padding: g.padding };
    const shape = [g.B, g.H, g.W, g.C];
    it(`max pool ${g.H}×${g.W}×${g.C} p${g.PH}×${g.PW} s${g.SH}×${g.SW} ${g.padding}`, async () => {
      const x = randomArray(g.B * g.H * g.W * g.C, seed++);
      const { y, argmax } = await ops.maxPool2d(e.tensor(x, shape), o);
      const r = ref.maxPool2d(x, g);
      expectRelClose(await y.read(), r.y, 1e-6, "y");
      expect(Array.from(await argmax.read())).toEqual(Array.from(r.argmax));
      const dy = randomArray(y.size, seed++);
      const dx = await ops.maxPool2dBackward(argmax, e.tensor(dy, y.shape), shape, o);
      expectRelClose(await dx.read(), ref.maxPool2dBackward(x, dy, g), 1e-6, "dx");
    });
    it(`avg pool ${g.H}×${g.W}×${g.C} p${g.PH}×${g.PW} s${g.SH}×${g.SW} ${g.padding}`, async () => {
      const x = randomArray(g.B * g.H * g.W * g.C, seed++);
      const y = await ops.avgPool2d(e.tensor(x, shape), o);
      expectRelClose(await y.read(), ref.avgPool2d(x, g), 1e-5, "y");
      const dy = randomArray(y.size, seed++);
      const dx = await ops.avgPool2dBackward(e.tensor(dy, y.shape), shape, o);
      expectRelClose(await dx.read(), ref.avgPool2dBackward(dy, g), 1e-5, "dx");
    });
  }
});

describe("activations", () => {
  for (const act of ["relu", "sigmoid", "tanh", "linear"] as Activation[]) {
    it(`${act} forward and backward on 1000 elements`, async () => {
      const x = randomArray(1000, seed++, -3, 3);
      const y = await ops.activation(e.tensor(x, [10, 100]), act);
      expectRelClose(await y.read(), ref.activation(act, x), 1e-5, "y");
      const yGpu = await y.read();
      const dy = randomArray(1000, seed++);
      const dx = await ops.activationBackward(y, e.tensor(dy, [10, 100]), act);
      expectRelClose(await dx.read(), ref.activationBackward(act, yGpu, dy), 1e-5, "dx");
    });
  }
});

describe("bias gradient", () => {
  // One workgroup; row chunks summed by a second pass (the convolution's 43,264 × 32); wider than a workgroup.
  for (const [R, N] of [[1, 1], [43264, 32], [65, 130], [333, 200], [5003, 1]] as const) {
    it(`${R}×${N}`, async () => {
      const dy = randomArray(R * N, seed++);
      const db = await ops.biasGrad(e.tensor(dy, [R, N]));
      expectRelClose(await db.read(), ref.biasGrad(dy, R, N), 1e-4, "db");
    });
  }
});

describe("softmax cross-entropy", () => {
  for (const [B, K, nValid] of [[1, 1, 1], [64, 10, 64], [7, 13, 5], [130, 10, 97]] as const) {
    it(`sparse B=${B} K=${K} nValid=${nValid}`, async () => {
      const logits = randomArray(B * K, seed++, -4, 4);
      const labels = Array.from(randomArray(B, seed++, 0, K), (v) => Math.min(K - 1, Math.floor(v)));
      const r = ref.softmaxCrossEntropy(logits, labels, B, K, nValid);
      const out = await ops.softmaxCrossEntropy(e.tensor(logits, [B, K]), e.tensor(labels, [B], "u32"), { nValid });
      expectRelClose(await out.loss.read(), r.loss, 1e-5, "loss");
      expectRelClose(await out.dlogits.read(), r.dlogits, 1e-5, "dlogits");
      const [lossSum, correct, count] = await out.metrics.read();
      expectRelClose([lossSum!], [r.lossSum], 1e-5, "loss sum");
      expect(correct).toBe(r.correct);
      expect(count).toBe(nValid);
    });
    it(`dense B=${B} K=${K} nValid=${nValid}`, async () => {
      const logits = randomArray(B * K, seed++, -4, 4);
      const raw = randomArray(B * K, seed++, 0.01, 1);
      const targets = raw.map((v, i) => v / Array.from(raw.subarray(Math.floor(i / K) * K, Math.floor(i / K) * K + K)).reduce((s, t) => s + t, 0));
      const r = ref.softmaxCrossEntropyDense(logits, targets, B, K, nValid);
      const out = await ops.softmaxCrossEntropy(e.tensor(logits, [B, K]), e.tensor(targets, [B, K]), { nValid });
      expectRelClose(await out.loss.read(), r.loss, 1e-5, "loss");
      expectRelClose(await out.dlogits.read(), r.dlogits, 1e-5, "dlogits");
      const [lossSum, correct] = await out.metrics.read();
      expectRelClose([lossSum!], [r.lossSum], 1e-5, "loss sum");
      expect(correct).toBe(r.correct);
    });
  }
  it("a label out of range poisons the loss instead of training silently", async () => {
    const out = await ops.softmaxCrossEntropy(e.tensor([1, 2, 3, 4], [2, 2]), e.tensor([1, 5], [2], "u32"));
    const loss = await out.loss.read();
    expect(Number.isFinite(loss[0])).toBe(true);
    expect(Number.isNaN(loss[1])).toBe(true);
  });
});

// 1237 elements take the scalar kernels, 1236 the vec4 ones (sgd4, adam4).
describe.each([1237, 1236])("optimizers over a flat arena of %i", (n) => {
  it("SGD with momentum and L2 decay, 3 steps", async () => {
    const w = randomArray(n, seed++);
    const vel = new Float64Array(n);
    const decay = randomArray(n, seed++, 0, 0.01);
    const [wt, vt, dt] = [e.tensor(w, [n]), e.tensor(vel, [n]), e.tensor(decay, [n])];
    for (let step = 0; step < 3; step++) {
      const g = randomArray(n, seed++);
      await ops.sgdStep(wt, e.tensor(g, [n]), vt, { lr: 0.05, momentum: 0.9, decay: dt });
      ref.sgdUpdate(w, g.map((gi, i) => gi + decay[i]! * w[i]!), vel, 0.05, 0.9);
    }
    expectRelClose(await wt.read(), w, 1e-5, "w");
    expectRelClose(await vt.read(), vel, 1e-5, "velocity");
  });
  it("Adam, 3 steps", async () => {
    const w = randomArray(n, seed++);
    const [m, v] = [new Float64Array(n), new Float64Array(n)];
    const [wt, mt, vt] = [e.tensor(w, [n]), e.tensor(m, [n]), e.tensor(v, [n])];
    for (let step = 1; step <= 3; step++) {
      const g = randomArray(n, seed++);
      await ops.adamStep(wt, e.tensor(g, [n]), mt, vt, { lr: 1e-3, step });
      ref.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7, step);
    }
    expectRelClose(await wt.read(), w, 1e-5, "w");
    expectRelClose(await mt.read(), m, 1e-5, "m");
    expectRelClose(await vt.read(), v, 1e-5, "v");
  });
});

describe("dropout", () => {
  it("drops about `rate` of the elements, scales the rest by 1/(1 − rate), and backward reuses the mask", async () => {
    const { dropout } = await import("../src/kernels.ts");
    const n = 20000;
    const rate = 0.3;
    const x = randomArray(n, seed++, 0.5, 1.5);
    const dy = randomArray(n, seed++, 0.5, 1.5);
    const [xt, dyt, y, dx] = [e.tensor(x, [n]), e.tensor(dy, [n]), e.empty([n]), e.empty([n])];
    const f = await dropout(e, "forward", xt.buffer, y.buffer, n, rate);
    const b = await dropout(e, "backward", dyt.buffer, dx.buffer, n, rate);
    f.setUniforms({ seed: 7 });
    b.setUniforms({ seed: 7 });
    await e.run([f, b]);
    const [yv, dxv] = [await y.read(), await dx.read()];
    let dropped = 0;
    for (let i = 0; i < n; i++) {
      const kept = yv[i] !== 0;
      if (!kept) dropped++;
      expect(yv[i]).toBeCloseTo(kept ? x[i]! / (1 - rate) : 0, 5);
      expect(dxv[i]).toBeCloseTo(kept ? dy[i]! / (1 - rate) : 0, 5);
    }
    expect(Math.abs(dropped / n - rate)).toBeLessThan(0.02);
  });
});

describe.each(VARIANTS)("split-K matmul (%s)", (variant) => {
  it("the reference CNN's conv dW: 9×43264·(43264×32), transA, K split and summed", async () => {
    const { matmulSplitK, splitsFor } = await import("../src/kernels.ts");
    const [M, K, N] = [9, 43264, 32];
    const a = randomArray(K * M, seed++); // stored (K, M): transA
    const dz = randomArray(K * N, seed++);
    const splits = splitsFor(M, N, K, variant);
    expect(splits).toBeGreaterThan(1);
    const out = await withVariant(variant, async () => {
      const [at, dzt, c, partials] = [e.tensor(a, [K, M]), e.tensor(dz, [K, N]), e.empty([M, N]), e.empty([splits * M * N])];
      await e.run(await matmulSplitK(e, at.buffer, dzt.buffer, c.buffer, partials.buffer, { M, N, K, transA: true }, splits));
      return c.read();
    });
    expectRelClose(out, ref.matmul(a, dz, M, N, K, true, false), 1e-4, "dW");
  });
});

// Grids past the device's workgroup limit fold into another dimension (matmul: row blocks into z beside
// the K-splits; bias_grad: row chunks summed in a second pass). A limit of 3 workgroups per
// dimension makes small shapes fold, so each folded path is checked against the reference.
describe("grids past the workgroup limit (limit lowered to 3)", () => {
  async function folded<T>(fn: () => Promise<T>, limit = 3): Promise<T> {
    const ctx = e as { maxWorkgroups?: number };
    ctx.maxWorkgroups = limit;
    try {
      return await fn();
    } finally {
      delete ctx.maxWorkgroups;
    }
  }

  for (const variant of VARIANTS) {
    it(`matmul (${variant}) 200×41×75 with bias and relu, and transposed`, async () => {
      const [M, K, N] = [200, 41, 75];
      const a = randomArray(M * K, seed++);
      const b = randomArray(K * N, seed++);
      const bias = randomArray(N, seed++);
      const [c, ct] = await folded(() =>
        withVariant(variant, async () => {
          const at = e.tensor(a, [M, K]);
          const bt = e.tensor(b, [K, N]);
          const y = await ops.matmul(at, bt, { bias: e.tensor(bias, [N]), activation: "relu" });
          const yt = await ops.matmul(e.tensor(transpose(a, M, K), [K, M]), bt, { transposeA: true });
          return [await y.read(), await yt.read()];
        }),
      );
      const z = ref.matmul(a, b, M, N, K);
      expectRelClose(c, ref.activation("relu", z.map((v, i) => v + bias[i % N]!)), 1e-4, "C");
      expectRelClose(ct, z, 1e-4, "C (transposed A)");
    });
  }

  it("conv2d forward and backward with a split-K dW over a folded grid", async () => {
    const g: ref.Conv2dGeom = { B: 4, H: 16, W: 16, C: 3, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same" };
    const F = 4;
    const x = randomArray(g.B * g.H * g.W * g.C, seed++);
    const w = randomArray(g.KH * g.KW * g.C * F, seed++);
    const b = randomArray(F, seed++);
    const dy = randomArray(g.B * g.H * g.W * F, seed++);
    const [y, dx, dw, db] = await folded(async () => {
      const [xt, wt] = [e.tensor(x, [g.B, g.H, g.W, g.C]), e.tensor(w, [g.KH, g.KW, g.C, F])];
      const o = { padding: g.padding, bias: e.tensor(b, [F]), activation: "tanh" as const };
      const yt = await ops.conv2d(xt, wt, o);
      const grads = await ops.conv2dBackward(xt, wt, yt, e.tensor(dy, yt.shape), o);
      return [await yt.read(), await grads.dx.read(), await grads.dw.read(), await grads.db.read()];
    });
    expectRelClose(y, ref.conv2d(x, w, b, g, F, "tanh"), 1e-4, "y");
    const r = ref.conv2dBackward(x, w, y, dy, g, F, "tanh");
    expectRelClose(dx, r.dx, 1e-4, "dx");
    expectRelClose(dw, r.dw, 1e-4, "dw");
    expectRelClose(db, r.db, 1e-4, "db");
  });

  // Pooling never folds (its grid's z is rows · batch chunks, and no image has 65,535 rows): at a limit of
  // 11 each invocation takes more batch items instead, up to all 19.
  for (const g of [POOLS[1]!, POOLS[2]!, POOLS[4]!, POOLS[5]!]) {
    it(`max and avg pool ${g.H}×${g.W}×${g.C} p${g.PH}×${g.PW} s${g.SH}×${g.SW} (batch ${g.B}), forward and backward, limit 11`, async () => {
      const o = { poolSize: [g.PH, g.PW] as [number, number], strides: [g.SH, g.SW] as [number, number], padding: g.padding };
      const shape = [g.B, g.H, g.W, g.C];
      const x = randomArray(g.B * g.H * g.W * g.C, seed++);
      const r = ref.maxPool2d(x, g);
      const dy = randomArray(r.y.length, seed++);
      const [my, mdx, ay, adx] = await folded(async () => {
        const { y, argmax } = await ops.maxPool2d(e.tensor(x, shape), o);
        const mdx = await ops.maxPool2dBackward(argmax, e.tensor(dy, y.shape), shape, o);
        const ay = await ops.avgPool2d(e.tensor(x, shape), o);
        const adx = await ops.avgPool2dBackward(e.tensor(dy, ay.shape), shape, o);
        return [await y.read(), await mdx.read(), await ay.read(), await adx.read()];
      }, 11);
      expectRelClose(my, r.y, 1e-6, "max y");
      expectRelClose(mdx, ref.maxPool2dBackward(x, dy, g), 1e-6, "max dx");
      expectRelClose(ay, ref.avgPool2d(x, g), 1e-5, "avg y");
      expectRelClose(adx, ref.avgPool2dBackward(dy, g), 1e-5, "avg dx");
    });
  }

  for (const N of [7, 8]) {
    it(`bias gradient over ${N} columns in row chunks, more of them than the lowered limit allows`, async () => {
      const R = 5000;
      const dy = randomArray(R * N, seed++);
      const db = await folded(async () => (await ops.biasGrad(e.tensor(dy, [R, N]))).read());
      expectRelClose(db, ref.biasGrad(dy, R, N), 1e-4, "db");
    });
  }
});
