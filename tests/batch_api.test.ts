// trainOnBatch, testOnBatch, predictOnBatch: the same steps as fit/evaluate/predict, one submit per call,
// no GPU allocation once warm, a readback only when a result is awaited, recovery snapshots on the model's
// step schedule (not per call), and device loss answered by a restore to the last snapshot.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMnist, subset, type MnistSplit } from "../src/data/mnist.ts";
import { Engine } from "../src/engine.ts";
import { ConfigError, DataError, GpuError, ShapeError } from "../src/errors.ts";
import { Dense, Dropout, Flatten, Sequential } from "../src/index.ts";
import { BufferUsage } from "../src/gpu/flags.ts";
import { freshEngine, gpuEngine } from "./gpu_helpers.ts";

const B = 32;
const STEPS = 12;
let train: MnistSplit;

const mlp = () => new Sequential([Flatten({ inputShape: [28, 28, 1] }), Dense({ units: 24, activation: "relu" }), Dropout({ rate: 0.25 }), Dense({ units: 10, activation: "softmax" })]);

async function compiled(engine?: Engine): Promise<Sequential> {
  const m = mlp();
  await m.compile({ optimizer: { type: "adam", learningRate: 1e-2 }, loss: "sparseCategoricalCrossentropy", engine: engine ?? (await gpuEngine()), seed: 11 });
  return m;
}

const xs = (i: number) => train.images.subarray(i * B * 784, (i + 1) * B * 784);
const ys = (i: number) => train.labels.subarray(i * B, (i + 1) * B);
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function expectSameWeights(a: Sequential, b: Sequential): Promise<void> {
  const [wa, wb] = [await a.getWeights(), await b.getWeights()];
  expect(wa.length).toBe(wb.length);
  for (const [i, w] of wa.entries()) expect(bits(w.data).equals(bits(wb[i]!.data)), `${w.name} differs`).toBe(true);
}

/** Counts createBuffer on a device, and mapAsync on every buffer (existing ones too), from now on. */
function countCalls(device: GPUDevice): { buffers: string[]; maps: string[]; stop(): void } {
  const out = { buffers: [] as string[], maps: [] as string[], stop: () => {} };
  const create = device.createBuffer.bind(device);
  const probe = create({ size: 4, usage: BufferUsage.COPY_DST });
  const proto = Object.getPrototypeOf(probe) as GPUBuffer;
  probe.destroy();
  const map = proto.mapAsync;
  proto.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer["mapAsync"]>) {
    out.maps.push(this.label);
    return map.apply(this, args);
  };
  device.createBuffer = (d: GPUBufferDescriptor) => {
    out.buffers.push(d.label ?? "");
    return create(d);
  };
  out.stop = () => {
    device.createBuffer = create;
    proto.mapAsync = map;
  };
  return out;
}

beforeAll(async () => {
  train = subset((await loadMnist()).train, B * STEPS);
});

afterAll(async () => (await gpuEngine()).dispose());

describe("per-batch calls do what fit, evaluate and predict do", () => {
  it("trainOnBatch over the batches in order ends bitwise where fit(shuffle: false) ends (dropout included)", async () => {
    const a = await compiled();
    const b = await compiled();
    await a.fit(train.images, train.labels, { batchSize: B, shuffle: false, epochs: 1 });
    const losses: number[] = [];
    for (let i = 0; i < STEPS; i++) losses.push((await b.trainOnBatch(xs(i), ys(i))).loss);
    expect(b.step).toBe(a.step);
    await expectSameWeights(a, b);
    // Learning, not just agreement: the loss falls over the batches (the first is at chance, ln 10 ≈ 2.3).
    const mean = (v: number[]) => v.reduce((p, q) => p + q, 0) / v.length;
    expect(losses[0]).toBeGreaterThan(1.8);
    expect(mean(losses.slice(-4))).toBeLessThan(mean(losses.slice(0, 2)) - 0.5);
    a.dispose();
    b.dispose();
  });

  it("calls made back to back without awaiting keep their order and each its own result", async () => {
    const a = await compiled();
    const b = await compiled();
    const awaited: number[] = [];
    for (let i = 0; i < STEPS; i++) awaited.push((await a.trainOnBatch(xs(i), ys(i))).loss);
    // One array reused for every batch: each call must take its batch when it is made.
    const x = new Uint8Array(B * 784);
    const y = new Uint8Array(B);
    const results = [];
    for (let i = 0; i < STEPS; i++) {
      x.set(xs(i));
      y.set(ys(i));
      results.push(b.trainOnBatch(x, y));
    }
    expect((await Promise.all(results)).map((r) => r.loss)).toEqual(awaited);
    await expectSameWeights(a, b);
    a.dispose();
    b.dispose();
  });

  it("testOnBatch gives evaluate()'s loss and accuracy on that batch; predictOnBatch gives predict()'s outputs", async () => {
    const m = await compiled();
    for (let i = 0; i < 3; i++) await m.trainOnBatch(xs(i), ys(i));
    const ev = await m.evaluate(xs(4), ys(4), { batchSize: B });
    const t = await m.testOnBatch(xs(4), ys(4));
    expect(t.loss).toBeCloseTo(ev.loss, 6);
    expect(t.accuracy).toBe(ev.accuracy);
    const p = await m.predict(xs(5), { batchSize: B });
    const q = await m.predictOnBatch(xs(5));
    expect(bits(q).equals(bits(p))).toBe(true);
    // A batch of another size gets its own plan and buffers.
    const odd = await m.predictOnBatch(xs(5).subarray(0, 7 * 784));
    expect(bits(odd).equals(bits(p.subarray(0, 70)))).toBe(true);
    m.dispose();
  });
});

