// What the engine does when things go wrong: device loss during fit, divergence, adapter limits,
// bad input, long runs, determinism.
import { afterAll, describe, expect, it } from "vitest";
import { loadMnist, subset } from "../src/data/mnist.ts";
import { Engine } from "../src/engine.ts";
import { ConfigError, Conv2D, DataError, Dense, DivergenceError, Flatten, GlobalAveragePooling2D, GpuError, Layer, Sequential, ShapeError } from "../src/index.ts";
import * as ops from "../src/entry/ops.ts";
import * as K from "../src/kernels.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, freshEngine, gpuEngine } from "./gpu_helpers.ts";

let engine: Engine | undefined;
afterAll(() => engine?.dispose());


/** Counts the device's live buffers (created minus destroyed) until restore(). */
function countBuffers(device: GPUDevice): { readonly live: number; restore(): void } {
  let live = 0;
  const { createBuffer } = device;
  device.createBuffer = function (d: GPUBufferDescriptor) {
    live++;
    const b = createBuffer.call(this, d);
    const destroy = b.destroy.bind(b);
    b.destroy = () => {
      live--;
      destroy();
    };
    return b;
  };
  return {
    get live() {
      return live;
    },
    restore: () => void (device.createBuffer = createBuffer),
  };
}

const mlp = () => new Sequential([Flatten({ inputShape: [28, 28, 1] }), Dense({ units: 32, activation: "relu" }), Dense({ units: 10, activation: "softmax" })]);

describe("device loss during fit", () => {
  it("continues on a new device from the last snapshot, reports it, and ends where an uninterrupted run ends", async () => {
    const mnist = await loadMnist();
    const train = subset(mnist.train, 2000);
    const test = subset(mnist.test, 500);
    engine ??= await gpuEngine();
    const baseline = mlp();
    await baseline.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy", engine, seed: 2 });
    const baselineHistory = await baseline.fit(train.images, train.labels, { epochs: 2, batchSize: 50 });
    const expected = await baseline.getWeights();
    baseline.dispose();
    const model = mlp();
    const own = await freshEngine();
    await model.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy", engine: own, seed: 2 });
    const events: { lostAt: { t: number }; resumedFrom: { t: number } }[] = [];
    let destroyed = false;
    const history = await model.fit(train.images, train.labels, {
      epochs: 2,
      batchSize: 50,
      recoverySnapshotEvery: 10,
      callbacks: {
        onBatchEnd: (b, logs) => {
          if (logs.epoch === 1 && b === 25 && !destroyed) {
            destroyed = true;
            own.device.destroy();
          }
        },
        onDeviceLost: (info) => void events.push(info),
      },
    });
    expect(destroyed).toBe(true);
    expect(events).toHaveLength(1);
    expect(events[0]!.resumedFrom.t).toBeLessThanOrEqual(events[0]!.lostAt.t);
    expect(events[0]!.resumedFrom.t).toBeGreaterThanOrEqual(60); // snapshots every 10 steps, lost at step ~66
    expect(model.engine).not.toBe(own);
    expect(history.history.loss).toHaveLength(2);
    expect(model.step).toBe(80); // every step of both epochs ran, none twice in the count
    // Weights, optimizer state, metrics, visiting order and step count all came back: the run ends
    // bitwise where the uninterrupted one did, with the same reported loss.
    const weights = await model.getWeights();
    for (let i = 0; i < weights.length; i++) expect(Buffer.from(weights[i]!.data.buffer).equals(Buffer.from(expected[i]!.data.buffer))).toBe(true);
    expect(history.history.loss).toEqual(baselineHistory.history.loss);
    const result = await model.evaluate(test.images, test.labels);
    expect(result.accuracy!).toBeGreaterThan(0.7);
    const own2 = model.engine;
    model.dispose();
    own2.dispose();
  });
});

