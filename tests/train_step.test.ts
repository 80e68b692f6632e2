// One training step on the GPU against a float64 CPU reference, from identical weights and batch:
// the reference CNN with softmax cross-entropy, MLPs with MSE (with and without biases), soft-target
// cross-entropy and binary cross-entropy.
import { afterAll, describe, expect, it } from "vitest";
import { Dense, Sequential } from "../src/index.ts";
import { referenceCnn } from "../src/entry/models.ts";
import { Engine } from "../src/engine.ts";
import type { LossName, OptimizerConfig } from "../src/model/model.ts";
import * as ref from "./reference/cpu.ts";
import { referenceGradients, type RefLayer } from "./reference/model_step.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

// Every kernel set: the vec4 twins of the bias gradients and the optimizers (EngineOptions.vectors), the
// scalar kernels (the default), and each layer's own kernels where the planner would fuse (the reference
// CNN's convolution and pooling, EngineOptions.fusion).
const engines: Record<string, Promise<Engine>> = {};
const engineFor = (vectors: boolean, fusion: boolean) =>
  (engines[`${vectors} ${fusion}`] ??= vectors && fusion ? gpuEngine() : Engine.create({ poisonOutputs: true, vectors, fusion }));
afterAll(async () => {
  for (const e of Object.values(engines)) (await e).dispose();
});

interface Case {
  name: string;
  model: () => Sequential;
  refLayers: RefLayer[];
  inputShape: number[];
  loss: LossName;
  /** L2 coefficient on every kernel. */
  l2?: number;
  y: (B: number, K: number) => number[];
}

const B = 6;
const cases: Case[] = [
  {
    name: "reference CNN, sparse categorical cross-entropy",
    model: referenceCnn,
    refLayers: [{ kind: "conv2d", filters: 32, k: 3, act: "relu" }, { kind: "maxPool", p: 2 }, { kind: "flatten" }, { kind: "dense", units: 128, act: "relu" }, { kind: "dense", units: 10, act: "softmax" }],
    inputShape: [28, 28, 1],
    loss: "sparseCategoricalCrossentropy",
    y: (n) => Array.from({ length: n }, (_, i) => (i * 7) % 10),
  },
  {
    name: "MLP, mean squared error",
    model: () => new Sequential([Dense({ units: 13, activation: "tanh", inputShape: [7] }), Dense({ units: 3, activation: "linear" })]),
    refLayers: [{ kind: "dense", units: 13, act: "tanh" }, { kind: "dense", units: 3, act: "linear" }],
    inputShape: [7],
    loss: "meanSquaredError",
    y: (n, k) => Array.from(randomArray(n * k, 99)),
  },
  {
    name: "MLP with L2 kernel regularisation, categorical cross-entropy on soft targets",
    model: () =>
      new Sequential([
        Dense({ units: 9, activation: "sigmoid", inputShape: [6], kernelRegularizer: { l2: 0.05 } }),
        Dense({ units: 5, activation: "softmax", kernelRegularizer: { l2: 0.05 } }),
      ]),
    refLayers: [{ kind: "dense", units: 9, act: "sigmoid" }, { kind: "dense", units: 5, act: "softmax" }],
    inputShape: [6],
    loss: "categoricalCrossentropy",
    l2: 0.05,
    y: (n, k) => Array.from({ length: n * k }, (_, i) => ((i % k) + 1) / ((k * (k + 1)) / 2)),
  },
  {
    // Without biases: the relu layer's backward writes dz only; the linear one needs no pass at all.
    name: "MLP without biases, mean squared error",
    model: () => new Sequential([Dense({ units: 8, activation: "relu", useBias: false, inputShape: [5] }), Dense({ units: 3, activation: "linear", useBias: false })]),
    refLayers: [{ kind: "dense", units: 8, act: "relu", bias: false }, { kind: "dense", units: 3, act: "linear", bias: false }],
    inputShape: [5],
    loss: "meanSquaredError",
    y: (n, k) => Array.from(randomArray(n * k, 98)),
  },
  {
    name: "MLP, binary cross-entropy",
    model: () => new Sequential([Dense({ units: 11, activation: "relu", inputShape: [5] }), Dense({ units: 4, activation: "sigmoid" })]),
    refLayers: [{ kind: "dense", units: 11, act: "relu" }, { kind: "dense", units: 4, act: "sigmoid" }],
    inputShape: [5],
    loss: "binaryCrossentropy",
    y: (n, k) => Array.from({ length: n * k }, (_, i) => (i % 3 === 0 ? 1 : 0)),
  },
];

const optimizers: [string, OptimizerConfig][] = [
  ["SGD with momentum", { type: "sgd", learningRate: 0.5, momentum: 0.9 }],
  // Adam's first step is g/(|g| + ε) · lr: with ε = 1e-7, gradients near 1e-7 turn float32 rounding
  // into visible differences, so the test uses ε = 1e-3 (the kernel is the same).
  ["Adam", { type: "adam", learningRate: 0.01, epsilon: 1e-3 }],
];

describe.each([
  [true, true],
  [false, true],
  [false, false],
])("one training step: GPU vs float64 reference (vec4 kernels: %s, fusion: %s)", (vectors, fusion) => {
  for (const c of cases) {
    for (const [optName, optimizer] of optimizers) {
      it(`${c.name}, ${optName}`, async () => {
        const engine = await engineFor(vectors, fusion);
        expect(engine.vec4).toBe(vectors);
        expect(engine.fusion).toBe(fusion);
        const model = c.model();
        await model.compile({ optimizer, loss: c.loss, seed: 3, engine });
        const before = await model.getWeights();
        const inSize = c.inputShape.reduce((a, b) => a * b, 1);
        const x = Float32Array.from(randomArray(B * inSize, 11, 0, 1));
        const K = before[before.length - 1]!.shape.at(-1)!; // the last layer's units (bias [N] or kernel [IN, N])
        const y = c.y(B, K);
        await model.fit(x, y, { epochs: 1, batchSize: B, shuffle: false });
        const after = await model.getWeights();

        const params = before.map((w) => Float64Array.from(w.data));
        const grads = referenceGradients({ layers: c.refLayers, inputShape: c.inputShape, loss: c.loss, params, x, y, B });
        for (let i = 0; i < params.length; i++) {
          const w = params[i]!;
          // d(l2·Σw²)/dw = 2·l2·w on kernels (even indices: kernel, bias, kernel, bias, ...)
          const g = c.l2 && i % 2 === 0 ? grads[i]!.map((gi, j) => gi + 2 * c.l2! * w[j]!) : grads[i]!;
          if (optimizer === "adam" || (typeof optimizer === "object" && optimizer.type === "adam")) {
            ref.adamUpdate(w, g, new Float64Array(w.length), new Float64Array(w.length), 0.01, 0.9, 0.999, 1e-3, 1);
          } else ref.sgdUpdate(w, g, new Float64Array(w.length), 0.5, 0.9);
          expectRelClose(after[i]!.data, w, 1e-4, `${after[i]!.name} after the step`);
          // The change itself must match too, so a step that did nothing cannot pass.
          const dGpu = after[i]!.data.map((v, j) => v - before[i]!.data[j]!);
          const dRef = w.map((v, j) => v - before[i]!.data[j]!);
          expect(dRef.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeGreaterThan(1e-4);
          expectRelClose(dGpu, dRef, 2e-2, `${after[i]!.name} update`);
        }
        model.dispose();
      });
    }
  }
});
