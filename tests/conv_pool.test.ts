// The fused convolution + max pooling kernel (shaders/conv_pool.wgsl) on a real adapter against the
// float64 reference of the unfused ops (convolution, activation, max pooling and their backward passes).
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../src/engine.ts";
import { referenceCnn } from "../src/model/reference.ts";
import { Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input, MaxPooling2D, Concatenate } from "../src/index.ts";
import { fuseConvPool } from "../src/graph/fuse.ts";
import { topologicalNodes, type SymbolicTensor } from "../src/graph/graph.ts";
import { planWindow, type Padding } from "../src/geometry.ts";
import type { Activation } from "../src/kernels.ts";
import { convPoolArgmaxSize, convPoolBackward, convPoolForward, convPoolPartials, convPoolUnfit, type ConvPoolGeom } from "../src/kernels/conv_pool.ts";
import * as ref from "./reference/cpu.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

const e: Engine = await gpuEngine();
afterAll(() => e?.dispose());

interface Case {
  B: number;
  H: number;
  W: number;
  C: number;
  F: number;
  padding: Padding;
  poolStrides: [number, number];
  poolPadding: Padding;
  act: Activation;
  bias: boolean;
}

const CASES: Case[] = [
  // The reference CNN's first layer.
  { B: 3, H: 28, W: 28, C: 1, F: 32, padding: "valid", poolStrides: [2, 2], poolPadding: "valid", act: "relu", bias: true },
  // RGB, a 'same' convolution, a pooling window overhanging the image ('same'), odd sizes.
  { B: 2, H: 9, W: 7, C: 3, F: 8, padding: "same", poolStrides: [2, 2], poolPadding: "same", act: "tanh", bias: true },
  // Overlapping pooling windows (stride 1), two channels.
  { B: 2, H: 13, W: 12, C: 2, F: 4, padding: "valid", poolStrides: [1, 1], poolPadding: "valid", act: "sigmoid", bias: true },
  // No bias, no activation, uneven pooling strides that leave a remainder.
  { B: 1, H: 11, W: 10, C: 1, F: 12, padding: "same", poolStrides: [2, 3], poolPadding: "valid", act: "linear", bias: false },
];

function geomOf(c: Case): ConvPoolGeom {
  const conv = planWindow({ B: c.B, H: c.H, W: c.W, C: c.C, KH: 3, KW: 3, SH: 1, SW: 1, padding: c.padding }, "test");
  const pool = planWindow({ B: c.B, H: conv.OH, W: conv.OW, C: c.F, KH: 2, KW: 2, SH: c.poolStrides[0], SW: c.poolStrides[1], padding: c.poolPadding }, "test");
  return { conv, pool, F: c.F };
}

let seed = 900;

describe("conv_pool: a convolution fused with the max pooling after it", () => {
  for (const c of CASES) {
    it(`B${c.B} ${c.H}×${c.W}×${c.C} → ${c.F}, ${c.padding}, pool s${c.poolStrides.join("×")} ${c.poolPadding}, ${c.act}${c.bias ? "" : ", no bias"}`, async () => {
      const g = geomOf(c);
      expect(convPoolUnfit(g)).toBeUndefined();
      const cg = { B: c.B, H: c.H, W: c.W, C: c.C, KH: 3, KW: 3, SH: 1, SW: 1, padding: c.padding };
      const pg = { B: c.B, H: g.conv.OH, W: g.conv.OW, C: c.F, PH: 2, PW: 2, SH: c.poolStrides[0], SW: c.poolStrides[1], padding: c.poolPadding };
      const x = randomArray(c.B * c.H * c.W * c.C, seed++);
      const w = randomArray(9 * c.C * c.F, seed++);
      const b = c.bias ? randomArray(c.F, seed++) : new Float64Array(c.F);
      const z = ref.conv2d(x, w, b, cg, c.F, c.act);
      const { y: yRef } = ref.maxPool2d(z, pg);
      const dy = randomArray(yRef.length, seed++);
      // Backward through the unfused ops: pooling routes dy to each window's maximum, then the convolution.
      const dzRef = ref.maxPool2dBackward(z, dy, pg);
      const r = ref.conv2dBackward(x, w, z, dzRef, cg, c.F, c.act);

      const [xt, wt, bt] = [e.tensor(x, [c.B, c.H, c.W, c.C]), e.tensor(w, [3, 3, c.C, c.F]), e.tensor(b, [c.F])];
      const y = e.empty([c.B, g.pool.OH, g.pool.OW, c.F], "f32", "y");
      const argmax = e.empty([convPoolArgmaxSize(g)], "u32", "argmax");
      await e.run([await convPoolForward(e, { x: xt.buffer, w: wt.buffer, bias: c.bias ? bt.buffer : undefined, y: y.buffer, argmax: argmax.buffer }, g, c.act)]);
      expectRelClose(await y.read(), yRef, 1e-5, "y");

      const sizes = convPoolPartials(g);
      const dwPartials = e.empty([sizes.dw], "f32", "dw partials");
      const dbPartials = e.empty([sizes.db], "f32", "db partials");
      // dw accumulates onto what it holds (a shared kernel), db overwrites.
      const dw0 = randomArray(w.length, seed++);
      const dw = e.tensor(dw0, [w.length]);
      const db = e.empty([c.F], "f32", "db");
      const dyt = e.tensor(dy, y.shape);
      const io = { x: xt.buffer, y: y.buffer, argmax: argmax.buffer, dy: dyt.buffer, dwPartials: dwPartials.buffer, dbPartials: dbPartials.buffer, dw: { buffer: dw.buffer, accumulate: true }, db: { buffer: db.buffer, accumulate: false } };
      await e.run(await convPoolBackward(e, io, g, c.act));
      expectRelClose(await dw.read(), r.dw.map((v, i) => v + dw0[i]!), 1e-4, "dw");
      expectRelClose(await db.read(), r.db, 1e-4, "db");
      for (const t of [xt, wt, bt, y, argmax, dwPartials, dbPartials, dw, db, dyt]) t.dispose();
    });
  }

  it("refuses what the kernel cannot hold", () => {
    const g = geomOf(CASES[0]!);
    expect(convPoolUnfit({ ...g, F: 30 })).toMatch(/multiple of 4/);
    expect(convPoolUnfit({ ...g, conv: { ...g.conv, KH: 5, KW: 5 } })).toMatch(/5×5 convolution/);
    expect(convPoolUnfit({ ...g, conv: { ...g.conv, SH: 2 } })).toMatch(/stride 2×1/);
    expect(convPoolUnfit({ ...g, pool: { ...g.pool, KH: 3, KW: 3 } })).toMatch(/3×3 pooling/);
  });
});

