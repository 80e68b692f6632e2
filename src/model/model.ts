// Sequential models with a Keras-like API: compile, fit, evaluate, predict, summary, weights.
import { Engine, type EngineOptions } from "../engine.ts";
import { ConfigError, DataError, DivergenceError, GpuError, ShapeError } from "../errors.ts";
import { BufferUsage, MapMode } from "../gpu/flags.ts";
import type { Dispatch } from "../gpu/registry.ts";
import * as K from "../kernels.ts";
import { LAYER_RULES, outputActivation, type Layer, type ParamSpec } from "./layers.ts";
import { Plan } from "./plan.ts";
import { mulberry32, shuffled } from "./random.ts";
import { Recovery, type Snapshot } from "./recovery.ts";

export type LossName = "sparseCategoricalCrossentropy" | "categoricalCrossentropy" | "meanSquaredError" | "binaryCrossentropy";
const LOSSES: LossName[] = ["sparseCategoricalCrossentropy", "categoricalCrossentropy", "meanSquaredError", "binaryCrossentropy"];
const METRICS = ["accuracy", "acc", "loss"];

/** A learning rate: fixed, a function of the (0-based) step, or Keras' exponential decay. */
export type LearningRate = number | ((step: number) => number) | { initial: number; decayRate: number; decaySteps: number; staircase?: boolean };

export type OptimizerConfig =
  | "adam"
  | "sgd"
  | { type: "adam"; learningRate?: LearningRate; beta1?: number; beta2?: number; epsilon?: number }
  | { type: "sgd"; learningRate?: LearningRate; momentum?: number };

export interface CompileOptions {
  optimizer?: OptimizerConfig;
  loss: LossName;
  metrics?: string[];
  /** Seed for weight initialisation and shuffling. */
  seed?: number;
  /** An engine to run on (one is created otherwise), or options for creating it. */
  engine?: Engine;
  engineOptions?: EngineOptions;
}

export interface Logs {
  loss: number;
  accuracy?: number;
  val_loss?: number;
  val_accuracy?: number;
  seconds?: number;
  [k: string]: number | undefined;
}

export interface Callbacks {
  onEpochBegin?(epoch: number): void | Promise<void>;
  onBatchEnd?(batch: number, logs: Partial<Logs> & { batchesPerEpoch: number; epoch: number }): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  /** The device was lost during fit; training continues on a new one from the last snapshot. */
  onDeviceLost?(info: { message: string; lostAt: { epoch: number; step: number; t: number }; resumedFrom: { epoch: number; step: number; t: number }; adapter: string }): void | Promise<void>;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  validationSplit?: number;
  validationData?: [Float32Array | Uint8Array, ArrayLike<number>];
  callbacks?: Callbacks;
  /** Scale applied to Uint8Array inputs on the GPU (default 1/255: pixels to [0, 1]). */
  inputScale?: number;
  /** Progress snapshots (async metric readbacks) per epoch. */
  snapshotsPerEpoch?: number;
  /** Steps between snapshots of weights and optimizer state kept for recovering from device loss (default 200). */
  recoverySnapshotEvery?: number;
  /** Check the loss at every progress snapshot; when it is not finite, stop with an error naming the first bad layer. */
  stopOnNonFinite?: boolean;
}

export interface History {
  epoch: number[];
  history: Record<string, number[]>;
}

/** A dataset uploaded to the GPU once: inputs, targets, and the order in which to visit examples. */
export interface Dataset {
  n: number;
  x: GPUBuffer;
  xKind: "u8" | "f32";
  xRow: number;
  scale: number;
  y: GPUBuffer;
  yKind: "u32" | "f32";
  yRow: number;
  order: GPUBuffer;
}

/** What the planner needs from a compiled model. */
export interface CompiledModel {
  layers: Layer[];
  inputShape: number[];
  /** shapes[i] is layer i's input shape (per example); shapes[layers.length] is the output shape. */
  shapes: number[][];
  paramSlots: Map<Layer, { offset: number; size: number; spec: ParamSpec }[]>;
  arena: { params: GPUBuffer; grads: GPUBuffer; size: number };
  loss: LossName;
  targetRow: number;
  endsInSoftmax: boolean;
  metrics: { train: GPUBuffer; eval: GPUBuffer };
  optimizerStep: Dispatch;
}