describe("the cost of a warm call", () => {
  it("allocates no GPU buffer, submits before returning, and maps nothing unless awaited", async () => {
    const m = await compiled();
    await m.trainOnBatch(xs(0), ys(0));
    await m.trainOnBatch(xs(1), ys(1)); // warm
    const device = m.engine.device;
    const calls = countCalls(device);
    let submits = 0;
    const submit = device.queue.submit.bind(device.queue);
    device.queue.submit = (cbs: Iterable<GPUCommandBuffer>) => {
      submits++;
      submit(cbs);
    };
    const before = m.step;
    const pending = [];
    for (let i = 0; i < 4; i++) {
      pending.push(m.trainOnBatch(xs(i), ys(i)));
      expect(submits, "the step is submitted by the call itself").toBe(i + 1);
    }
    expect(m.step).toBe(before + 4);
    await device.queue.onSubmittedWorkDone();
    expect(calls.buffers).toEqual([]);
    expect(calls.maps).toEqual([]);
    // Awaiting one result reads it: one small copy and one map.
    const last = await pending[3]!;
    expect(Number.isFinite(last.loss)).toBe(true);
    expect(calls.maps).toHaveLength(1);
    device.queue.submit = submit;
    calls.stop();
    m.dispose();
  });

  it("takes recovery snapshots every recoverySnapshotEvery steps, never per call (and fit() below that takes none)", async () => {
    const m = await compiled();
    m.recoverySnapshotEvery = 4;
    const calls = countCalls(m.engine.device);
    for (let i = 0; i < 10; i++) await m.trainOnBatch(xs(i % STEPS), ys(i % STEPS));
    await m.engine.device.queue.onSubmittedWorkDone();
    const snapshots = () => calls.maps.filter((l) => l === "recovery snapshot staging").length;
    expect(snapshots()).toBe(2); // steps 4 and 8
    await m.fit(xs(0), ys(0), { batchSize: B }); // one step (11): below its recoverySnapshotEvery of 200
    expect(snapshots()).toBe(2);
    calls.stop();
    m.dispose();
  });
});

describe("device loss in per-batch training", () => {
  it("restores the last snapshot on a new device, says where training is, and training goes on from there", async () => {
    const own = await freshEngine();
    const m = await compiled(own);
    m.recoverySnapshotEvery = 3;
    for (let i = 0; i < 5; i++) await m.trainOnBatch(xs(i), ys(i));
    own.device.destroy();
    await own.device.lost;
    const err = await m.trainOnBatch(xs(5), ys(5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as Error).message).toMatch(/lost at training step 5.*snapshot, at step 3: train the 2 batches since then again/);
    expect(m.step).toBe(3);
    expect(m.engine).not.toBe(own);
    // The new engine has the lost one's options (vec4 kernels on, which llvmpipe's default is not), so
    // the same kernels train on.
    expect(m.engine.vec4).toBe(true);
    // Training again from step 3 ends where an uninterrupted run ends.
    for (let i = 3; i < STEPS; i++) await m.trainOnBatch(xs(i), ys(i));
    const ref = await compiled();
    for (let i = 0; i < STEPS; i++) await ref.trainOnBatch(xs(i), ys(i));
    await expectSameWeights(m, ref);
    const engine = m.engine;
    m.dispose();
    ref.dispose();
    engine.dispose();
  });

  it("a short fit() takes no snapshot of its own: a loss in it restores the model's last one and says so", async () => {
    const own = await freshEngine();
    const m = await compiled(own);
    m.recoverySnapshotEvery = 3;
    for (let i = 0; i < 4; i++) await m.trainOnBatch(xs(i), ys(i)); // a snapshot at step 3
    await own.device.queue.onSubmittedWorkDone();
    const err = await m
      .fit(train.images.subarray(0, 2 * B * 784), train.labels.subarray(0, 2 * B), { batchSize: B, callbacks: { onBatchEnd: () => own.device.destroy() } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as Error).message).toMatch(/lost at step [56] in fit\(\).*at step 3, taken before this fit\(\) began/);
    expect(m.step).toBe(3);
    const ref = await compiled();
    for (let i = 0; i < 3; i++) await ref.trainOnBatch(xs(i), ys(i));
    await expectSameWeights(m, ref);
    const engine = m.engine;
    m.dispose();
    ref.dispose();
    engine.dispose();
  });

  it("with no snapshot yet, says that nothing can be resumed", async () => {
    const own = await freshEngine();
    const m = await compiled(own);
    await m.trainOnBatch(xs(0), ys(0));
    own.device.destroy();
    await own.device.lost;
    await expect(m.trainOnBatch(xs(1), ys(1))).rejects.toThrow(/before the first recovery snapshot landed/);
    m.dispose();
  });

  it("a failed call nobody awaited is no unhandled rejection; the next call reports it", async () => {
    const unhandled: unknown[] = [];
    const collect = (r: unknown) => void unhandled.push(r);
    process.on("unhandledRejection", collect);
    try {
      const own = await freshEngine();
      const m = await compiled(own);
      await m.trainOnBatch(xs(0), ys(0));
      own.device.destroy();
      await own.device.lost;
      void m.trainOnBatch(xs(1), ys(1)); // queued (the device is lost), fails, and nobody awaits it
      await new Promise((r) => setTimeout(r, 300));
      expect(unhandled).toEqual([]);
      const next = m.predictOnBatch(xs(2));
      await expect(next).rejects.toThrow(/before the first recovery snapshot landed/);
      m.dispose();
    } finally {
      process.off("unhandledRejection", collect);
    }
  });
});

