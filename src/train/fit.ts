// The fit loop: epochs of shuffled batches on a training plan, a few steps in flight, metrics read back
// asynchronously, validation on an inference plan. Recovery wraps it: when the device is lost, the loop
// resumes from the last snapshot on a new session, and the result is what an uninterrupted run gives.
import { flag, optionsOf, shown } from "../args.ts";
import type { EngineOptions } from "../engine.ts";
import { ConfigError, DataError, GpuError } from "../errors.ts";
import type { Augment } from "../kernels.ts";
import type { Dataset, Plan } from "../plan/plan.ts";
import { inputsOf, type InputData } from "./dataset.ts";
import { checkBatchSize, evaluateDataset, scaleOf } from "./infer.ts";
import type { Logs, Triple } from "./metrics.ts";
import { Recovery, type Position } from "./recovery.ts";
import { mulberry32, shuffled } from "./random.ts";
import type { Session } from "./session.ts";

export interface Callbacks {
  onEpochBegin?(epoch: number): void | Promise<void>;
  onBatchEnd?(batch: number, logs: Partial<Logs> & { batchesPerEpoch: number; epoch: number }): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  /** The device was lost during fit; training continues on a new one from the last snapshot. */
  onDeviceLost?(info: { message: string; lostAt: Position; resumedFrom: Position; adapter: string }): void | Promise<void>;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  validationSplit?: number;
  validationData?: [unknown, ArrayLike<number>];
  callbacks?: Callbacks;
  /** Scale applied to Uint8Array inputs on the GPU (default 1/255: pixels to [0, 1]). */
  inputScale?: number;
  /** Progress snapshots (async metric readbacks) per epoch. */
  snapshotsPerEpoch?: number;
  /**
   * Optimizer steps between snapshots of weights and optimizer state kept for recovering from device loss
   * (default 200; 0: none). The schedule counts the model's steps across calls; a fit() that runs at least
   * this many steps also takes one at its start, so that a loss anywhere in it resumes exactly.
   */
  recoverySnapshotEvery?: number;
  /** Check the loss at every progress snapshot; when it is not finite, stop with an error naming the first bad layer. */
  stopOnNonFinite?: boolean;
  /**
   * Random shifts of up to `shift` whole pixels each way and rotations of up to `rotate` degrees each way,
   * applied to image inputs ([H, W, C]) in the GPU batch gather of training steps (validation and
   * evaluation see the data as it is); deterministic under the model's seed.
   */
  augment?: Augment;
}

/** Per-epoch figures, by Keras's names; accuracy figures are absent for mean squared error, val_ ones without validation data. */
export interface History {
  epoch: number[];
  history: {
    loss: number[];
    seconds: number[];
    accuracy?: number[];
    val_loss?: number[];
    val_accuracy?: number[];
  };
}

/** What the loop needs of a model: its session (replaced after a device loss) and training counters. */
export interface Trainee {
  session: Session;
  /** Optimizer steps taken so far (Adam's t − 1). */
  step: number;
  /** Set from a callback to end fit() after the current step. */
  stopTraining: boolean;
  readonly seed: number;
  readonly engineOptions?: EngineOptions;
  /** The model's recovery snapshots, kept across calls for its current session. */
  recovery(): Recovery;
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new ConfigError(`${what} must be a positive integer, got ${shown(v)}`);
  return v;
}

/** The last `nVal` examples of every input (Keras: before any shuffling). */
function split(xs: InputData[], sizes: number[], n: number, nVal: number): [InputData[], InputData[]] {
  return [xs.map((x, i) => x.subarray(0, (n - nVal) * sizes[i]!)), xs.map((x, i) => x.subarray((n - nVal) * sizes[i]!))];
}

const FIT_OPTIONS = ["epochs", "batchSize", "shuffle", "validationSplit", "validationData", "callbacks", "inputScale", "snapshotsPerEpoch", "recoverySnapshotEvery", "stopOnNonFinite", "augment"];