const product = (s: number[]) => s.reduce((a, b) => a * b, 1);

export class Sequential {
  readonly layers: Layer[] = [];
  private compiled?: CompiledModel & { engine: Engine; optimizer: ReturnType<typeof optimizerOf>; seed: number; slots: GPUBuffer[]; decay: GPUBuffer };
  private readonly plans = new Map<number, Promise<Plan>>();
  private staging: GPUBuffer[] = [];
  private stagingBusy: boolean[] = [];
  /** Optimizer steps taken so far (Adam's t − 1). */
  step = 0;
  /** Set from a callback to end fit() after the current step (like Keras' model.stop_training). */
  stopTraining = false;

  constructor(layers: Layer[] = []) {
    for (const l of layers) this.add(l);
  }

  add(layer: Layer): this {
    if (this.compiled) throw new ConfigError("add() after compile(): build the model completely, then compile it");
    this.layers.push(layer);
    return this;
  }

  /** Per-example shapes through the model; errors name the layer. */
  shapes(): number[][] {
    const first = this.layers[0];
    if (!first) throw new ConfigError("the model has no layers");
    if (!first.inputShape) throw new ShapeError(`layer ${first.name}: the first layer needs inputShape (e.g. inputShape: [28, 28, 1])`);
    const shapes = [first.inputShape];
    for (const l of this.layers) {
      if (!LAYER_RULES[l.kind]) throw new ConfigError(`layer ${l.name}: unknown layer kind "${l.kind}"; known: ${Object.keys(LAYER_RULES).join(", ")}`);
      shapes.push((LAYER_RULES[l.kind] as (typeof LAYER_RULES)["dense"]).outputShape(l.config as never, shapes[shapes.length - 1]!, l.name));
    }
    return shapes;
  }

  /** A Keras-style table of layers, output shapes and parameter counts. */
  summary(): string {
    const shapes = this.shapes();
    const rows = this.layers.map((l, i) => {
      const count = (LAYER_RULES[l.kind] as (typeof LAYER_RULES)["dense"]).params(l.config as never, shapes[i]!).reduce((s, p) => s + product(p.shape), 0);
      return [`${l.name} (${l.kind})`, `(None, ${shapes[i + 1]!.join(", ")})`, String(count)];
    });
    const total = rows.reduce((s, r) => s + Number(r[2]), 0);
    const w = [Math.max(28, ...rows.map((r) => r[0]!.length + 2)), Math.max(22, ...rows.map((r) => r[1]!.length + 2)), 12];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join("");
    const rule = "─".repeat(w[0]! + w[1]! + w[2]!);
    return [rule, line(["Layer (type)", "Output Shape", "Param #"]), rule, ...rows.map(line), rule, `Total params: ${total.toLocaleString("en-US")}`, rule].join("\n");
  }

  get engine(): Engine {
    return this.need().engine;
  }

  private need() {
    if (!this.compiled) throw new ConfigError("call compile() before training or using the model");
    return this.compiled;
  }

  async compile(o: CompileOptions): Promise<void> {
    if (!LOSSES.includes(o.loss)) throw new ConfigError(`unknown loss "${o.loss}"; use one of ${LOSSES.join(", ")}`);
    for (const m of o.metrics ?? []) if (!METRICS.includes(m)) throw new ConfigError(`unknown metric "${m}"; supported: ${METRICS.join(", ")}`);
    optimizerOf(o.optimizer ?? "adam");
    const shapes = this.shapes();
    const outShape = shapes[shapes.length - 1]!;
    const lastAct = outputActivation(this.layers[this.layers.length - 1]!);
    this.layers.forEach((l, i) => {
      if (outputActivation(l) === "softmax" && i !== this.layers.length - 1) throw new ConfigError(`layer ${l.name}: softmax is supported on the last layer only`);
    });
    const ce = o.loss === "sparseCategoricalCrossentropy" || o.loss === "categoricalCrossentropy";
    if (ce && lastAct !== "softmax" && lastAct !== "linear") throw new ConfigError(`loss ${o.loss} needs the last layer to end in softmax (or linear logits), not ${lastAct}`);
    if (!ce && lastAct === "softmax") throw new ConfigError(`loss ${o.loss} with a softmax output is not supported; use categoricalCrossentropy`);
    if (outShape.length !== 1) throw new ShapeError(`the model's output must be a vector per example, got [${outShape}]; add Flatten and Dense layers`);

    const engine = o.engine ?? (await Engine.create(o.engineOptions));
    this.options = o;
    await this.materialize(engine, (paramSlots, size) => {
      const init = new Float32Array(size);
      const random = mulberry32(o.seed ?? 1);
      for (const slots of paramSlots.values()) {
        for (const s of slots) {
          if (s.spec.init.kind !== "glorotUniform") continue;
          const limit = Math.sqrt(6 / (s.spec.init.fanIn + s.spec.init.fanOut));
          for (let j = 0; j < s.size; j++) init[s.offset + j] = (random() * 2 - 1) * limit;
        }
      }
      return { params: init };
    });
  }

