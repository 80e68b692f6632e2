// The playground's worker: owns the engine, the toy data and the small classifier, trains it with
// trainOnBatch, and every FRAME_MS sends a frame whose numbers all come from one predictOnBatch call on
// the GPU: the GRID × GRID boundary, then the training points, then the test points.
import { Dense, Engine, Sequential } from "../src/index.ts";
import { binaryReport, fiveFeatures, toyDataset } from "../src/entry/data.ts";
import { FEATURES, GRID, gridPoint, POINTS, type FromWorker, type Live, type Setup, type ToWorker } from "./playground_protocol.ts";

/** Optimizer steps submitted back to back before one is awaited; frames at most this often. */
const CHUNK = 8;
const FRAME_MS = 100;
/** Outputs are clipped this far from 0 and 1 before the log, as Keras does. */
const EPS = 1e-7;

const post = (m: FromWorker, transfer: Transferable[] = []) => postMessage(m, { transfer });
const fail = (e: unknown) => post({ type: "error", message: (e as Error).message });

let engine: Engine;
let model: Sequential | undefined;
const live: Live = { learningRate: 0.03, batchSize: 10 };
let running = false;

/** The data of the current setup, features already chosen. */
let data: {
  features: number;
  train: { x: Float32Array; y: Float32Array }; // (Ntrain, F), (Ntrain)
  test: { y: Float32Array }; // (Ntest)
  /** Grid, training and test points stacked: what one predictOnBatch call takes. */
  all: Float32Array; // (GRID² + Ntrain + Ntest, F)
};
/** The shuffled order of the training points, and where the next batch starts in it. */
let order = new Uint32Array(0);
let cursor = 0;
/** Training examples stepped on since the setup (the batch size may change on the way). */
let seen = 0;
let batchX = new Float32Array(0); // (B, F)
let batchY = new Float32Array(0); // (B)
let lastFrame = 0;
/** When the latest frames were sent and at which step, for a steps-per-second figure that does not jitter. */
const RATE_FRAMES = 10;
let marks: { at: number; step: number }[] = [];

// ---- Jobs: everything that touches the model runs one at a time, in order ------------------------------

const jobs: { name: string; run: () => Promise<void> }[] = [];
let pumping = false;

/** Queues a job; a queued one of the same name is replaced (a slider dragged sends many setups). */
function queue(name: string, run: () => Promise<void>): void {
  const i = jobs.findIndex((j) => j.name === name);
  if (i >= 0) jobs.splice(i, 1);
  jobs.push({ name, run });
  void pump();
}

async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  try {
    for (let job = jobs.shift(); job; job = jobs.shift()) await job.run().catch(fail);
  } finally {
    pumping = false;
  }
}

// ---- Setup: points, features, network -------------------------------------------------------------------

/** Keeps the chosen columns of fiveFeatures(points). */
function features(points: Float32Array, on: boolean[]): Float32Array {
  const five = fiveFeatures(points);
  const cols = on.flatMap((v, k) => (v ? [k] : []));
  const n = points.length / 2;
  const out = new Float32Array(n * cols.length);
  for (let i = 0; i < n; i++) cols.forEach((c, k) => (out[i * cols.length + k] = five[i * FEATURES.length + c]!));
  return out;
}

const gridPoints = (() => {
  const g = new Float32Array(GRID * GRID * 2);
  for (let j = 0; j < GRID; j++) for (let i = 0; i < GRID; i++) g.set(gridPoint(i, j), 2 * (j * GRID + i));
  return g;
})();

async function build(s: Setup): Promise<void> {
  const { points, labels } = toyDataset(s.dataset, { n: POINTS, noise: s.noise, seed: s.dataSeed });
  const nTrain = Math.round(POINTS * s.trainRatio);
  const trainPoints = points.slice(0, 2 * nTrain);
  const testPoints = points.slice(2 * nTrain);
  const trainLabels = labels.slice(0, nTrain);
  const testLabels = labels.slice(nTrain);
  const f = s.features.filter(Boolean).length;
  if (f === 0) throw new Error("at least one input feature must be on");
  const trainX = features(trainPoints, s.features);
  const all = new Float32Array((GRID * GRID + POINTS) * f);
  all.set(features(gridPoints, s.features));
  all.set(trainX, GRID * GRID * f);
  all.set(features(testPoints, s.features), (GRID * GRID + nTrain) * f);
  data = { features: f, train: { x: trainX, y: trainLabels }, test: { y: testLabels }, all };
  order = new Uint32Array(0);
  cursor = seen = 0;

  model?.dispose();
  model = undefined;
  const reg = s.l2 > 0 ? { kernelRegularizer: { l2: s.l2 } } : {};
  const m = new Sequential([
    ...Array.from({ length: s.hiddenLayers }, (_, k) => Dense({ units: s.hiddenUnits, activation: s.activation, ...(k === 0 ? { inputShape: [f] } : {}), ...reg })),
    Dense({ units: 1, activation: "sigmoid", ...reg }),
  ]);
  await m.compile({ optimizer: { type: "adam", learningRate: () => live.learningRate }, loss: "binaryCrossentropy", engine, seed: s.weightSeed });
  model = m;
  post({ type: "data", trainPoints, trainLabels, testPoints, testLabels });
  marks = [];
  await frame();
}