describe("bad per-batch calls", () => {
  it("are refused with errors that say what is wrong", async () => {
    const m = await compiled();
    await expect(m.trainOnBatch(new Float32Array(100), ys(0))).rejects.toThrow(ShapeError);
    await expect(m.trainOnBatch(xs(0), new Uint8Array(B).fill(10))).rejects.toThrow(/label 0 is 10; labels must be integers in 0..9/);
    await expect(m.trainOnBatch(xs(0), ys(0).subarray(1))).rejects.toThrow(/32 examples but its labels have 31/);
    await expect(m.trainOnBatch(xs(0), undefined)).rejects.toThrow(DataError);
    await expect(m.trainOnBatch(new Float32Array(784).fill(NaN), [1])).rejects.toThrow(/inputs must be finite/);
    await expect(m.testOnBatch(xs(0), ys(0), { inputScale: NaN })).rejects.toThrow(/inputScale/);
    await expect(m.predictOnBatch("pixels")).rejects.toThrow(/Float32Array or a Uint8Array/);
    await expect(m.trainOnBatch(xs(0), ys(0), { batchSize: 8 } as never)).rejects.toThrow(ConfigError);
    const fitting = m.fit(train.images, train.labels, { batchSize: B });
    await expect(m.trainOnBatch(xs(0), ys(0))).rejects.toThrow(/while fit\(\) is running/);
    await fitting;
    const queued = m.trainOnBatch(xs(0).subarray(0, 5 * 784), ys(0).subarray(0, 5)); // a new size: queued while its plan builds
    await expect(m.fit(xs(0), ys(0))).rejects.toThrow(/per-batch calls are still queued/);
    await queued;
    m.dispose();
    await expect(m.trainOnBatch(xs(0), ys(0))).rejects.toThrow(/disposed/);
  });
});

describe("kernelTimes", () => {
  it("times every kernel of a step and leaves training exactly as it was (BatchNorm statistics included)", async () => {
    const { BatchNormalization, Conv2D, Flatten: F, Dense: D, Sequential: S } = await import("../src/index.ts");
    const net = () => new S([Conv2D({ filters: 4, kernelSize: 3, activation: "relu", inputShape: [28, 28, 1] }), BatchNormalization(), F(), D({ units: 10, activation: "softmax" })]);
    const make = async () => {
      const m = net();
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: await gpuEngine(), seed: 9 });
      return m;
    };
    const [a, b] = [await make(), await make()];
    for (let i = 0; i < 3; i++) {
      await a.trainOnBatch(xs(i), ys(i));
      await b.trainOnBatch(xs(i), ys(i));
    }
    const times = await b.kernelTimes(B);
    if (b.engine.device.features.has("timestamp-query")) {
      const plan = await b.plan(B);
      expect(times!.map((t) => t.label)).toEqual([...plan.forward, plan.loss, ...plan.backward].map((d) => d.label));
      for (const t of times!) expect(t.ms).toBeGreaterThanOrEqual(0);
    } else expect(times).toBeUndefined();
    for (let i = 3; i < 6; i++) {
      await a.trainOnBatch(xs(i), ys(i));
      await b.trainOnBatch(xs(i), ys(i));
    }
    await expectSameWeights(a, b); // moving statistics are among the weights
    await expect(b.kernelTimes(0)).rejects.toThrow(/batchSize/);
    a.dispose();
    b.dispose();
  });
});