  private options?: CompileOptions;

  /**
   * Creates the model's GPU state on an engine: the parameter, gradient, decay and optimizer arenas, the
   * optimizer dispatch and the metric buffers. `state` gives the initial parameters (and optimizer slots)
   * in the arena layout, which depends on the device's offset alignment.
   */
  private async materialize(engine: Engine, state: (slots: CompiledModel["paramSlots"], size: number) => { params: Float32Array; slots?: Float32Array[] }): Promise<void> {
    const o = this.options!;
    const opt = optimizerOf(o.optimizer ?? "adam");
    const shapes = this.shapes();
    const outShape = shapes[shapes.length - 1]!;
    const align = engine.device.limits.minStorageBufferOffsetAlignment / 4;
    const paramSlots: CompiledModel["paramSlots"] = new Map();
    let size = 0;
    this.layers.forEach((l, i) => {
      const specs = (LAYER_RULES[l.kind] as (typeof LAYER_RULES)["dense"]).params(l.config as never, shapes[i]!);
      if (specs.length === 0) return;
      paramSlots.set(
        l,
        specs.map((spec) => {
          const slot = { offset: size, size: product(spec.shape), spec };
          size = Math.ceil((size + slot.size) / align) * align; // binding offsets must be aligned
          return slot;
        }),
      );
    });
    size = Math.max(size, 1);
    const decay = new Float32Array(size);
    for (const slots of paramSlots.values()) for (const s of slots) decay.fill(2 * s.spec.l2, s.offset, s.offset + s.size); // d(l2·Σw²)/dw = 2·l2·w
    const initial = state(paramSlots, size);
    const upload = (data: Float32Array | undefined, label: string) => {
      const b = engine.createBuffer(size * 4, label, false);
      if (data) engine.device.queue.writeBuffer(b, 0, data as Float32Array<ArrayBuffer>);
      return b;
    };
    const params = upload(initial.params, "parameters");
    const grads = upload(undefined, "gradients");
    const decayBuf = upload(decay, "l2 decay");
    const slots = (opt.kind === "adam" ? ["adam m", "adam v"] : ["sgd velocity"]).map((label, i) => upload(initial.slots?.[i], label));
    const io = { w: params, g: grads, decay: decayBuf };
    const optimizerStep =
      opt.kind === "adam"
        ? await K.adamUpdate(engine, { ...io, m: slots[0]!, v: slots[1]! }, size, { lr_t: opt.lr(0), beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps })
        : await K.sgdUpdate(engine, { ...io, vel: slots[0]! }, size, opt.lr(0), opt.momentum);
    this.compiled = {
      engine,
      layers: this.layers,
      inputShape: shapes[0]!,
      shapes,
      paramSlots,
      arena: { params, grads, size },
      loss: o.loss,
      targetRow: o.loss === "sparseCategoricalCrossentropy" ? 1 : outShape[0]!,
      endsInSoftmax: outputActivation(this.layers[this.layers.length - 1]!) === "softmax",
      metrics: { train: engine.createBuffer(16, "metrics (train)", false), eval: engine.createBuffer(16, "metrics (eval)", false) },
      optimizerStep,
      optimizer: opt,
      seed: o.seed ?? 1,
      slots,
      decay: decayBuf,
    };
    this.staging = [0, 1].map((i) => engine.device.createBuffer({ label: `metrics staging ${i}`, size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }));
    this.stagingBusy = [false, false];
  }

