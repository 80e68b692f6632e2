// The graph engine: functional models with shared layers, several inputs, skip connections and batch
// normalisation, each checked for one training step against a float64 reference written out by hand;
// frozen layers; per-layer dropout masks; the memory plan.
import { afterAll, describe, expect, it } from "vitest";
import {
  ActivationLayer as Activation,
  Add,
  BatchNormalization,
  Concatenate,
  Conv2D,
  Dense,
  Dropout,
  GlobalAveragePooling2D,
  Input,
  Model,
  Sequential,
} from "../src/index.ts";
import { referenceCnn } from "../src/entry/models.ts";
import type { Engine } from "../src/engine.ts";
import { requiringGrad } from "../src/graph/autodiff.ts";
import { topologicalNodes } from "../src/graph/graph.ts";
import { packIntervals, type Interval } from "../src/plan/memory.ts";
import * as ref from "./reference/cpu.ts";
import * as norm from "./reference/norm.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

let engine: Engine | undefined;
afterAll(() => engine?.dispose());

type Weights = Map<string, Float32Array>;
const byName = async (m: Model): Promise<Weights> => new Map((await m.getWeights()).map((w) => [w.name, w.data]));

/** Checks after − before == −lr · grad for every named gradient (plain SGD), and that the step moved. */
function expectSgdStep(before: Weights, after: Weights, grads: Record<string, ArrayLike<number>>, lr: number): void {
  for (const [name, g] of Object.entries(grads)) {
    const b = before.get(name)!;
    const a = after.get(name)!;
    const dGpu = Float64Array.from(a, (v, i) => v - b[i]!);
    const dRef = Float64Array.from(g, (v) => -lr * v);
    expect(dRef.reduce((m, v) => Math.max(m, Math.abs(v)), 0), `${name} moves`).toBeGreaterThan(1e-6);
    expectRelClose(dGpu, dRef, 2e-3, `${name} update`);
  }
}

