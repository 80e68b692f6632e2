// Device loss injected at every kind of position in fit (each step kind, each callback, a snapshot in
// flight): training completes once, on a new device, bitwise where an uninterrupted run ends.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMnist, subset, type MnistSplit } from "../src/data/mnist.ts";
import { Dense, Flatten, Sequential, type Callbacks, type History } from "../src/index.ts";
import type { NamedWeight } from "../src/plan/weights.ts";
import { freshEngine, gpuEngine } from "./gpu_helpers.ts";

const EPOCHS = 3;
const BATCH = 40;
const EXAMPLES = 240; // 6 steps per epoch, 18 in all
const STEPS = EXAMPLES / BATCH;
const EVERY = 4; // snapshots at t = 4, 8, 12 (the last step of epoch 1), 16

const mlp = () => new Sequential([Flatten({ inputShape: [28, 28, 1] }), Dense({ units: 16, activation: "relu" }), Dense({ units: 10, activation: "softmax" })]);

let train: MnistSplit;
let baseline: { history: History; weights: NamedWeight[]; step: number };
const unhandled: unknown[] = [];
const collect = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  process.on("unhandledRejection", collect);
  train = subset((await loadMnist()).train, EXAMPLES);
  const engine = await gpuEngine();
  const model = mlp();
  await model.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy", engine, seed: 5 });
  const history = await model.fit(train.images, train.labels, { epochs: EPOCHS, batchSize: BATCH });
  baseline = { history, weights: await model.getWeights(), step: model.step };
  model.dispose();
});

afterAll(async () => {
  process.off("unhandledRejection", collect);
  (await gpuEngine()).dispose();
});

/** Where the loss is injected: `lose` is called at one place in the run and destroys the device there. */
interface Position {
  name: string;
  inject(lose: () => void, model: Sequential, device: GPUDevice): Callbacks;
}

/**
 * Holds back the landing of the second recovery snapshot (t = EVERY, mid-epoch 0) until epoch 1 has
 * begun, then loses the device in epoch 1 once it has landed: the snapshot must hold the history and
 * visiting order of its own step, not what they became by the time its copy was mapped.
 */
function lateSnapshot(lose: () => void, _model: Sequential, device: GPUDevice): Callbacks {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let landed!: Promise<unknown>;
  let maps = 0;
  const createBuffer = device.createBuffer.bind(device);
  device.createBuffer = (d: GPUBufferDescriptor) => {
    const b = createBuffer(d);
    if (d.label !== "recovery snapshot staging") return b;
    const mapAsync = b.mapAsync.bind(b);
    b.mapAsync = (...args: Parameters<GPUBuffer["mapAsync"]>) => {
      if (++maps !== 2) return mapAsync(...args);
      landed = gate.then(() => mapAsync(...args));
      return landed as Promise<undefined>;
    };
    return b;
  };
  return {
    onEpochBegin: (e) => void (e === 1 && open()),
    onBatchEnd: async (b, logs) => {
      if (logs.epoch !== 1 || b !== 3) return;
      expect(maps).toBe(2);
      await landed;
      await new Promise((r) => setTimeout(r, 0));
      lose();
    },
  };
}

const atBatch = (epoch: number, batch: number) => (lose: () => void) => ({ onBatchEnd: (b: number, logs: { epoch: number }) => void (logs.epoch === epoch && b === batch && lose()) });

const POSITIONS: Position[] = [
  { name: "the first step of the first epoch (only the snapshot taken at the start of fit exists)", inject: atBatch(0, 0) },
  { name: "mid-epoch", inject: atBatch(1, 2) },
  { name: "the last step of an epoch", inject: atBatch(0, STEPS - 1) },
  { name: "the last step of an epoch on which a snapshot is taken", inject: atBatch(1, STEPS - 1) },
  { name: "the first step of the next epoch", inject: atBatch(1, 0) },
  { name: "the first step after an epoch whose last step took a snapshot", inject: atBatch(2, 0) },
  { name: "the last step of the last epoch", inject: atBatch(EPOCHS - 1, STEPS - 1) },
  { name: "inside onEpochBegin", inject: (lose) => ({ onEpochBegin: (e) => void (e === 1 && lose()) }) },
  { name: "inside onEpochBegin of the first epoch", inject: (lose) => ({ onEpochBegin: (e) => void (e === 0 && lose()) }) },
  { name: "inside onEpochEnd", inject: (lose) => ({ onEpochEnd: (e) => void (e === 0 && lose()) }) },
  { name: "inside onEpochEnd after a snapshot on the epoch's last step", inject: (lose) => ({ onEpochEnd: (e) => void (e === 1 && lose()) }) },
  { name: "inside onEpochEnd of the last epoch", inject: (lose) => ({ onEpochEnd: (e) => void (e === EPOCHS - 1 && lose()) }) },
  {
    name: "while a recovery snapshot is being mapped",
    // Right after a step that took a snapshot, before anything is awaited: its copy is still landing.
    inject: (lose, model) => ({ onBatchEnd: () => void (model.step === 2 * EVERY && lose()) }),
  },
  { name: "a snapshot taken mid-epoch that lands after the next epoch has begun", inject: lateSnapshot },
  { name: "inside an async onBatchEnd, before it awaits", inject: (lose) => ({ onBatchEnd: async (b, logs) => (logs.epoch === 1 && b === 3 ? (lose(), await new Promise((r) => setTimeout(r, 5))) : undefined) }) },
];

describe("device loss at every kind of position in fit", () => {
  for (const p of POSITIONS) {
    it(`at ${p.name}: completes once, with the uninterrupted run's history, step and weights`, async () => {
      const before = unhandled.length;
      const own = await freshEngine();
      const model = mlp();
      await model.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy", engine: own, seed: 5 });
      let lost = 0;
      const lose = () => {
        if (lost++ === 0) own.device.destroy();
      };
      const events: { lostAt: { t: number }; resumedFrom: { t: number } }[] = [];
      const history = await model.fit(train.images, train.labels, {
        epochs: EPOCHS,
        batchSize: BATCH,
        recoverySnapshotEvery: EVERY,
        callbacks: { ...p.inject(lose, model, own.device), onDeviceLost: (info) => void events.push(info) },
      });
      expect(lost).toBeGreaterThan(0);
      expect(events).toHaveLength(1);
      expect(events[0]!.resumedFrom.t).toBeLessThanOrEqual(events[0]!.lostAt.t);
      expect(model.engine).not.toBe(own);
      expect(history.epoch).toEqual([0, 1, 2]);
      expect(history.history.loss).toEqual(baseline.history.history.loss);
      expect(history.history.accuracy).toEqual(baseline.history.history.accuracy);
      expect(model.step).toBe(baseline.step);
      const weights = await model.getWeights();
      expect(weights.map((w) => w.shape)).toEqual(baseline.weights.map((w) => w.shape)); // layer names differ: each model numbers its own
      for (const [i, w] of weights.entries()) expect(Buffer.from(w.data.buffer).equals(Buffer.from(baseline.weights[i]!.data.buffer)), w.name).toBe(true);
      // Let late map callbacks of the lost device settle before looking for unhandled rejections.
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled.slice(before)).toEqual([]);
      const engine = model.engine;
      model.dispose();
      engine.dispose();
    });
  }
});