  /** The plan for a batch size, built once. */
  plan(batchSize: number): Promise<Plan> {
    const c = this.need();
    let p = this.plans.get(batchSize);
    if (!p) {
      p = Plan.build(c.engine, c, batchSize);
      this.plans.set(batchSize, p);
      p.catch(() => this.plans.delete(batchSize));
    }
    return p;
  }

  /** Checks and uploads x (N examples) and y (labels or targets) once. */
  dataset(x: Float32Array | Uint8Array, y: ArrayLike<number> | undefined, scale: number, what = "x"): Dataset {
    const c = this.need();
    const e = c.engine;
    const row = product(c.inputShape);
    if (!(x instanceof Float32Array || x instanceof Uint8Array)) throw new DataError(`${what} must be a Float32Array or a Uint8Array (pixels), got ${Object.prototype.toString.call(x)}`);
    if (x.length === 0 || x.length % row !== 0) throw new ShapeError(`${what} has ${x.length} values, which is not a whole number of examples of shape [${c.inputShape}] (${row} values each)`);
    const n = x.length / row;
    if (x instanceof Float32Array) {
      const bad = x.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DataError(`${what}: value ${bad} (example ${Math.floor(bad / row)}) is ${x[bad]}; inputs must be finite`);
    }
    const xBuf = e.createBuffer(x.byteLength, `${what} (dataset)`, false);
    if (x instanceof Uint8Array) {
      const padded = new Uint8Array(Math.ceil(x.length / 4) * 4);
      padded.set(x);
      e.device.queue.writeBuffer(xBuf, 0, padded);
    } else e.device.queue.writeBuffer(xBuf, 0, x.buffer as ArrayBuffer, x.byteOffset, x.byteLength);
    let yBuf: GPUBuffer;
    let yKind: Dataset["yKind"] = "f32";
    if (y === undefined) {
      yBuf = e.createBuffer(4, "no targets", false);
    } else if (c.loss === "sparseCategoricalCrossentropy") {
      const classes = c.shapes[c.shapes.length - 1]![0]!;
      if (y.length !== n) throw new ShapeError(`${what} has ${n} examples but its labels have ${y.length}; they must match`);
      const labels = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const v = y[i]!;
        if (!Number.isInteger(v) || v < 0 || v >= classes) throw new DataError(`label ${i} is ${v}; labels must be integers in 0..${classes - 1} (the model has ${classes} outputs)`);
        labels[i] = v;
      }
      yBuf = e.createBuffer(n * 4, "labels (dataset)", false);
      e.device.queue.writeBuffer(yBuf, 0, labels);
      yKind = "u32";
    } else {
      if (y.length !== n * c.targetRow) throw new ShapeError(`${what} has ${n} examples, so targets need ${n} × ${c.targetRow} = ${n * c.targetRow} values, got ${y.length}`);
      const t = Float32Array.from(y);
      const bad = t.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DataError(`target ${bad} is ${t[bad]}; targets must be finite`);
      yBuf = e.createBuffer(t.byteLength, "targets (dataset)", false);
      e.device.queue.writeBuffer(yBuf, 0, t);
    }
    const order = e.createBuffer(n * 4, "visit order", false);
    e.device.queue.writeBuffer(order, 0, Uint32Array.from({ length: n }, (_, i) => i));
    return { n, x: xBuf, xKind: x instanceof Uint8Array ? "u8" : "f32", xRow: row, scale: x instanceof Uint8Array ? scale : 1, y: yBuf, yKind, yRow: c.targetRow, order };
  }

  private releaseDataset(ds: Dataset): void {
    for (const p of this.plans.values()) void p.then((plan) => plan.forget(ds));
    ds.x.destroy();
    ds.y.destroy();
    ds.order.destroy();
  }

  /** Copies a metrics buffer into a free staging buffer within `encoder`; returns a reader, or undefined when both are busy. */
  private snapshot(metrics: GPUBuffer, encoder: GPUCommandEncoder): (() => Promise<[number, number, number]>) | undefined {
    const i = this.stagingBusy.indexOf(false);
    if (i < 0) return undefined;
    this.stagingBusy[i] = true;
    const staging = this.staging[i]!;
    encoder.copyBufferToBuffer(metrics, 0, staging, 0, 12);
    return async () => {
      try {
        await staging.mapAsync(MapMode.READ);
        const [a, b, c] = new Float32Array(staging.getMappedRange(0, 12));
        staging.unmap();
        return [a!, b!, c!];
      } finally {
        this.stagingBusy[i] = false;
      }
    };
  }

  private async readMetrics(metrics: GPUBuffer): Promise<[number, number, number]> {
    const c = this.need();
    // Wait for a staging buffer if both hold pending snapshots.
    while (!this.stagingBusy.includes(false)) await c.engine.device.queue.onSubmittedWorkDone();
    const encoder = c.engine.device.createCommandEncoder({ label: "read metrics" });
    const read = this.snapshot(metrics, encoder)!;
    c.engine.device.queue.submit([encoder.finish()]);
    const out = await read();
    c.engine.throwIfFailed();
    return out;
  }

  private clearMetrics(metrics: GPUBuffer): void {
    this.need().engine.device.queue.writeBuffer(metrics, 0, new Float32Array(4));
  }

  private logsOf(m: [number, number, number], prefix = ""): Partial<Logs> {
    const c = this.need();
    const [sum, correct, count] = m;
    const logs: Partial<Logs> = { [`${prefix}loss`]: sum / Math.max(count, 1) };
    if (c.loss !== "meanSquaredError") logs[`${prefix}accuracy`] = correct / Math.max(count, 1);
    return logs;
  }

  async fit(x: Float32Array | Uint8Array, y: ArrayLike<number>, o: FitOptions = {}): Promise<History> {
    let c = this.need();
    const epochs = o.epochs ?? 1;
    const B = o.batchSize ?? 32;
    const scale = o.inputScale ?? 1 / 255;
    if (!Number.isInteger(epochs) || epochs < 1) throw new ConfigError(`epochs must be a positive integer, got ${epochs}`);
    const row = product(c.inputShape);
    let trainX = x;
    let trainY = y;
    let valX: Float32Array | Uint8Array | undefined;
    let valY: ArrayLike<number> | undefined;
    if (o.validationData) [valX, valY] = o.validationData;
    else if (o.validationSplit) {
      if (!(o.validationSplit > 0 && o.validationSplit < 1)) throw new ConfigError(`validationSplit must be in (0, 1), got ${o.validationSplit}`);
      const n = Math.floor(x.length / row);
      const nVal = Math.floor(n * o.validationSplit);
      const yRow = c.targetRow;
      // Like Keras: the last examples, before any shuffling.
      trainX = x.subarray(0, (n - nVal) * row);
      valX = x.subarray((n - nVal) * row);
      trainY = Array.prototype.slice.call(y, 0, (n - nVal) * yRow);
      valY = Array.prototype.slice.call(y, (n - nVal) * yRow);
    }
    let train = this.dataset(trainX, trainY, scale);
    let val = valX && valY ? this.dataset(valX, valY, scale, "validation x") : undefined;
    if (!Number.isInteger(B) || B < 1 || B > train.n) {
      this.releaseDataset(train);
      if (val) this.releaseDataset(val);
      throw new ConfigError(`batchSize must be an integer in 1..${train.n} (the number of training examples), got ${B}`);
    }
    let plan = await this.plan(B);
    this.stopTraining = false;
    const history: History = { epoch: [], history: {} };
    const steps = Math.ceil(train.n / B);
    const snapshotEvery = Math.max(1, Math.floor(steps / (o.snapshotsPerEpoch ?? 4)));
    const random = mulberry32(c.seed + 7919 * (this.step + 1));
    const order = new Uint32Array(train.n);
    const recovery = new Recovery(c, train.n, o.recoverySnapshotEvery ?? 200);
    let inflight: Promise<undefined>[] = [];
    let diverged = false;
    let epoch = 0;
    let s = 0;
    let resumed = false;
    let t0 = 0;
    let latest: Partial<Logs> = {};
    try {
      while (epoch < epochs) {
        try {
          const e = c.engine;
          if (s === 0 && !resumed) {
            t0 = performance.now();
            await o.callbacks?.onEpochBegin?.(epoch);
            if (o.shuffle ?? true) shuffled(order, random);
            else for (let i = 0; i < order.length; i++) order[i] = i;
            e.device.queue.writeBuffer(train.order, 0, order as Uint32Array<ArrayBuffer>);
            this.clearMetrics(c.metrics.train);
            latest = {};
            if (epoch === 0) await recovery.takeNow(epoch, 0, this.step, order);
          }
          resumed = false;
          const offset = s * B;
          const t = ++this.step;
          const opt = c.optimizer;
          const lr = opt.lr(t - 1);
          if (opt.kind === "adam") c.optimizerStep.setUniforms({ lr_t: K.adamRate(lr, opt.beta1, opt.beta2, t) });
          else c.optimizerStep.setUniforms({ lr });
          let read: (() => Promise<[number, number, number]>) | undefined;
          const position = { epoch, step: s + 1, t };
          await plan.step(train, offset, Math.min(B, train.n - offset), "train", t, (enc) => {
            if (s % snapshotEvery === snapshotEvery - 1 && s !== steps - 1) read = this.snapshot(c.metrics.train, enc);
            recovery.maybeTake(enc, position, order);
          });
          if (read) {
            void read()
              .then((m) => {
                latest = this.logsOf(m);
                if (o.stopOnNonFinite && !Number.isFinite(m[0])) diverged = true;
              })
              .catch(() => undefined); // a lost device rejects pending maps; the loop recovers
          }
          // Keep a few steps in flight: enough to keep the GPU busy, few enough to stay responsive.
          inflight.push(e.device.queue.onSubmittedWorkDone() as Promise<undefined>);
          if (inflight.length > 3) await inflight.shift();
          if (e.gpu.lost) throw new GpuError("device lost");
          if (diverged) await this.diagnose(plan, t);
          await o.callbacks?.onBatchEnd?.(s, { ...latest, batchesPerEpoch: steps, epoch });
          if (++s < steps && !this.stopTraining) continue;
          const logs = this.logsOf(await this.readMetrics(c.metrics.train)) as Logs;
          if (!Number.isFinite(logs.loss)) {
            if (o.stopOnNonFinite) await this.diagnose(plan, t);
            throw new DataError(`the training loss became ${logs.loss} in epoch ${epoch + 1}; lower the learning rate or check the data for extreme values (fit option stopOnNonFinite names the first layer that went non-finite)`);
          }
          if (val) Object.assign(logs, this.logsOf(await this.runEval(plan, val), "val_"));
          logs.seconds = (performance.now() - t0) / 1000;
          history.epoch.push(epoch);
          for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v!);
          await o.callbacks?.onEpochEnd?.(epoch, logs);
          epoch++;
          s = 0;
          if (this.stopTraining) break;
        } catch (err) {
          if (!c.engine.gpu.lost) throw err;
          // The device is gone: continue on a new one from the last snapshot.
          const snap = recovery.latest();
          const lostAt = { epoch, step: s, t: this.step };
          inflight = [];
          this.plans.clear();
          c = await this.rebuild(snap);
          train = this.dataset(trainX, trainY, scale);
          if (val) val = this.dataset(valX!, valY!, scale, "validation x");
          plan = await this.plan(B);
          c.engine.device.queue.writeBuffer(train.order, 0, snap.order as Uint32Array<ArrayBuffer>);
          order.set(snap.order);
          c.engine.device.queue.writeBuffer(c.metrics.train, 0, snap.metrics as Float32Array<ArrayBuffer>);
          ({ epoch, step: s } = snap.position);
          this.step = snap.position.t;
          resumed = true;
          recovery.rebind(c);
          await o.callbacks?.onDeviceLost?.({ message: (err as Error).message, lostAt, resumedFrom: snap.position, adapter: c.engine.describe() });
          if (s === steps) {
            // the snapshot was taken at the end of an epoch's last step: finish that epoch normally
            s = steps - 1;
            this.step--;
          }
        }
      }
    } finally {
      await Promise.all(inflight);
      recovery.destroy();
      if (!c.engine.gpu.lost) {
        this.releaseDataset(train);
        if (val) this.releaseDataset(val);
      }
    }
    return history;
  }

  /** Re-creates the model on a new device from a recovery snapshot. */
  private async rebuild(snap: Snapshot): Promise<NonNullable<Sequential["compiled"]>> {
    const old = this.need();
    const engine = await Engine.create(this.options?.engineOptions);
    await this.materialize(engine, (slots, size) => {
      const remap = (src: Float32Array) => {
        const out = new Float32Array(size);
        for (const [l, ss] of slots) {
          ss.forEach((slot, i) => {
            const from = old.paramSlots.get(l)![i]!;
            out.set(src.subarray(from.offset, from.offset + from.size), slot.offset);
          });
        }
        return out;
      };
      return { params: remap(snap.params), slots: snap.slots.map(remap) };
    });
    return this.need();
  }

  /** With stopOnNonFinite: finds the first layer whose output (or parameters) went non-finite and says so. */
  private async diagnose(plan: Plan, t: number): Promise<never> {
    const c = this.need();
    const B = plan.B;
    const params = new Float32Array(await c.engine.read(c.arena.params, c.arena.size * 4));
    for (let i = 0; i < c.layers.length; i++) {
      const l = c.layers[i]!;
      for (const slot of c.paramSlots.get(l) ?? []) {
        const bad = params.subarray(slot.offset, slot.offset + slot.size).findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) throw new DivergenceError(`training diverged at step ${t}: layer ${l.name}'s ${slot.spec.role} [${slot.spec.shape}] holds ${params[slot.offset + bad]} (element ${bad}); lower the learning rate, or scale the inputs`);
      }
      const out = plan.outputs[i]!;
      const b = "buffer" in out ? out.buffer : out;
      const values = new Float32Array(await c.engine.read(b, B * product(c.shapes[i + 1]!) * 4));
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DivergenceError(`training diverged at step ${t}: layer ${l.name} (${l.kind}) output [${B}, ${c.shapes[i + 1]}] holds ${values[bad]} at element ${bad}; lower the learning rate, or check the inputs for extreme values`);
    }
    throw new DivergenceError(`training diverged at step ${t}: the loss is not finite although every layer's output is; check the targets for NaN or values outside the loss's range`);
  }

  private async runEval(plan: Plan, ds: Dataset): Promise<[number, number, number]> {
    const c = this.need();
    this.clearMetrics(c.metrics.eval);
    for (let offset = 0; offset < ds.n; offset += plan.B) {
      await plan.step(ds, offset, Math.min(plan.B, ds.n - offset), "eval");
      if ((offset / plan.B) % 4 === 3) await c.engine.device.queue.onSubmittedWorkDone();
    }
    return this.readMetrics(c.metrics.eval);
  }

  /** Loss and accuracy on (x, y), computed on the GPU with one readback. */
  async evaluate(x: Float32Array | Uint8Array, y: ArrayLike<number>, o: { batchSize?: number; inputScale?: number } = {}): Promise<Logs> {
    const ds = this.dataset(x, y, o.inputScale ?? 1 / 255);
    try {
      const plan = await this.plan(Math.min(o.batchSize ?? 32, ds.n));
      return this.logsOf(await this.runEval(plan, ds)) as Logs;
    } finally {
      this.releaseDataset(ds);
    }
  }

  /** Model outputs (probabilities when the model ends in softmax), N × outputs, row-major. */
  async predict(x: Float32Array | Uint8Array, o: { batchSize?: number; inputScale?: number } = {}): Promise<Float32Array> {
    const c = this.need();
    const e = c.engine;
    const ds = this.dataset(x, undefined, o.inputScale ?? 1 / 255);
    const outRow = product(c.shapes[c.shapes.length - 1]!);
    const out = e.createBuffer(ds.n * outRow * 4, "predictions", false);
    try {
      const plan = await this.plan(Math.min(o.batchSize ?? 32, ds.n));
      for (let offset = 0; offset < ds.n; offset += plan.B) {
        const n = Math.min(plan.B, ds.n - offset);
        const src = plan.predictions;
        await plan.step(ds, offset, n, "predict", 0, (enc) => {
          const b = "buffer" in src ? src : { buffer: src, offset: 0 };
          enc.copyBufferToBuffer(b.buffer, b.offset ?? 0, out, offset * outRow * 4, n * outRow * 4);
        });
      }
      return new Float32Array(await e.read(out, ds.n * outRow * 4));
    } finally {
      out.destroy();
      this.releaseDataset(ds);
    }
  }

  /** Parameters by layer and role, e.g. { name: "dense_3/kernel", shape: [5408, 128], data }. */
  async getWeights(): Promise<{ name: string; shape: number[]; data: Float32Array }[]> {
    const c = this.need();
    const all = new Float32Array(await c.engine.read(c.arena.params, c.arena.size * 4));
    const out: { name: string; shape: number[]; data: Float32Array }[] = [];
    for (const [l, slots] of c.paramSlots) for (const s of slots) out.push({ name: `${l.name}/${s.spec.role}`, shape: s.spec.shape, data: all.slice(s.offset, s.offset + s.size) });
    return out;
  }

  /**
   * The parameters as GPU buffer ranges, without a copy: { name, shape, buffer, offset, size } per tensor
   * (all in one arena buffer, bytes). For apps that read weights in their own shaders.
   */
  weightBuffers(): { name: string; shape: number[]; buffer: GPUBuffer; offset: number; size: number }[] {
    const c = this.need();
    return [...c.paramSlots].flatMap(([l, slots]) => slots.map((s) => ({ name: `${l.name}/${s.spec.role}`, shape: s.spec.shape, buffer: c.arena.params, offset: s.offset * 4, size: s.size * 4 })));
  }

  /** Replaces parameters, by name; every parameter must be given with its exact shape. */
  setWeights(weights: { name: string; shape: number[]; data: ArrayLike<number> }[]): void {
    const c = this.need();
    const byName = new Map(weights.map((w) => [w.name, w]));
    const expected = new Set<string>();
    for (const [l, slots] of c.paramSlots) {
      for (const s of slots) {
        const name = `${l.name}/${s.spec.role}`;
        expected.add(name);
        const w = byName.get(name);
        if (!w) throw new DataError(`weights: "${name}" is missing (expected shape [${s.spec.shape}])`);
        if (w.shape.join() !== s.spec.shape.join() || w.data.length !== s.size) throw new ShapeError(`weights: "${name}" has shape [${w.shape}] (${w.data.length} values) but the layer needs [${s.spec.shape}]`);
        c.engine.device.queue.writeBuffer(c.arena.params, s.offset * 4, Float32Array.from(w.data));
      }
    }
    const extra = weights.filter((w) => !expected.has(w.name)).map((w) => w.name);
    if (extra.length) throw new DataError(`weights: unexpected tensors ${extra.join(", ")}; this model has ${[...expected].join(", ")}`);
  }

  dispose(): void {
    const c = this.compiled;
    if (!c) return;
    for (const p of this.plans.values()) void p.then((plan) => plan.destroy());
    for (const b of [c.arena.params, c.arena.grads, c.metrics.train, c.metrics.eval, c.decay, ...c.slots, ...this.staging]) b.destroy();
    c.optimizerStep.destroy();
  }
}

