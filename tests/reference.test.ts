// Checks the Float64 CPU reference (the GPU test oracle): hand-computed cases, and every backward
// function against central finite differences of its forward.
import { describe, expect, it } from "vitest";
import * as ref from "./reference/cpu.ts";
import type { Activation, Conv2dGeom, Padding, Pool2dGeom } from "./reference/cpu.ts";
import { expectClose, numericGradient } from "./reference/grad_check.ts";
import { randomArray, rng } from "./reference/random.ts";

const ACTS: Activation[] = ["linear", "relu", "sigmoid", "tanh"];

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// Analytic gradient of f at x must match central differences (~1e-6 relative).
function checkGrad(label: string, f: (x: Float64Array) => number, x: ArrayLike<number>, analytic: ArrayLike<number>) {
  expectClose(analytic, numericGradient(f, Float64Array.from(x)), 1e-6, 1e-8, label);
}

// Relu's kink: finite differences are only valid away from 0.
function expectAwayFromZero(z: ArrayLike<number>, margin = 1e-3) {
  expect(Math.min(...Array.from(z, Math.abs))).toBeGreaterThan(margin);
}

// n distinct values in (-1, 1), none zero, spaced 2/n apart, in seeded random order.
function distinctArray(n: number, seed: number): Float64Array {
  const next = rng(seed);
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return Float64Array.from(perm, (p) => ((p + 0.25) / n) * 2 - 1);
}

describe("matmul", () => {
  it("2x2 by hand", () => {
    expect(Array.from(ref.matmul([1, 2, 3, 4], [5, 6, 7, 8], 2, 2, 2))).toEqual([19, 22, 43, 50]);
    expect(Array.from(ref.matmul([1, 3, 2, 4], [5, 6, 7, 8], 2, 2, 2, true))).toEqual([19, 22, 43, 50]);
  });

  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])("transA=%s transB=%s matches the naive formula", (transA, transB) => {
    const M = 3, N = 5, K = 4;
    const A = Array.from({ length: M }, (_, i) => Array.from(randomArray(K, 10 + i)));
    const Bm = Array.from({ length: K }, (_, k) => Array.from(randomArray(N, 20 + k)));
    const a = transA ? Array.from({ length: K }, (_, k) => A.map((row) => row[k])).flat() : A.flat();
    const b = transB ? Array.from({ length: N }, (_, j) => Bm.map((row) => row[j])).flat() : Bm.flat();
    const expected = A.flatMap((row) => Array.from({ length: N }, (_, j) => row.reduce((s, aik, k) => s + aik * Bm[k][j], 0)));
    expectClose(ref.matmul(a, b, M, N, K, transA, transB), expected, 1e-14, 1e-14);
  });
});

describe("dense", () => {
  it("by hand", () => {
    // x = [1, 2], w = [[1, -1], [2, 0.5]], b = [0.5, -3] -> z = [5.5, -3]
    expect(Array.from(ref.dense([1, 2], [1, -1, 2, 0.5], [0.5, -3], 1, 2, 2, "relu"))).toEqual([5.5, 0]);
  });

  it.each(ACTS)("backward matches finite differences (%s)", (act) => {
    const B = 3, IN = 5, OUT = 4;
    const x = randomArray(B * IN, 1), w = randomArray(IN * OUT, 2), b = randomArray(OUT, 3), r = randomArray(B * OUT, 4);
    if (act === "relu") expectAwayFromZero(ref.dense(x, w, b, B, IN, OUT, "linear"));
    const y = ref.dense(x, w, b, B, IN, OUT, act);
    const { dx, dw, db } = ref.denseBackward(x, w, y, r, B, IN, OUT, act);
    checkGrad("dx", (v) => dot(r, ref.dense(v, w, b, B, IN, OUT, act)), x, dx);
    checkGrad("dw", (v) => dot(r, ref.dense(x, v, b, B, IN, OUT, act)), w, dw);
    checkGrad("db", (v) => dot(r, ref.dense(x, w, v, B, IN, OUT, act)), b, db);
  });

  it("bias grad: column sums, and matches finite differences", () => {
    expect(Array.from(ref.biasGrad([1, 2, 3, 4, 5, 6], 3, 2))).toEqual([9, 12]);
    const R = 5, N = 3;
    const z = randomArray(R * N, 5), b = randomArray(N, 6), r = randomArray(R * N, 7);
    const f = (v: Float64Array) => dot(r, Float64Array.from(z, (zi, i) => zi + v[i % N]));
    checkGrad("db", f, b, ref.biasGrad(r, R, N));
  });
});