describe("where the planner fuses a convolution and its pooling", () => {
  const kinds = (inputs: SymbolicTensor[], out: SymbolicTensor) => fuseConvPool(topologicalNodes(inputs, [out]), [out], 8).map((n) => n.kind);

  it("the reference CNN's first layer and its pooling become one node writing the pooling's output", () => {
    const x = Input({ shape: [28, 28, 1] });
    const p = MaxPooling2D({ poolSize: 2 }).apply(Conv2D({ filters: 32, kernelSize: 3, activation: "relu" }).apply(x));
    const out = Dense({ units: 10 }).apply(Flatten().apply(p));
    const nodes = fuseConvPool(topologicalNodes([x], [out]), [out], 8);
    expect(nodes.map((n) => n.kind)).toEqual(["convPool", "reshape", "matmul"]);
    expect(nodes[0]!.output).toBe(p);
  });

  it("a second convolution, whose input needs a gradient, keeps its own kernels", () => {
    const x = Input({ shape: [20, 20, 1] });
    const a = MaxPooling2D({ poolSize: 2 }).apply(Conv2D({ filters: 8, kernelSize: 3, activation: "relu" }).apply(x));
    const b = MaxPooling2D({ poolSize: 2 }).apply(Conv2D({ filters: 8, kernelSize: 3, activation: "relu" }).apply(a));
    expect(kinds([x], b)).toEqual(["convPool", "im2col", "matmul", "maxPool"]);
  });

  it("behind a frozen first block, the second convolution's input needs no gradient and it fuses too", () => {
    const x = Input({ shape: [20, 20, 1] });
    const a = MaxPooling2D({ poolSize: 2 }).apply(Conv2D({ filters: 8, kernelSize: 3, activation: "relu", trainable: false }).apply(x));
    const b = MaxPooling2D({ poolSize: 2 }).apply(Conv2D({ filters: 8, kernelSize: 3, activation: "relu" }).apply(a));
    expect(kinds([x], b)).toEqual(["convPool", "convPool"]);
  });

  it("not where another layer reads the convolution's output, nor where the filters are no multiple of 4", () => {
    const x = Input({ shape: [12, 12, 1] });
    const c = Conv2D({ filters: 8, kernelSize: 3, activation: "relu" }).apply(x);
    const both = Concatenate().apply([Flatten().apply(MaxPooling2D({ poolSize: 2 }).apply(c)), GlobalAveragePooling2D().apply(c)]);
    expect(kinds([x], both)).not.toContain("convPool");
    const y = Input({ shape: [12, 12, 1] });
    const odd = MaxPooling2D({ poolSize: 2 }).apply(Conv2D({ filters: 6, kernelSize: 3 }).apply(y));
    expect(kinds([y], odd)).toEqual(["im2col", "matmul", "maxPool"]);
  });
});

describe("a model trained with the fused kernel and without it", () => {
  it("ends an epoch with a short last batch at the same weights, and predicts the same", async () => {
    // 100 examples at batch 64: a full batch, then 36 (the rows past them must not count).
    const n = 100;
    const x = Float32Array.from(randomArray(n * 784, 77, 0, 1));
    const y = Array.from({ length: n }, (_, i) => (i * 3) % 10);
    const run = async (fusion: boolean) => {
      const engine = await Engine.create({ poisonOutputs: true, vectors: true, fusion });
      const model = referenceCnn();
      // SGD: its step is linear in the gradient, so sums taken in another order stay as close as they
      // are (Adam's first steps are near sign(g), which turns rounding in tiny gradients into whole steps).
      await model.compile({ optimizer: { type: "sgd", learningRate: 0.05, momentum: 0.9 }, loss: "sparseCategoricalCrossentropy", seed: 5, engine });
      const { history } = await model.fit(x, y, { epochs: 2, batchSize: 64, shuffle: false });
      const weights = await model.getWeights();
      const predictions = await model.predict(x.subarray(0, 7 * 784), { batchSize: 3 });
      model.dispose();
      engine.dispose();
      return { loss: history.loss, weights, predictions };
    };
    const fused = await run(true);
    const plain = await run(false);
    expect(fused.loss.length).toBe(2);
    for (let i = 0; i < 2; i++) expect(fused.loss[i]).toBeCloseTo(plain.loss[i]!, 4);
    for (const [i, w] of fused.weights.entries()) expectRelClose(w.data, plain.weights[i]!.data, 1e-3, w.name);
    expectRelClose(fused.predictions, plain.predictions, 1e-3, "predictions");
    // Trained: the first layer moved from its initialisation, both ways alike.
    expect(fused.loss[1]).toBeLessThan(fused.loss[0]!);
  }, 60_000);
});