/** The augment option, checked: whole-pixel shifts and rotations in degrees, for models with an image input. */
function augmentOf(v: unknown, spec: Session): { shift: number; rotate: number } | undefined {
  if (v === undefined) return undefined;
  const a = optionsOf<Augment>(v as Augment, "augment", ["shift", "rotate"]);
  const shift = a.shift ?? 0;
  const rotate = a.rotate ?? 0;
  if (typeof shift !== "number" || !Number.isInteger(shift) || shift < 0 || shift > 1024) throw new ConfigError(`augment.shift must be a whole number of pixels in 0..1024, got ${shown(shift)}`);
  if (typeof rotate !== "number" || !(rotate >= 0 && rotate <= 180)) throw new ConfigError(`augment.rotate must be a number of degrees in [0, 180], got ${shown(rotate)}`);
  if (!spec.inputs.some((t) => t.shape.length === 3)) throw new ConfigError(`augment shifts and rotates images, but no input of this model is an image [H, W, C] (inputs: ${spec.inputs.map((t) => `${t.name} [${t.shape}]`).join(", ")})`);
  return { shift, rotate };
}
const CALLBACKS = ["onEpochBegin", "onBatchEnd", "onEpochEnd", "onDeviceLost"];

/** stopOnNonFinite's diagnosis (which layer went non-finite; it throws), from src/train/diagnostics.ts, loaded when training diverges. */
async function diagnose(s: Session, train: Dataset, B: number, offset: number, t: number): Promise<never> {
  return (await import("./diagnostics.ts")).diagnose(s, train, B, offset, t);
}