// ---- Training -------------------------------------------------------------------------------------------

/** The next batch of the training stream: each pass over the training set in a fresh random order. */
function nextBatch(): [Float32Array, Float32Array] {
  const f = data.features;
  const b = live.batchSize;
  if (batchX.length !== b * f) [batchX, batchY] = [new Float32Array(b * f), new Float32Array(b)];
  const n = data.train.y.length;
  for (let k = 0; k < b; k++) {
    if (cursor >= order.length) {
      order = Uint32Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      cursor = 0;
    }
    const i = order[cursor++]!;
    batchX.set(data.train.x.subarray(i * f, (i + 1) * f), k * f);
    batchY[k] = data.train.y[i]!;
  }
  seen += b;
  return [batchX, batchY];
}

/** `steps` optimizer steps submitted back to back; only the last is awaited (one readback). */
async function train(steps: number): Promise<void> {
  if (!model) return;
  let last: Promise<unknown> | undefined;
  for (let k = 0; k < steps; k++) last = model.trainOnBatch(...nextBatch());
  await last;
}

function loop(): void {
  queue("train", async () => {
    if (!running) return;
    // No network (its setup failed): stop, rather than spin through empty jobs that never yield.
    if (!model) return setRunning(false);
    try {
      await train(CHUNK);
      if (performance.now() - lastFrame >= FRAME_MS) await frame();
    } catch (e) {
      setRunning(false);
      throw e;
    }
    if (running) loop();
  });
}

function setRunning(r: boolean): void {
  running = r;
  post({ type: "running", running: r });
  marks = [{ at: performance.now(), step: model?.step ?? 0 }];
  if (r) loop();
}

/** Log loss of outputs p[from..from+n) against labels y. */
function logLoss(p: Float32Array, from: number, y: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < y.length; i++) {
    const q = Math.min(1 - EPS, Math.max(EPS, p[from + i]!));
    sum -= y[i] === 1 ? Math.log(q) : Math.log(1 - q);
  }
  return sum / Math.max(1, y.length);
}

/** One predictOnBatch over grid, training and test points; everything the page shows comes from it. */
async function frame(): Promise<void> {
  if (!model) return;
  const p = await model.predictOnBatch(data.all);
  const g = GRID * GRID;
  const nTrain = data.train.y.length;
  const step = model.step;
  lastFrame = performance.now();
  marks.push({ at: lastFrame, step });
  if (marks.length > RATE_FRAMES) marks.shift();
  const first = marks[0]!;
  const stepsPerSecond = running && step > first.step ? ((step - first.step) * 1000) / (lastFrame - first.at) : undefined;
  const grid = p.slice(0, g);
  post(
    {
      type: "frame",
      step,
      epoch: seen / Math.max(1, nTrain),
      trainLoss: logLoss(p, g, data.train.y),
      testLoss: logLoss(p, g + nTrain, data.test.y),
      trainAccuracy: binaryReport(p.subarray(g, g + nTrain), data.train.y).accuracy,
      test: binaryReport(p.subarray(g + nTrain), data.test.y),
      grid,
      stepsPerSecond,
    },
    [grid.buffer],
  );
}

// ---- Messages ---------------------------------------------------------------------------------------------

async function init(m: Extract<ToWorker, { type: "init" }>): Promise<void> {
  try {
    engine = await Engine.create({ onError: fail });
  } catch (e) {
    post({ type: "fatal", message: (e as Error).message });
    return;
  }
  post({ type: "adapter", report: engine.gpu.report, description: engine.describe() });
  Object.assign(live, m.live);
  queue("setup", () => build(m.setup));
}

onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case "init":
      void init(m);
      break;
    case "setup":
      queue("setup", () => build(m.setup));
      break;
    case "live":
      Object.assign(live, m.live);
      break;
    case "play":
      if (!running) setRunning(true);
      break;
    case "pause":
      if (running) setRunning(false);
      break;
    case "step":
      if (!running)
        queue(`step ${Math.random()}`, async () => {
          await train(1);
          await frame();
        });
      break;
  }
};