describe("divergence", () => {
  it("with stopOnNonFinite, a non-finite loss stops fit with an error naming the first bad layer", async () => {
    engine ??= await gpuEngine();
    const model = new Sequential([Dense({ units: 8, activation: "linear", inputShape: [4], name: "first" }), Dense({ units: 2, activation: "linear", name: "second" })]);
    await model.compile({ optimizer: { type: "sgd", learningRate: 1e30 }, loss: "meanSquaredError", engine });
    const x = Float32Array.from(randomArray(64 * 4, 3, -100, 100));
    const y = Array.from(randomArray(64 * 2, 4));
    const err = await model.fit(x, y, { epochs: 3, batchSize: 8, stopOnNonFinite: true, snapshotsPerEpoch: 8 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DivergenceError);
    expect((err as Error).message).toMatch(/training diverged at step \d+: layer first/);
    model.dispose();
  });
});

describe("adapter limits and bad input", () => {
  it("element-wise work beyond 65535 workgroups is split over a 2-D grid and stays right", async () => {
    engine ??= await gpuEngine();
    const n = 65535 * 64 + 4099;
    const x = randomArray(n, 5, -2, 2);
    const y = await ops.relu(engine.tensor(x, [n]));
    const v = await y.read();
    expectRelClose(v, x.map((a) => Math.max(a, 0)), 1e-6, "relu");
  });

  it("a buffer larger than maxStorageBufferBindingSize is refused before allocating", async () => {
    engine ??= await gpuEngine();
    const max = engine.device.limits.maxStorageBufferBindingSize;
    expect(() => engine!.empty([max / 4 + 1024])).toThrow(/exceeds this adapter's maxStorageBufferBindingSize/);
  });

  it("tensor data that does not match its shape, and NaN on upload when checking is on", async () => {
    engine ??= await gpuEngine();
    expect(() => engine!.tensor([1, 2, 3], [2, 2])).toThrow(/data has 3 elements but shape \[2, 2\] needs 4/);
    expect(() => engine!.tensor([1, 2], [2, 0])).toThrow(ShapeError);
    const strict = await Engine.create({ checkFinite: true });
    expect(() => strict.tensor([1, Infinity], [2])).toThrow(/element 1 is Infinity/);
    expect(() => strict.tensor([-1], [1], "u32")).toThrow(DataError);
    strict.dispose();
  });

  it("an unknown layer kind is refused, naming the known ones", () => {
    expect(() => new Layer("lstm" as never, {} as never, { inputShape: [3] })).toThrow(ConfigError);
    expect(() => new Layer("lstm" as never, {} as never, { inputShape: [3] })).toThrow(/unknown layer kind "lstm"; known: conv2d/);
  });

  it("a GPU validation error is captured with the label of the op that caused it", async () => {
    engine ??= await gpuEngine();
    const a = engine.tensor(randomArray(16, 6), [4, 4]);
    // Writing the result into an input is a writable-aliasing validation error.
    const bad = await K.matmul(engine, a.buffer, a.buffer, a.buffer, { M: 4, N: 4, K: 4 }, "aliased matmul");
    const err = await engine.run([bad]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as Error).message).toMatch(/^aliased matmul: GPU validation error: /);
  });
});

describe("stopping early", () => {
  it("model.stopTraining set in a callback ends fit after that step, with a history for the epoch", async () => {
    engine ??= await gpuEngine();
    const model = new Sequential([Dense({ units: 4, activation: "relu", inputShape: [3] }), Dense({ units: 2, activation: "softmax" })]);
    await model.compile({ loss: "sparseCategoricalCrossentropy", engine });
    const x = Float32Array.from(randomArray(40 * 3, 8));
    const y = Array.from({ length: 40 }, (_, i) => i % 2);
    const history = await model.fit(x, y, { epochs: 5, batchSize: 4, callbacks: { onBatchEnd: (b) => void (b === 3 && (model.stopTraining = true)) } });
    expect(model.step).toBe(4);
    expect(history.history.loss).toHaveLength(1);
    await model.fit(x, y, { epochs: 1, batchSize: 4 }); // a new fit starts afresh
    expect(model.step).toBe(14);
    model.dispose();
  });
});

describe("long runs and determinism", () => {
  it("2,000 steps with a constant number of live GPU buffers and no JS heap growth", async () => {
    engine ??= await gpuEngine();
    const buffers = countBuffers(engine.device);
    try {
      const model = new Sequential([Dense({ units: 16, activation: "tanh", inputShape: [8] }), Dense({ units: 3, activation: "softmax" })]);
      await model.compile({ loss: "sparseCategoricalCrossentropy", engine });
      const x = Float32Array.from(randomArray(400 * 8, 7));
      const y = Array.from({ length: 400 }, (_, i) => i % 3);
      const gc = (globalThis as { gc?: () => void }).gc!;
      const samples: { step: number; live: number; heap: number }[] = [];
      await model.fit(x, y, {
        epochs: 40,
        batchSize: 8,
        callbacks: {
          onBatchEnd: (b, logs) => {
            const step = logs.epoch * 50 + b + 1;
            if (step === 2 || step === 400 || step === 2000) {
              gc();
              samples.push({ step, live: buffers.live, heap: process.memoryUsage().heapUsed });
            }
          },
        },
      });
      expect(model.step).toBe(2000);
      expect(samples.map((s) => s.live)).toEqual([samples[0]!.live, samples[0]!.live, samples[0]!.live]);
      // The heap settles after warm-up; from step 400 to 2,000 it must not grow by more than 1 MiB.
      expect(samples[2]!.heap - samples[1]!.heap).toBeLessThan(1 << 20);
      model.dispose();
    } finally {
      buffers.restore();
    }
  });

  it("eager optimizer steps (ops.sgdStep, ops.adamStep) free what they allocate", async () => {
    engine ??= await gpuEngine();
    const buffers = countBuffers(engine.device);
    try {
      const t = () => engine!.tensor(randomArray(33, 5), [33]);
      const [w, g, m, v] = [t(), t(), t(), t()];
      const before = buffers.live;
      for (let step = 1; step <= 20; step++) {
        await ops.sgdStep(w, g, m, { lr: 0.1, momentum: 0.5 });
        await ops.adamStep(w, g, m, v, { lr: 0.01, step });
      }
      expect(buffers.live).toBe(before);
      for (const x of [w, g, m, v]) x.dispose();
    } finally {
      buffers.restore();
    }
  });

  it("a wide convolution (256 filters, 3×3, on 16×16×256) trains at batch 2: split-K scratch is sized by the splits used", async () => {
    engine ??= await gpuEngine();
    const model = new Sequential([Conv2D({ filters: 256, kernelSize: 3, inputShape: [16, 16, 256] }), GlobalAveragePooling2D(), Dense({ units: 2, activation: "softmax" })]);
    await model.compile({ loss: "sparseCategoricalCrossentropy", engine });
    const history = await model.fit(Float32Array.from(randomArray(2 * 16 * 16 * 256, 8)), [0, 1], { epochs: 1, batchSize: 2 });
    expect(Number.isFinite(history.history.loss![0])).toBe(true);
    const mem = await model.memory(2);
    expect(mem.peakBytes).toBeLessThan(mem.unpackedBytes);
    model.dispose();
  });

  it("the same seed on the same adapter gives bitwise-identical weights after 50 steps", async () => {
    engine ??= await gpuEngine();
    const mnist = await loadMnist();
    const train = subset(mnist.train, 800);
    const run = async () => {
      const model = mlp();
      await model.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy", engine, seed: 9 });
      await model.fit(train.images, train.labels, { epochs: 2, batchSize: 32 });
      expect(model.step).toBe(50);
      const w = await model.getWeights();
      model.dispose();
      return w;
    };
    const [a, b] = [await run(), await run()];
    for (let i = 0; i < a.length; i++) expect(Buffer.from(a[i]!.data.buffer).equals(Buffer.from(b[i]!.data.buffer))).toBe(true);
    // and a different seed gives different weights, so the comparison can fail
    const model = mlp();
    await model.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy", engine, seed: 10 });
    expect(Buffer.from((await model.getWeights())[0]!.data.buffer).equals(Buffer.from(a[0]!.data.buffer))).toBe(false);
    model.dispose();
  });
});