describe("functional models: one SGD step vs the float64 reference", () => {
  it("two inputs, a layer shared by both, Add and Concatenate (gradients of the shared kernel are summed)", async () => {
    engine ??= await gpuEngine();
    const B = 5;
    const a = Input({ shape: [6], name: "a" });
    const b = Input({ shape: [6], name: "b" });
    const shared = Dense({ units: 7, activation: "tanh", name: "shared" });
    const ha = shared.apply(a);
    const hb = shared.apply(b);
    const s = Add({ name: "sum" }).apply([ha, hb]);
    const c = Concatenate({ name: "cat" }).apply([s, hb]); // hb fans out: to Add and to Concatenate
    const out = Dense({ units: 3, name: "head" }).apply(c);
    const model = new Model({ inputs: [a, b], outputs: out });
    const lr = 0.1;
    await model.compile({ optimizer: { type: "sgd", learningRate: lr }, loss: "meanSquaredError", engine, seed: 4 });
    const w = await byName(model);
    const xa = Float32Array.from(randomArray(B * 6, 21));
    const xb = Float32Array.from(randomArray(B * 6, 22));
    const y = Array.from(randomArray(B * 3, 23));
    await model.fit({ b: xb, a: xa }, y, { epochs: 1, batchSize: B, shuffle: false });

    const W = w.get("shared/kernel")!;
    const bias = w.get("shared/bias")!;
    const Wo = w.get("head/kernel")!;
    const yA = ref.dense(xa, W, bias, B, 6, 7, "tanh");
    const yB = ref.dense(xb, W, bias, B, 6, 7, "tanh");
    const cat = new Float64Array(B * 14);
    for (let r = 0; r < B; r++) for (let j = 0; j < 7; j++) {
      cat[r * 14 + j] = yA[r * 7 + j]! + yB[r * 7 + j]!;
      cat[r * 14 + 7 + j] = yB[r * 7 + j]!;
    }
    const pred = ref.dense(cat, Wo, w.get("head/bias")!, B, 14, 3, "linear");
    const dPred = ref.meanSquaredError(pred, y, B, 3).dpred;
    const head = ref.denseBackward(cat, Wo, pred, dPred, B, 14, 3, "linear");
    const dA = new Float64Array(B * 7);
    const dB = new Float64Array(B * 7);
    for (let r = 0; r < B; r++) for (let j = 0; j < 7; j++) {
      dA[r * 7 + j] = head.dx[r * 14 + j]!;
      dB[r * 7 + j] = head.dx[r * 14 + j]! + head.dx[r * 14 + 7 + j]!;
    }
    const ga = ref.denseBackward(xa, W, yA, dA, B, 6, 7, "tanh");
    const gb = ref.denseBackward(xb, W, yB, dB, B, 6, 7, "tanh");
    expectSgdStep(w, await byName(model), {
      "shared/kernel": ga.dw.map((v, i) => v + gb.dw[i]!),
      "shared/bias": ga.db.map((v, i) => v + gb.db[i]!),
      "head/kernel": head.dw,
      "head/bias": head.db,
    }, lr);
    expect(model.summary()).toMatch(/shared \(dense\)\s+\(None, 7\)\s+49\s+a\n\s+\(None, 7\)\s+b/);
    model.dispose();
  });

  it("a residual block with batch normalisation, a pointwise projection and global average pooling", async () => {
    engine ??= await gpuEngine();
    const B = 4;
    const [H, Wd, C, F] = [6, 5, 2, 3];
    const x = Input({ shape: [H, Wd, C] });
    const c1 = Conv2D({ filters: F, kernelSize: 3, padding: "same", useBias: false, name: "conv" }).apply(x);
    const n1 = BatchNormalization({ name: "bn" }).apply(c1);
    const r1 = Activation({ activation: "relu" }).apply(n1);
    const p = Conv2D({ filters: F, kernelSize: 1, useBias: false, name: "proj" }).apply(x);
    const s = Add().apply([r1, p]);
    const g = GlobalAveragePooling2D().apply(s);
    const out = Dense({ units: 4, activation: "softmax", name: "head" }).apply(g);
    const model = new Model({ inputs: x, outputs: out });
    const lr = 0.05;
    await model.compile({ optimizer: { type: "sgd", learningRate: lr }, loss: "sparseCategoricalCrossentropy", engine, seed: 5 });
    // Non-trivial BatchNorm parameters, so the test sees gamma and beta at work.
    const w0 = await model.getWeights();
    model.setWeights(w0.map((t) => (t.name === "bn/gamma" ? { ...t, data: Float32Array.of(1.5, 0.7, 1.1) } : t.name === "bn/beta" ? { ...t, data: Float32Array.of(0.1, -0.2, 0.3) } : t)));
    const w = await byName(model);
    const xs = Float32Array.from(randomArray(B * H * Wd * C, 31));
    const labels = [0, 3, 1, 2];
    await model.fit(xs, labels, { epochs: 1, batchSize: B, shuffle: false });

    const geom = { B, H, W: Wd, C, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same" as const };
    const conv = ref.conv2d(xs, w.get("conv/kernel")!, null, geom, F, "linear");
    const R = B * H * Wd;
    const bn = norm.batchNorm(conv, w.get("bn/gamma")!, w.get("bn/beta")!, R, F);
    const relu = ref.activation("relu", bn.y);
    const proj = ref.matmul(xs, w.get("proj/kernel")!, R, F, C);
    const sum = relu.map((v, i) => v + proj[i]!);
    const pooled = new Float64Array(B * F);
    for (let i = 0; i < R * F; i++) pooled[Math.floor(i / (H * Wd * F)) * F + (i % F)] += sum[i]! / (H * Wd);
    const logits = ref.dense(pooled, w.get("head/kernel")!, w.get("head/bias")!, B, F, 4, "linear");
    const dl = ref.softmaxCrossEntropy(logits, labels, B, 4).dlogits;
    const head = ref.denseBackward(pooled, w.get("head/kernel")!, logits, dl, B, F, 4, "linear");
    const dSum = Float64Array.from({ length: R * F }, (_, i) => head.dx[Math.floor(i / (H * Wd * F)) * F + (i % F)]! / (H * Wd));
    const dProjW = ref.matmul(xs, dSum, C, F, R, true, false);
    const dBn = ref.activationBackward("relu", relu, dSum);
    const bnBack = norm.batchNormBackward(dBn, conv, w.get("bn/gamma")!, bn.mean, bn.invstd, R, F);
    const convBack = ref.conv2dBackward(xs, w.get("conv/kernel")!, conv, bnBack.dx, geom, F, "linear");
    const after = await byName(model);
    expectSgdStep(w, after, {
      "head/kernel": head.dw,
      "head/bias": head.db,
      "proj/kernel": dProjW,
      "bn/gamma": bnBack.dgamma,
      "bn/beta": bnBack.dbeta,
      "conv/kernel": convBack.dw,
    }, lr);
    // Moving statistics: Keras's momentum 0.99 from mean 0 and variance 1, with the biased batch variance.
    const moving = norm.movingUpdate([0, 0, 0], [1, 1, 1], bn.mean, bn.variance);
    expectRelClose(after.get("bn/moving_mean")!, moving.movingMean, 1e-4, "moving mean");
    expectRelClose(after.get("bn/moving_variance")!, moving.movingVar, 1e-4, "moving variance");
    // Inference uses the moving statistics, not the batch's.
    const probs = await model.predict(xs);
    const convAfter = ref.conv2d(xs, after.get("conv/kernel")!, null, geom, F, "linear");
    const bnInf = norm.batchNormInference(convAfter, after.get("bn/gamma")!, after.get("bn/beta")!, after.get("bn/moving_mean")!, after.get("bn/moving_variance")!, R, F);
    const projAfter = ref.matmul(xs, after.get("proj/kernel")!, R, F, C);
    const sumInf = ref.activation("relu", bnInf).map((v, i) => v + projAfter[i]!);
    const pooledInf = new Float64Array(B * F);
    for (let i = 0; i < R * F; i++) pooledInf[Math.floor(i / (H * Wd * F)) * F + (i % F)] += sumInf[i]! / (H * Wd);
    const logitsInf = ref.dense(pooledInf, after.get("head/kernel")!, after.get("head/bias")!, B, F, 4, "linear");
    const expected = new Float64Array(B * 4);
    for (let r = 0; r < B; r++) {
      const row = logitsInf.subarray(r * 4, r * 4 + 4);
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const z = e.reduce((q, v) => q + v, 0);
      for (let k = 0; k < 4; k++) expected[r * 4 + k] = e[k]! / z;
    }
    expectRelClose(probs, expected, 1e-4, "predictions with moving statistics");
    model.dispose();
  });
});

describe("what the backward walk computes", () => {
  it("a frozen layer keeps its weights and gets no gradient; nothing is computed below the first trainable layer", async () => {
    engine ??= await gpuEngine();
    const frozen = Dense({ units: 5, activation: "relu", inputShape: [4], name: "frozen", trainable: false });
    const model = new Sequential([frozen, Dense({ units: 6, activation: "relu", name: "middle" }), Dense({ units: 2, name: "top" })]);
    await model.compile({ optimizer: { type: "adam", learningRate: 0.01 }, loss: "meanSquaredError", engine });
    const before = await byName(model);
    const { history } = await model.fit(Float32Array.from(randomArray(8 * 4, 41)), Array.from(randomArray(16, 42)), { epochs: 2, batchSize: 4 });
    // History's known keys are typed: no index signature, no non-null assertion needed under strict checks.
    expect(history.loss.length + history.seconds.length).toBe(4);
    expect(history.accuracy).toBeUndefined(); // mean squared error reports no accuracy
    const after = await byName(model);
    expect(Array.from(after.get("frozen/kernel")!)).toEqual(Array.from(before.get("frozen/kernel")!));
    expect(Array.from(after.get("frozen/bias")!)).toEqual(Array.from(before.get("frozen/bias")!));
    expect(Array.from(after.get("middle/kernel")!)).not.toEqual(Array.from(before.get("middle/kernel")!));
    const labels = (await model.plan(4)).backward.map((d) => d.label);
    expect(labels.some((l) => l.startsWith("frozen"))).toBe(false);
    expect(labels.some((l) => l.startsWith("middle dW"))).toBe(true);
    expect(labels.some((l) => l.startsWith("middle dX"))).toBe(false); // its input is the frozen layer's output
    expect(model.summary()).toMatch(/Trainable params: 50\nNon-trainable params: 25/);
    model.dispose();
  });

  it("requiringGrad follows trainable parameters only", () => {
    const x = Input({ shape: [3] });
    const l1 = Dense({ units: 2, trainable: false });
    const h = l1.apply(x);
    const y = Dense({ units: 2 }).apply(h);
    const nodes = topologicalNodes([x], [y]);
    const needs = requiringGrad(nodes);
    expect(needs.has(h)).toBe(false);
    expect(needs.has(y)).toBe(true);
    expect(needs.has(l1.weights![0]!)).toBe(false);
  });

  it("two Dropout layers on one input draw different masks", async () => {
    engine ??= await gpuEngine();
    const n = 64;
    const x = Input({ shape: [n] });
    const cat = Concatenate().apply([Dropout({ rate: 0.5 }).apply(x), Dropout({ rate: 0.5 }).apply(x)]);
    const model = new Model({ inputs: x, outputs: Dense({ units: 1, name: "out", useBias: false }).apply(cat) });
    await model.compile({ optimizer: { type: "sgd", learningRate: 1 }, loss: "meanSquaredError", engine });
    const before = (await byName(model)).get("out/kernel")!;
    await model.fit(new Float32Array(n).fill(1), [1000], { epochs: 1, batchSize: 1 });
    const after = (await byName(model)).get("out/kernel")!;
    // The kernel's update is −lr·dout·(x ⊙ mask): zero exactly where a mask dropped the input.
    const kept = (i: number) => after[i] !== before[i];
    const first = Array.from({ length: n }, (_, i) => kept(i));
    const second = Array.from({ length: n }, (_, i) => kept(n + i));
    const on = first.filter(Boolean).length;
    expect(on).toBeGreaterThan(n / 5);
    expect(on).toBeLessThan((4 * n) / 5);
    expect(first).not.toEqual(second);
    model.dispose();
  });
});

describe("memory plan", () => {
  it("packs random intervals without overlapping any two that are alive together", () => {
    const random = (() => {
      let s = 7;
      return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    })();
    const intervals: Interval[] = Array.from({ length: 200 }, (_, i) => {
      const first = Math.floor(random() * 50);
      return { bytes: 16 * (1 + Math.floor(random() * 100)), first, last: first + Math.floor(random() * 10), label: `b${i}` };
    });
    const { offsets, bytes } = packIntervals(intervals, 256);
    intervals.forEach((a, i) => {
      expect(offsets[i]! % 256).toBe(0);
      expect(offsets[i]! + a.bytes).toBeLessThanOrEqual(bytes);
      intervals.forEach((b, j) => {
        if (j <= i || a.last < b.first || b.last < a.first) return;
        const apart = offsets[i]! + a.bytes <= offsets[j]! || offsets[j]! + b.bytes <= offsets[i]!;
        expect(apart, `${a.label} and ${b.label} are alive together`).toBe(true);
      });
    });
    // Never worse than one buffer each, and never better than the busiest moment.
    const unpacked = packIntervals(intervals, 256, false).bytes;
    const busiest = Math.max(...Array.from({ length: 60 }, (_, t) => intervals.filter((iv) => iv.first <= t && t <= iv.last).reduce((s, iv) => s + iv.bytes, 0)));
    expect(bytes).toBeLessThan(unpacked);
    expect(bytes).toBeGreaterThanOrEqual(busiest);
  });

  it("the reference CNN's training step shares memory, and its inference step needs less", async () => {
    engine ??= await gpuEngine();
    const model = referenceCnn();
    await model.compile({ loss: "sparseCategoricalCrossentropy", engine });
    const train = await model.memory(64, true);
    const infer = await model.memory(64, false);
    expect(train.peakBytes).toBeLessThan(train.unpackedBytes);
    expect(infer.peakBytes).toBeLessThan(train.peakBytes);
    model.dispose();
  });
});