export async function fit(m: Trainee, x: unknown, y: unknown, options: FitOptions = {}): Promise<History> {
  const o = optionsOf<FitOptions>(options, "fit()", FIT_OPTIONS);
  const epochs = positiveInt(o.epochs === undefined ? 1 : o.epochs, "epochs");
  flag(o.shuffle, "shuffle");
  flag(o.stopOnNonFinite, "stopOnNonFinite");
  const callbacks = optionsOf<Callbacks>(o.callbacks, "callbacks", CALLBACKS);
  for (const [k, f] of Object.entries(callbacks)) if (f !== undefined && typeof f !== "function") throw new ConfigError(`callbacks.${k} must be a function, got ${shown(f)}`);
  const scale = scaleOf(o.inputScale);
  const augment = augmentOf(o.augment, m.session);
  const perEpoch = positiveInt(o.snapshotsPerEpoch === undefined ? 4 : o.snapshotsPerEpoch, "snapshotsPerEpoch");
  const recoveryEvery = o.recoverySnapshotEvery === undefined ? 200 : o.recoverySnapshotEvery;
  if (typeof recoveryEvery !== "number" || !Number.isInteger(recoveryEvery) || recoveryEvery < 0) throw new ConfigError(`recoverySnapshotEvery must be an integer ≥ 0 (0: never), got ${shown(recoveryEvery)}`);
  const spec = m.session;
  let trainX: unknown = x;
  let trainY: unknown = y;
  let valX: unknown;
  let valY: unknown;
  if (o.validationData !== undefined) {
    if (!Array.isArray(o.validationData) || o.validationData.length !== 2) throw new ConfigError(`validationData must be [x, y], got ${shown(o.validationData)}`);
    [valX, valY] = o.validationData;
  } else if (o.validationSplit !== undefined && o.validationSplit !== 0) {
    const v = o.validationSplit;
    if (typeof v !== "number" || !(v > 0 && v < 1)) throw new ConfigError(`validationSplit must be a number in (0, 1), got ${String(v)}`);
    const xs = inputsOf(spec, x, "x");
    const sizes = spec.inputs.map((t) => t.size);
    const n = Math.floor(xs[0]!.length / sizes[0]!);
    const nVal = Math.floor(n * v);
    if (nVal < 1 || nVal >= n) throw new ConfigError(`validationSplit ${v} of ${n} examples leaves ${n - nVal} to train on and ${nVal} to validate; both need at least one`);
    [trainX, valX] = split(xs, sizes, n, nVal);
    if (y === undefined || y === null || typeof (y as ArrayLike<number>).length !== "number") throw new DataError(`y is ${String(y)}; training needs targets`);
    const yRow = spec.loss === "sparseCategoricalCrossentropy" ? 1 : spec.output.size;
    trainY = Array.prototype.slice.call(y, 0, (n - nVal) * yRow);
    valY = Array.prototype.slice.call(y, (n - nVal) * yRow);
  }
  let s = m.session;
  const datasets = (session: Session): { train: Dataset; val?: Dataset } => {
    const train = session.dataset(trainX, trainY, scale);
    if (augment) train.augment = { ...augment, seed: m.seed >>> 0 };
    try {
      return { train, val: valX !== undefined ? session.dataset(valX, valY, scale, "validation x") : undefined };
    } catch (e) {
      session.release(train);
      throw e;
    }
  };
  let { train, val } = datasets(s);
  const B = o.batchSize === undefined ? 32 : o.batchSize;
  if (typeof B !== "number" || !Number.isInteger(B) || B < 1 || B > train.n) {
    s.release(train);
    if (val) s.release(val);
    throw new ConfigError(`batchSize must be an integer in 1..${train.n} (the number of training examples), got ${shown(B)}`);
  }
  const steps = Math.ceil(train.n / B);
  const snapshotEvery = Math.max(1, Math.floor(steps / perEpoch));
  m.stopTraining = false;
  const first = m.step;
  // Each epoch's order depends only on the seed, the step this fit started at and the epoch, so a resumed
  // run visits the examples exactly as the uninterrupted one.
  const order = new Uint32Array(train.n);
  const shuffleFor = (epoch: number) => {
    if (o.shuffle ?? true) shuffled(order, mulberry32(m.seed + 7919 * (first + 1) + 104729 * epoch));
    else for (let i = 0; i < order.length; i++) order[i] = i;
  };
  let host: { history: History } = { history: { epoch: [], history: { loss: [], seconds: [] } } };
  let pos: Position = { epoch: 0, step: 0, t: m.step };
  const recovery = m.recovery();
  const thisRun = {}; // this call: the snapshots it may resume from
  let resumed = false;
  try {
    // Short calls (batch by batch) take none: the model's schedule covers them.
    if (recoveryEvery > 0 && epochs * steps >= recoveryEvery) await recovery.takeNow(pos, order, host, thisRun);
    for (;;) {
      try {
        await loop();
        return host.history;
      } catch (err) {
        if (!s.engine.gpu.lost) throw err;
        // The device is gone: continue on a new one from the last snapshot.
        const snap = recovery.latest();
        const lostAt = { ...pos };
        s.release(train);
        if (val) s.release(val);
        s = m.session = await recovery.restore(m.engineOptions);
        if (snap.run !== thisRun) {
          // Taken before this call: its steps since cannot be replayed, so the caller decides what to do.
          m.step = snap.position.t;
          throw new GpuError(
            `the device was lost at step ${lostAt.t} in fit(); the model was restored on a new device (${s.engine.describe()}) from its last recovery snapshot, at step ${snap.position.t}, taken before this fit() began (fit() takes one at its start only when it runs at least recoverySnapshotEvery = ${recoveryEvery} steps); call fit() again to continue`,
          );
        }
        ({ train, val } = datasets(s));
        pos = { ...snap.position };
        m.step = pos.t;
        host = structuredClone(snap.host) as typeof host;
        order.set(snap.order);
        s.engine.device.queue.writeBuffer(train.order, 0, order);
        resumed = true;
        m.stopTraining = false; // the replayed steps call the callbacks again, which may set it again
        await o.callbacks?.onDeviceLost?.({ message: (err as Error).message, lostAt, resumedFrom: { ...snap.position }, adapter: s.engine.describe() });
      }
    }
  } finally {
    s.release(train);
    if (val) s.release(val);
  }

  function loop(): Promise<void> {
    return s.use(B, true, run);
  }

  async function run(plan: Plan): Promise<void> {
    let inflight: Promise<unknown>[] = [];
    let diverged = false;
    let latest: Partial<Logs> = {};
    let t0 = performance.now();
    try {
      while (pos.epoch < epochs) {
        const e = s.engine;
        if (pos.step === 0) {
          t0 = performance.now();
          await o.callbacks?.onEpochBegin?.(pos.epoch);
          shuffleFor(pos.epoch);
          e.device.queue.writeBuffer(train.order, 0, order);
          s.metrics.clear(s.metrics.train);
          latest = {};
        } else if (resumed) t0 = performance.now();
        resumed = false;
        while (pos.step < steps && !m.stopTraining) {
          const offset = pos.step * B;
          const t = pos.t + 1;
          s.optimizer.prepare(t);
          let read: (() => Promise<Triple>) | undefined;
          const after: Position = { epoch: pos.epoch, step: pos.step + 1, t };
          const progress = pos.step % snapshotEvery === snapshotEvery - 1 && pos.step !== steps - 1;
          await plan.step(train, offset, Math.min(B, train.n - offset), "train", t, (enc) => {
            if (progress) read = s.metrics.snapshot(s.metrics.train, enc);
            recovery.maybeTake(enc, recoveryEvery, after, order, () => host, thisRun);
          });
          pos = after;
          m.step = t;
          if (read) {
            void read()
              .then((v) => {
                latest = s.metrics.logsOf(v);
                if (o.stopOnNonFinite && !Number.isFinite(v[0])) diverged = true;
              })
              .catch(() => undefined); // a lost device rejects pending maps; the loop recovers
          }
          // Keep a few steps in flight: enough to keep the GPU busy, few enough to stay responsive.
          inflight.push(e.device.queue.onSubmittedWorkDone());
          if (inflight.length > 3) await inflight.shift();
          if (e.gpu.lost) throw new GpuError("device lost");
          if (diverged) await diagnose(s, train, B, offset, t);
          await o.callbacks?.onBatchEnd?.(pos.step - 1, { ...latest, batchesPerEpoch: steps, epoch: pos.epoch });
        }
        await Promise.all(inflight);
        inflight = [];
        const logs = s.metrics.logsOf(await s.metrics.read(s.metrics.train)) as Logs;
        if (!Number.isFinite(logs.loss)) {
          if (o.stopOnNonFinite) await diagnose(s, train, B, Math.max(0, (pos.step - 1) * B), pos.t);
          throw new DataError(`the training loss became ${logs.loss} in epoch ${pos.epoch + 1}; lower the learning rate or check the data for extreme values (fit option stopOnNonFinite names the first layer that went non-finite)`);
        }
        if (val) Object.assign(logs, s.metrics.logsOf(await evaluateDataset(s, val, checkBatchSize(B, val.n)), "val_"));
        logs.seconds = (performance.now() - t0) / 1000;
        const h = host.history;
        h.epoch.push(pos.epoch);
        for (const k of ["loss", "seconds", "accuracy", "val_loss", "val_accuracy"] as const) {
          const v = logs[k];
          if (v !== undefined) (h.history[k] ??= []).push(v);
        }
        const ended = pos.epoch;
        pos = { epoch: pos.epoch + 1, step: 0, t: pos.t };
        await o.callbacks?.onEpochEnd?.(ended, logs);
        if (m.stopTraining) break;
      }
      // A loss after the last step (in the last onEpochEnd) would hand back a model on a dead device.
      await s.engine.device.queue.onSubmittedWorkDone();
      if (s.engine.gpu.lost) throw new GpuError("device lost");
    } finally {
      await Promise.allSettled(inflight);
    }
  }
}