function optimizerOf(o: OptimizerConfig) {
  const cfg = typeof o === "string" ? { type: o } : o;
  if (cfg.type !== "adam" && cfg.type !== "sgd") throw new ConfigError(`unknown optimizer "${(cfg as { type: string }).type}"; use "adam" or "sgd"`);
  const lrOf = (v: LearningRate | undefined, dflt: number): ((step: number) => number) => {
    if (v === undefined) return () => dflt;
    if (typeof v === "number") return () => v;
    if (typeof v === "function") return v;
    return (step) => v.initial * v.decayRate ** (v.staircase ? Math.floor(step / v.decaySteps) : step / v.decaySteps);
  };
  if (cfg.type === "adam") {
    const a = cfg as Extract<OptimizerConfig, { type: "adam" }>;
    return { kind: "adam" as const, lr: lrOf(a.learningRate, 1e-3), beta1: a.beta1 ?? 0.9, beta2: a.beta2 ?? 0.999, eps: a.epsilon ?? 1e-7, momentum: 0 };
  }
  const s = cfg as Extract<OptimizerConfig, { type: "sgd" }>;
  return { kind: "sgd" as const, lr: lrOf(s.learningRate, 0.01), beta1: 0, beta2: 0, eps: 0, momentum: s.momentum ?? 0 };
}
