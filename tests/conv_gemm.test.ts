// The implicit-GEMM convolution (matmul_subgroup.wgsl's conv_* entries: im2col's columns read from the
// input, never written; at stride 1, dX as the forward product of dz with the flipped filters) on both
// CPU drivers here and both K steps, against the float64 reference of im2col, the products and col2im;
// where the planner uses it; and a model with strided, padded and 1×1 convolutions trained with it and
// without it.
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../src/engine.ts";
import { Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input, MaxPooling2D, Model } from "../src/index.ts";
import { fuseConvGemm, fuseConvPool } from "../src/graph/fuse.ts";
import { topologicalNodes, type SymbolicTensor } from "../src/graph/graph.ts";
import { planWindow, type Padding } from "../src/geometry.ts";
import * as K from "../src/kernels.ts";
import * as CG from "../src/kernels/conv_gemm.ts";
import * as ref from "./reference/cpu.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose } from "./gpu_helpers.ts";

interface Case {
  B: number;
  H: number;
  W: number;
  C: number;
  F: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  padding: Padding;
  act: K.Activation;
  bias: boolean;
}

const CASES: Case[] = [
  // The residual network's strided 3×3 (rows of 14: the filter gradient reads x too).
  { B: 3, H: 28, W: 28, C: 12, F: 12, KH: 3, KW: 3, SH: 2, SW: 2, padding: "same", act: "relu", bias: false },
  // Ragged: C not a multiple of 4 (so a run of channels ends inside a 4-step), odd sizes, bias and tanh.
  { B: 2, H: 9, W: 11, C: 5, F: 8, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same", act: "tanh", bias: true },
  // One channel (K = 9), 'valid', rows of 26 pixels.
  { B: 2, H: 28, W: 28, C: 1, F: 32, KH: 3, KW: 3, SH: 1, SW: 1, padding: "valid", act: "linear", bias: true },
  // An even window ('same' pads 1 before and 2 after), F not a multiple of 4 in dX's K.
  { B: 2, H: 6, W: 9, C: 8, F: 4, KH: 4, KW: 4, SH: 1, SW: 1, padding: "same", act: "relu", bias: true },
  // A rectangular window with uneven strides.
  { B: 2, H: 7, W: 20, C: 3, F: 4, KH: 2, KW: 3, SH: 1, SW: 2, padding: "valid", act: "sigmoid", bias: true },
  // A strided 1×1 projection with many channels; rows of 3 pixels (the filter gradient takes im2col there).
  { B: 5, H: 6, W: 5, C: 24, F: 20, KH: 1, KW: 1, SH: 2, SW: 2, padding: "same", act: "linear", bias: false },
  // Rows of 17 pixels, so that the k4 kernels' filter gradient walks them 4 at a time, overhanging the
  // image on both sides.
  { B: 2, H: 10, W: 17, C: 4, F: 8, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same", act: "relu", bias: true },
  // The last stage: 4×4 images, 56 channels.
  { B: 4, H: 4, W: 4, C: 56, F: 56, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same", act: "relu", bias: true },
];

const DRIVERS = [
  { adapter: "lavapipe", variant: "subgroup8" },
  { adapter: "lavapipe", variant: "subgroup8k4" },
  { adapter: "swiftshader", variant: "subgroup4" },
  { adapter: "swiftshader", variant: "subgroup4k4" },
] as const;

let seed = 4100;

describe.each(DRIVERS)("implicit-GEMM convolution on $adapter, $variant", ({ adapter, variant }) => {
  let engine: Engine | undefined;
  const get = async () => (engine ??= await Engine.create({ adapter, matmul: variant, poisonOutputs: true, vectors: true }));
  afterAll(() => engine?.dispose());

  for (const c of CASES) {
    it(`B${c.B} ${c.H}×${c.W}×${c.C} → ${c.F}, ${c.KH}×${c.KW} s${c.SH}×${c.SW} ${c.padding}, ${c.act}${c.bias ? "" : ", no bias"}`, async () => {
      const e = await get();
      const g = { B: c.B, H: c.H, W: c.W, C: c.C, KH: c.KH, KW: c.KW, SH: c.SH, SW: c.SW, padding: c.padding };
      const p = planWindow(g, "test");
      const [R, KC] = [c.B * p.OH * p.OW, c.KH * c.KW * c.C];
      expect(K.implicitConvFits(e, c.F)).toBe(true);
      const [x, w, b, dz, prior] = [randomArray(c.B * c.H * c.W * c.C, seed++), randomArray(KC * c.F, seed++), randomArray(c.F, seed++), randomArray(R * c.F, seed++), randomArray(KC * c.F, seed++)];
      const [xt, wt, bt, dzt] = [e.tensor(x, [x.length]), e.tensor(w, [w.length]), e.tensor(b, [c.F]), e.tensor(dz, [dz.length])];
      const y = e.empty([R * c.F]);
      await e.run([await CG.convGemm(e, xt.buffer, wt.buffer, y.buffer, p, c.F, { bias: c.bias ? bt.buffer : undefined, act: c.act })]);
      expectRelClose(await y.read(), ref.conv2d(x, w, c.bias ? b : null, g, c.F, c.act), 1e-4, "y");

      // The filter gradient in one pass, and split into chunks of output pixels that start and end
      // inside rows (in 7, the 4×4 case has a chunk that starts inside an image's last row).
      const dwRef = ref.matmul(ref.im2col(x, g), dz, KC, c.F, R, true, false);
      for (const split of [1, 3, 7]) {
        const dw = e.empty([KC * c.F]);
        const partials = e.empty([split * KC * c.F]);
        await e.run(await CG.convGemmDw(e, xt.buffer, dzt.buffer, dw.buffer, partials.buffer, p, c.F, split));
        expectRelClose(await dw.read(), dwRef, 1e-4, `dW in ${split}`);
      }
      // Added to a gradient already there (a kernel shared by two layers).
      const acc = e.tensor(prior, [prior.length]);
      await e.run(await CG.convGemmDw(e, xt.buffer, dzt.buffer, acc.buffer, e.kernels.placeholderOut, p, c.F, 1, true));
      expectRelClose(await acc.read(), dwRef.map((v, i) => v + prior[i]!), 1e-4, "dW accumulated");

      // dX at stride 1 with C a multiple of 4: the forward product of dz with the flipped filters,
      // written, then added to a gradient already there.
      if (c.SH === 1 && c.SW === 1 && c.C % 4 === 0) {
        const dxRef = ref.col2im(ref.matmul(dz, w, R, KC, c.F, false, true), g);
        const flipped = e.empty([KC * c.F]);
        const dxPrior = randomArray(dxRef.length, seed++);
        const [dx, dxAcc] = [e.empty([dxRef.length]), e.tensor(dxPrior, [dxRef.length])];
        await e.run([await CG.flipFilters(e, wt.buffer, flipped.buffer, p, c.F), await CG.convGemmDx(e, dzt.buffer, flipped.buffer, dx.buffer, p, c.F), await CG.convGemmDx(e, dzt.buffer, flipped.buffer, dxAcc.buffer, p, c.F, true)]);
        expectRelClose(await dx.read(), dxRef, 1e-4, "dX");
        expectRelClose(await dxAcc.read(), dxRef.map((v, i) => v + dxPrior[i]!), 1e-4, "dX accumulated");
      }
    });
  }
});

describe("where the planner reads a convolution's columns from its input", () => {
  const ctx = (matmulVariant: K.MatmulVariant, vec4 = true) => ({ matmulVariant, vec4 }) as K.KernelContext;
  const kinds = (inputs: SymbolicTensor[], out: SymbolicTensor, c: K.KernelContext) => fuseConvGemm(fuseConvPool(topologicalNodes(inputs, [out]), [out], 8), c).map((n) => n.kind);

  it("each convolution becomes one node writing the product's output, beside the fused first layer and its pooling", () => {
    const x = Input({ shape: [20, 20, 1] });
    const a = MaxPooling2D({ poolSize: 2 }).apply(Conv2D({ filters: 8, kernelSize: 3, activation: "relu" }).apply(x));
    const b = Conv2D({ filters: 8, kernelSize: 3, strides: 2, padding: "same", activation: "relu" }).apply(a);
    const out = Dense({ units: 10 }).apply(Flatten().apply(b));
    const nodes = fuseConvGemm(fuseConvPool(topologicalNodes([x], [out]), [out], 8), ctx("subgroup4k4"));
    expect(nodes.map((n) => n.kind)).toEqual(["convPool", "convGemm", "reshape", "matmul"]);
    expect(nodes[1]!.output).toBe(b);
    expect(nodes[1]!.inputs[0]).toBe(a);
  });

  it("only with a subgroup matmul and the vec4 kernels, and filters a multiple of 4", () => {
    const x = Input({ shape: [12, 12, 3] });
    const y = GlobalAveragePooling2D().apply(Conv2D({ filters: 8, kernelSize: 3 }).apply(x));
    expect(kinds([x], y, ctx("subgroup8"))).toEqual(["convGemm", "globalAvgPool"]);
    expect(kinds([x], y, ctx("tiled"))).toEqual(["im2col", "matmul", "globalAvgPool"]);
    expect(kinds([x], y, ctx("direct"))).toEqual(["im2col", "matmul", "globalAvgPool"]);
    expect(kinds([x], y, ctx("subgroup4", false))).toEqual(["im2col", "matmul", "globalAvgPool"]);
    const odd = GlobalAveragePooling2D().apply(Conv2D({ filters: 6, kernelSize: 3 }).apply(x));
    expect(kinds([x], odd, ctx("subgroup8"))).toEqual(["im2col", "matmul", "globalAvgPool"]);
  });
});

describe("a network trained with the implicit-GEMM convolutions and without them", () => {
  it("ends an epoch at the same weights, predicts the same, and keeps no columns between its passes", async () => {
    // Strided and padded 3×3 convolutions whose inputs need gradients (so dX runs), a 1×1 projection,
    // BatchNorm, a residual sum; 40 examples at batch 16 (a short last batch).
    const build = () => {
      const x = Input({ shape: [16, 16, 2] });
      const a = Conv2D({ filters: 8, kernelSize: 3, padding: "same", activation: "relu" }).apply(x);
      const b = BatchNormalization().apply(Conv2D({ filters: 12, kernelSize: 3, strides: 2, padding: "same", useBias: false }).apply(a));
      const proj = Conv2D({ filters: 12, kernelSize: 1, strides: 2, padding: "same" }).apply(a);
      const c = Conv2D({ filters: 8, kernelSize: 3, activation: "tanh" }).apply(Add().apply([b, proj]));
      return new Model({ inputs: x, outputs: Dense({ units: 5, activation: "softmax" }).apply(Flatten().apply(c)) });
    };
    const n = 40;
    const x = Float32Array.from(randomArray(n * 16 * 16 * 2, 91, 0, 1));
    const y = Array.from({ length: n }, (_, i) => (i * 7) % 5);
    const run = async (fusion: boolean) => {
      const engine = await Engine.create({ adapter: "swiftshader", matmul: "subgroup4k4", poisonOutputs: true, vectors: true, fusion });
      const model = build();
      await model.compile({ optimizer: { type: "sgd", learningRate: 0.05, momentum: 0.9 }, loss: "sparseCategoricalCrossentropy", seed: 3, engine });
      const { history } = await model.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false });
      const weights = await model.getWeights();
      const predictions = await model.predict(x.subarray(0, 6 * 512), { batchSize: 4 });
      const memory = await model.memory(16);
      model.dispose();
      engine.dispose();
      return { loss: history.loss, weights, predictions, memory };
    };
    const fused = await run(true);
    const plain = await run(false);
    for (let i = 0; i < 2; i++) expect(fused.loss[i]).toBeCloseTo(plain.loss[i]!, 4);
    for (const [i, w] of fused.weights.entries()) expectRelClose(w.data, plain.weights[i]!.data, 1e-3, w.name);
    expectRelClose(fused.predictions, plain.predictions, 1e-3, "predictions");
    expect(fused.loss[1]).toBeLessThan(fused.loss[0]!);
    // The columns (9× a layer's input) were kept from the forward pass to the backward one; now a
    // layer's backward pass needs them for a moment at most.
    expect(fused.memory.peakBytes).toBeLessThan(plain.memory.peakBytes);
  }, 120_000);
});