describe("conv2d", () => {
  it("output geometry (TensorFlow convention)", () => {
    const g = (H: number, KH: number, SH: number, padding: Padding): Conv2dGeom =>
      ({ B: 1, H, W: H, C: 1, KH, KW: KH, SH, SW: SH, padding });
    expect(ref.convOutput(g(5, 3, 2, "valid"))).toEqual({ OH: 2, OW: 2, PT: 0, PL: 0 });
    expect(ref.convOutput(g(5, 3, 2, "same"))).toEqual({ OH: 3, OW: 3, PT: 1, PL: 1 });
    expect(ref.convOutput(g(6, 3, 2, "same"))).toEqual({ OH: 3, OW: 3, PT: 0, PL: 0 });
    expect(ref.convOutput(g(7, 2, 1, "same"))).toEqual({ OH: 7, OW: 7, PT: 0, PL: 0 });
    expect(ref.convOutput(g(4, 4, 1, "same"))).toEqual({ OH: 4, OW: 4, PT: 1, PL: 1 });
  });

  it("im2col by hand", () => {
    const x = [1, 2, 3, 4, 5, 6, 7, 8, 9]; // (1, 3, 3, 1)
    const valid = ref.im2col(x, { B: 1, H: 3, W: 3, C: 1, KH: 2, KW: 2, SH: 1, SW: 1, padding: "valid" });
    expect(Array.from(valid)).toEqual([1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9]);
    const same = ref.im2col(x, { B: 1, H: 3, W: 3, C: 1, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same" });
    expect(Array.from(same.subarray(0, 9))).toEqual([0, 0, 0, 0, 1, 2, 0, 4, 5]);
    expect(Array.from(same.subarray(36, 45))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  const cases: [number, number, Padding][] = [];
  for (const C of [1, 3]) for (const S of [1, 2]) for (const padding of ["valid", "same"] as Padding[]) cases.push([C, S, padding]);

  it.each(cases)("col2im is the adjoint of im2col (C=%i, stride=%i, %s)", (C, S, padding) => {
    for (const [KH, KW] of [[3, 2], [2, 3], [1, 1]]) {
      const g: Conv2dGeom = { B: 2, H: 5, W: 7, C, KH, KW, SH: S, SW: S, padding };
      const x = randomArray(g.B * g.H * g.W * C, 30);
      const cols = ref.im2col(x, g);
      const u = randomArray(cols.length, 31);
      expect(dot(ref.col2im(u, g), x)).toBeCloseTo(dot(u, cols), 12);
    }
  });

  it.each(cases)("backward matches finite differences (C=%i, stride=%i, %s)", (C, S, padding) => {
    const F = 4;
    const act = ACTS[cases.findIndex((c) => c[0] === C && c[1] === S && c[2] === padding) % ACTS.length];
    const g: Conv2dGeom = { B: 2, H: 5, W: 7, C, KH: 3, KW: 2, SH: S, SW: S, padding };
    const x = randomArray(g.B * g.H * g.W * C, 40), w = randomArray(g.KH * g.KW * C * F, 41), b = randomArray(F, 42);
    const y = ref.conv2d(x, w, b, g, F, act);
    const r = randomArray(y.length, 43);
    if (act === "relu") expectAwayFromZero(ref.conv2d(x, w, b, g, F, "linear"));
    const { dx, dw, db } = ref.conv2dBackward(x, w, y, r, g, F, act);
    checkGrad("dx", (v) => dot(r, ref.conv2d(v, w, b, g, F, act)), x, dx);
    checkGrad("dw", (v) => dot(r, ref.conv2d(x, v, b, g, F, act)), w, dw);
    checkGrad("db", (v) => dot(r, ref.conv2d(x, w, v, g, F, act)), b, db);
  });
});

describe("pooling", () => {
  it("max pool by hand: padding ignored, ties go to the first", () => {
    const neg = [-4, -3, -2, -1]; // (1, 2, 2, 1)
    const g: Pool2dGeom = { B: 1, H: 2, W: 2, C: 1, PH: 3, PW: 3, SH: 1, SW: 1, padding: "same" };
    expect(Array.from(ref.maxPool2d(neg, g).y)).toEqual([-1, -1, -1, -1]);
    const tie = ref.maxPool2d([5, 5, 5, 5], { ...g, PH: 2, PW: 2, SH: 2, SW: 2, padding: "valid" });
    expect(Array.from(tie.argmax)).toEqual([0]);
    expect(Array.from(ref.maxPool2dBackward([5, 5, 5, 5], [7], { ...g, PH: 2, PW: 2, SH: 2, SW: 2, padding: "valid" }))).toEqual([7, 0, 0, 0]);
  });

  it("avg pool by hand: padding not counted", () => {
    const g: Pool2dGeom = { B: 1, H: 2, W: 2, C: 1, PH: 3, PW: 3, SH: 1, SW: 1, padding: "same" };
    expect(Array.from(ref.avgPool2d([1, 2, 3, 4], g))).toEqual([2.5, 2.5, 2.5, 2.5]);
    const h: Pool2dGeom = { B: 1, H: 3, W: 1, C: 1, PH: 2, PW: 1, SH: 2, SW: 1, padding: "same" }; // OH 2, window 2 is [x2, pad]
    expect(Array.from(ref.avgPool2d([1, 2, 6], h))).toEqual([1.5, 6]);
  });

  const geoms: [string, Pool2dGeom][] = [
    ["2x2/2 valid", { B: 2, H: 5, W: 7, C: 3, PH: 2, PW: 2, SH: 2, SW: 2, padding: "valid" }],
    ["2x2/2 same", { B: 2, H: 5, W: 7, C: 3, PH: 2, PW: 2, SH: 2, SW: 2, padding: "same" }],
    ["3x3/2 same", { B: 2, H: 5, W: 7, C: 1, PH: 3, PW: 3, SH: 2, SW: 2, padding: "same" }],
    ["2x3/1 valid", { B: 2, H: 5, W: 7, C: 3, PH: 2, PW: 3, SH: 1, SW: 1, padding: "valid" }],
    ["3x2/1 same", { B: 2, H: 5, W: 7, C: 3, PH: 3, PW: 2, SH: 1, SW: 1, padding: "same" }],
  ];

  it.each(geoms)("max pool backward matches finite differences (%s)", (_, g) => {
    const x = distinctArray(g.B * g.H * g.W * g.C, 50);
    const { y, argmax } = ref.maxPool2d(x, g);
    expect(Array.from(argmax, (i) => x[i])).toEqual(Array.from(y));
    const r = randomArray(y.length, 51);
    checkGrad("dx", (v) => dot(r, ref.maxPool2d(v, g).y), x, ref.maxPool2dBackward(x, r, g));
  });

  it.each(geoms)("avg pool backward matches finite differences (%s)", (_, g) => {
    const x = randomArray(g.B * g.H * g.W * g.C, 60);
    const r = randomArray(ref.avgPool2d(x, g).length, 61);
    checkGrad("dx", (v) => dot(r, ref.avgPool2d(v, g)), x, ref.avgPool2dBackward(r, g));
  });
});

describe("losses", () => {
  const B = 4, K = 5, nValid = 3; // row 3 is padding

  it("softmax cross-entropy by hand", () => {
    const r = ref.softmaxCrossEntropy([0, 0, 1000, 0], [0, 0], 2, 2);
    expectClose(r.loss, [Math.log(2), 0], 1e-15, 1e-15);
    expectClose(r.dlogits, [-0.25, 0.25, 0, 0], 1e-15, 1e-15);
    expect(r.correct).toBe(2); // row 0 ties -> class 0
  });

  it("softmax cross-entropy (sparse) matches finite differences; padding rows ignored", () => {
    const logits = randomArray(B * K, 70, -3, 3), labels = [2, 0, 4, 1];
    const r = ref.softmaxCrossEntropy(logits, labels, B, K, nValid);
    expect(r.loss[3]).toBe(0);
    expect(r.lossSum).toBeCloseTo(r.loss[0] + r.loss[1] + r.loss[2], 14);
    const pred = [0, 1, 2].map((b) => { const row = Array.from(logits.subarray(b * K, b * K + K)); return row.indexOf(Math.max(...row)); });
    expect(r.correct).toBe(pred.filter((p, b) => p === labels[b]).length);
    checkGrad("dlogits", (v) => ref.softmaxCrossEntropy(v, labels, B, K, nValid).lossSum / nValid, logits, r.dlogits);
  });

  it("softmax cross-entropy (dense targets) matches finite differences and agrees with sparse on one-hot", () => {
    const logits = randomArray(B * K, 71, -3, 3), raw = randomArray(B * K, 72, 0.05, 1);
    const targets = Float64Array.from(raw, (v, i) => { let s = 0; const b = Math.floor(i / K); for (let k = 0; k < K; k++) s += raw[b * K + k]; return v / s; });
    const r = ref.softmaxCrossEntropyDense(logits, targets, B, K, nValid);
    expect(r.loss[3]).toBe(0);
    checkGrad("dlogits", (v) => ref.softmaxCrossEntropyDense(v, targets, B, K, nValid).lossSum / nValid, logits, r.dlogits);
    const labels = [2, 0, 4, 1], onehot = Float64Array.from({ length: B * K }, (_, i) => (i % K === labels[Math.floor(i / K)] ? 1 : 0));
    const s = ref.softmaxCrossEntropy(logits, labels, B, K, nValid), d = ref.softmaxCrossEntropyDense(logits, onehot, B, K, nValid);
    expectClose(d.loss, s.loss, 1e-14, 1e-14);
    expectClose(d.dlogits, s.dlogits, 1e-14, 1e-14);
    expect(d.correct).toBe(s.correct);
  });

  it("mean squared error matches finite differences", () => {
    const r0 = ref.meanSquaredError([1, 2, 3, 5], [0, 0, 3, 3], 2, 2);
    expect(Array.from(r0.loss)).toEqual([2.5, 2]);
    expect(Array.from(r0.dpred)).toEqual([0.5, 1, 0, 1]);
    const pred = randomArray(B * K, 80), target = randomArray(B * K, 81);
    const r = ref.meanSquaredError(pred, target, B, K, nValid);
    expect(r.loss[3]).toBe(0);
    checkGrad("dpred", (v) => ref.meanSquaredError(v, target, B, K, nValid).lossSum / nValid, pred, r.dpred);
  });

  it("binary cross-entropy matches finite differences", () => {
    const r0 = ref.binaryCrossentropy([0.5, 0.9, 0.2, 0], [1, 1, 1, 0], 2, 2);
    expectClose(r0.loss, [(Math.log(2) - Math.log(0.9)) / 2, -(Math.log(0.2) + Math.log(1 - 1e-7)) / 2], 1e-12, 0);
    expect(r0.correct).toBe(2); // 0.9 vs 1 and 0 vs 0
    const prob = randomArray(B * K, 90, 0.05, 0.95), target = randomArray(B * K, 91, 0, 1);
    const r = ref.binaryCrossentropy(prob, target, B, K, nValid);
    expect(r.loss[3]).toBe(0);
    checkGrad("dprob", (v) => ref.binaryCrossentropy(v, target, B, K, nValid).lossSum / nValid, prob, r.dprob);
  });
});

describe("optimizers", () => {
  it("SGD with momentum (Keras)", () => {
    const w = Float64Array.of(1), v = Float64Array.of(0);
    ref.sgdUpdate(w, [0.5], v, 0.1, 0.9);
    expectClose([w[0], v[0]], [0.95, -0.05], 1e-15, 1e-15);
    ref.sgdUpdate(w, [0.5], v, 0.1, 0.9);
    expectClose([w[0], v[0]], [0.855, -0.095], 1e-15, 1e-15);
  });

  it("Adam (Keras/TF formulation)", () => {
    const lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-7, g = [0.5, -2];
    const w = Float64Array.of(1, 1), m = new Float64Array(2), v = new Float64Array(2);
    ref.adamUpdate(w, g, m, v, lr, b1, b2, eps, 1);
    // step 1: lr_t = lr sqrt(1-b2)/(1-b1), m = (1-b1) g, sqrt(v) = sqrt(1-b2) |g|
    const s = Math.sqrt(1 - b2);
    expectClose(w, g.map((gi) => 1 - (lr * gi * s) / (s * Math.abs(gi) + eps)), 1e-14, 1e-14);
    ref.adamUpdate(w, g, m, v, lr, b1, b2, eps, 2);
    // constant gradient: bias-corrected m = g, v = g^2, so each step moves ~lr * sign(g)
    expectClose(w, g.map((gi) => 1 - 2 * lr * Math.sign(gi)), 1e-4, 0);
  });
});
