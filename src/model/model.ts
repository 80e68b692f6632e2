// The Keras-shaped facade: a functional Model (Input → layer.apply → Model({ inputs, outputs })) and
// Sequential, a chain builder over the same graph. compile() checks the graph and creates a session;
// fit, evaluate and predict hand it to src/train.
import { flag, optionsOf, shown } from "../args.ts";
import { checkEngineOptions, Engine, type EngineOptions } from "../engine.ts";
import { ConfigError, ShapeError } from "../errors.ts";
import { Input, topologicalNodes, type Node, type SymbolicTensor } from "../graph/graph.ts";
import type { Layer } from "../graph/layers.ts";
import type { Plan, LossName, MemoryReport } from "../plan/plan.ts";
import type { NamedWeight } from "../plan/weights.ts";
import { BatchRunner, type BatchTrainee } from "../train/batch.ts";
import { fit, type FitOptions, type History } from "../train/fit.ts";
import { evaluate, predict } from "../train/infer.ts";
import type { Logs } from "../train/metrics.ts";
import { optimizerOf, type OptimizerConfig } from "../train/optimizer.ts";
import type { KernelTime } from "../train/diagnostics.ts";
import { mulberry32 } from "../train/random.ts";
import { Recovery } from "../train/recovery.ts";
import { Session } from "../train/session.ts";

export type { LossName, OptimizerConfig };
const LOSSES: LossName[] = ["sparseCategoricalCrossentropy", "categoricalCrossentropy", "meanSquaredError", "binaryCrossentropy"];
const METRICS = ["accuracy", "acc", "loss"];

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

interface Built {
  inputs: SymbolicTensor[];
  output: SymbolicTensor;
  nodes: Node[];
  /** Layers in the order they are first used; each once. */
  layers: Layer[];
  weights: SymbolicTensor[];
}

const shapeText = (s: readonly number[]) => `(None, ${s.join(", ")})`;

export class Model implements BatchTrainee {
  session!: Session;
  /** Optimizer steps taken so far. */
  step = 0;
  stopTraining = false;
  seed = 1;
  engineOptions?: EngineOptions;
  /** Optimizer steps between recovery snapshots in trainOnBatch (default 200; 0: none); fit() has its own option. */
  recoverySnapshotEvery = 200;
  private built?: Built;
  private running = false;
  private snapshots?: Recovery;
  private readonly batches = new BatchRunner(this);

  constructor(private readonly io?: { inputs: SymbolicTensor | SymbolicTensor[]; outputs: SymbolicTensor | SymbolicTensor[]; name?: string }) {
    if (io === undefined) return; // Sequential builds its graph from its layers
    if (typeof io !== "object" || io === null || Array.isArray(io)) throw new ConfigError(`Model takes { inputs, outputs, name? } (symbolic tensors from Input() and layer.apply()), got ${shown(io)}`);
    if (io.name !== undefined && typeof io.name !== "string") throw new ConfigError(`Model: name must be a string, got ${shown(io.name)}`);
    this.graph();
  }

  /** The graph from inputs to outputs (Sequential builds it from its layers). */
  protected build(): { inputs: SymbolicTensor[]; outputs: SymbolicTensor[] } {
    const io = this.io!;
    const list = (v: SymbolicTensor | SymbolicTensor[], what: string) => {
      const l = Array.isArray(v) ? v : [v];
      if (l.length === 0 || l.some((t) => !t || typeof t !== "object" || !("role" in t))) throw new ConfigError(`Model: ${what} must be symbolic tensors from Input() and layer.apply(), got ${shown(v)}`);
      return l;
    };
    return { inputs: list(io.inputs, "inputs"), outputs: list(io.outputs, "outputs") };
  }

  protected graph(): Built {
    if (this.built) return this.built;
    const { inputs, outputs } = this.build();
    if (inputs.some((t) => t.role !== "input")) throw new ConfigError(`Model: inputs must come from Input(), got ${inputs.filter((t) => t.role !== "input").map((t) => t.name).join(", ")}`);
    if (outputs.length !== 1) throw new ConfigError(`Model: one output is supported, got ${outputs.length}; concatenate them into one with Concatenate`);
    const nodes = topologicalNodes(inputs, outputs);
    const layers: Layer[] = [];
    for (const n of nodes) if (!layers.includes(n.owner as Layer)) layers.push(n.owner as Layer);
    const weights = layers.flatMap((l) => l.weights ?? []);
    const used = new Set(nodes.flatMap((n) => n.inputs));
    const unused = inputs.filter((t) => !used.has(t) && t !== outputs[0]);
    if (unused.length) throw new ConfigError(`Model: input ${unused.map((t) => `"${t.name}"`).join(", ")} is not used to compute the output`);
    this.built = { inputs, output: outputs[0]!, nodes, layers, weights };
    return this.built;
  }

  protected forget(): void {
    this.built = undefined;
  }

  get inputs(): readonly SymbolicTensor[] {
    return this.graph().inputs;
  }

  get output(): SymbolicTensor {
    return this.graph().output;
  }

  get layers(): readonly Layer[] {
    return this.graph().layers;
  }

  get engine(): Engine {
    return this.need().engine;
  }

  private disposed = false;

  private need(): Session {
    if (this.disposed) throw new ConfigError("the model was disposed; build and compile a new one");
    if (!this.session) throw new ConfigError("call compile() before training or using the model");
    if ((this.session.engine.gpu.lost || this.session.engine.disposed) && !this.running) this.session.engine.throwIfFailed();
    return this.session;
  }

  /** A Keras-style table: layers, output shapes, parameter counts, and what each layer is connected to. */
  summary(): string {
    const g = this.graph();
    const functional = !(this instanceof Sequential);
    const producer = new Map<SymbolicTensor, string>();
    for (const l of g.layers) for (const c of l.calls) producer.set(c.output, l.name);
    const rows = g.inputs.filter(() => functional).map((t) => [`${t.name} (InputLayer)`, shapeText(t.shape), "0", ""]);
    for (const l of g.layers) {
      for (const [i, c] of l.calls.filter((c) => g.nodes.some((n) => n.output === c.output)).entries()) {
        rows.push([i === 0 ? `${l.name} (${l.kind})` : "", shapeText(c.output.shape), i === 0 ? String(l.parameterCount) : "", c.inputs.map((t) => producer.get(t) ?? t.name).join(", ")]);
      }
    }
    const cols = functional ? 4 : 3;
    const heads = ["Layer (type)", "Output Shape", "Param #", "Connected to"].slice(0, cols);
    const w = heads.map((h, i) => Math.max(h.length + 2, [28, 22, 12, 20][i]!, ...rows.map((r) => r[i]!.length + 2)));
    const line = (cells: string[]) => cells.slice(0, cols).map((c, i) => c.padEnd(w[i]!)).join("").trimEnd();
    const rule = "─".repeat(w.reduce((a, b) => a + b, 0));
    const total = g.weights.reduce((s, t) => s + t.size, 0);
    const trainable = g.weights.filter((t) => t.role === "param" && t.owner?.trainable !== false).reduce((s, t) => s + t.size, 0);
    return [rule, line(heads), rule, ...rows.map(line), rule, `Total params: ${total.toLocaleString("en-US")}`, `Trainable params: ${trainable.toLocaleString("en-US")}`, `Non-trainable params: ${(total - trainable).toLocaleString("en-US")}`, rule].join("\n");
  }

  /**
   * Checks the graph against the loss and creates the model's GPU state. Compiling again (to change the
   * optimizer or learning rate, or after freezing layers) keeps the trained weights.
   */
  async compile(o: CompileOptions): Promise<void> {
    if (!o || typeof o !== "object") throw new ConfigError(`compile() takes { loss, optimizer?, metrics?, seed?, engine? }, got ${shown(o)}`);
    optionsOf(o, "compile()", ["loss", "optimizer", "metrics", "seed", "engine", "engineOptions"]);
    if (this.running) throw new ConfigError("compile() while fit() is running on this model; wait for it to finish");
    if (this.batches.busy) throw new ConfigError("compile() while per-batch calls are still queued on this model; await them first");
    if (o.loss === undefined) throw new ConfigError(`compile(): loss is required; use one of ${LOSSES.join(", ")}`);
    if (!LOSSES.includes(o.loss)) throw new ConfigError(`unknown loss "${o.loss}"; use one of ${LOSSES.join(", ")}`);
    if (o.metrics !== undefined && !Array.isArray(o.metrics)) throw new ConfigError(`metrics must be an array of names (${METRICS.join(", ")})`);
    for (const m of o.metrics ?? []) if (!METRICS.includes(m)) throw new ConfigError(`unknown metric "${m}"; supported: ${METRICS.join(", ")}`);
    if (o.seed !== undefined && (typeof o.seed !== "number" || !Number.isInteger(o.seed))) throw new ConfigError(`seed must be an integer, got ${shown(o.seed)}`);
    if (o.engine !== undefined && !(o.engine instanceof Engine)) throw new ConfigError(`engine must be an Engine (from Engine.create()), got ${shown(o.engine)}`);
    if (o.engine?.disposed) o.engine.throwIfFailed();
    if (o.engineOptions !== undefined) checkEngineOptions(o.engineOptions, "compile(): engineOptions");
    const optimizer = optimizerOf(o.optimizer === undefined ? "adam" : o.optimizer);
    const g = this.graph();
    checkLoss(g, o.loss);
    const previous = this.session && !this.session.engine.gpu.lost ? await this.session.store.read() : undefined;
    const engine = o.engine ?? this.session?.engine ?? (await Engine.create(o.engineOptions));
    const session = await Session.create(engine, { graph: g, weights: g.weights, loss: o.loss, optimizer });
    this.session?.destroy();
    this.snapshots?.destroy();
    this.snapshots = undefined;
    this.session = session;
    this.seed = o.seed ?? 1;
    this.engineOptions = o.engineOptions;
    if (previous) session.store.write(previous, "weights kept from the previous compile");
    else session.store.initialise(mulberry32(this.seed));
  }

  /** Trains on (x, y). x: one Float32Array/Uint8Array, or an array or { inputName: data } of them for several inputs. */
  async fit(x: unknown, y: unknown, o: FitOptions = {}): Promise<History> {
    this.need();
    if (this.running) throw new ConfigError("fit() is already running on this model; await it before calling fit() again");
    if (this.batches.busy) throw new ConfigError("fit() while per-batch calls are still queued on this model; await them first");
    this.running = true;
    try {
      return await fit(this, x, y, o ?? {});
    } finally {
      this.running = false;
    }
  }

  /**
   * One optimizer step on one batch (Keras's train_on_batch): the batch is written into buffers kept for
   * its shape and the step is submitted before this returns, once its batch size is warm. The loss and
   * accuracy of that batch are read back only if the result is awaited, so calls may be made back to back
   * and only the last awaited. Device loss: the next call restores the model from its last recovery
   * snapshot (every `recoverySnapshotEvery` steps) and rejects, saying which step training is back at.
   */
  trainOnBatch(x: unknown, y: unknown, o: { inputScale?: number } = {}): Promise<Logs> {
    return this.perBatch("trainOnBatch()", o, (opts) => this.batches.train(x, y, opts));
  }

  /** Loss and accuracy on one batch, as evaluate() computes them (inference: moving statistics, no dropout); read only when awaited. */
  testOnBatch(x: unknown, y: unknown, o: { inputScale?: number } = {}): Promise<Logs> {
    return this.perBatch("testOnBatch()", o, (opts) => this.batches.test(x, y, opts));
  }

  /** The model's outputs for one batch, as predict() gives them. */
  predictOnBatch(x: unknown, o: { inputScale?: number } = {}): Promise<Float32Array> {
    return this.perBatch("predictOnBatch()", o, (opts) => this.batches.predict(x, opts));
  }

  /**
   * A per-batch call's checks, as a rejected promise rather than a throw. Per-batch calls recover a lost
   * device themselves, so only a missing or disposed model (or a running fit) is refused here.
   */
  private perBatch<T>(what: string, o: { inputScale?: number }, call: (o: { inputScale?: number }) => Promise<T>): Promise<T> {
    try {
      if (this.disposed) throw new ConfigError("the model was disposed; build and compile a new one");
      if (!this.session) throw new ConfigError("call compile() before training or using the model");
      if (this.running) throw new ConfigError(`${what} while fit() is running on this model; await fit() first`);
      if (this.session.engine.disposed) this.session.engine.throwIfFailed();
      return call(optionsOf(o ?? {}, what, ["inputScale"]));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The model's device-loss snapshots for its current session (fit() and trainOnBatch share them). */
  recovery(): Recovery {
    if (this.snapshots?.current !== this.session) {
      this.snapshots?.destroy();
      this.snapshots = new Recovery(this.session);
    }
    return this.snapshots;
  }

  /** Loss and accuracy on (x, y), computed on the GPU with one readback. */
  evaluate(x: unknown, y: unknown, o: { batchSize?: number; inputScale?: number } = {}): Promise<Logs> {
    return evaluate(this.need(), x, y, optionsOf(o, "evaluate()", ["batchSize", "inputScale"]));
  }

  /** Model outputs (probabilities when the model ends in softmax), N × outputs, row-major. */
  predict(x: unknown, o: { batchSize?: number; inputScale?: number } = {}): Promise<Float32Array> {
    return predict(this.need(), x, optionsOf(o, "predict()", ["batchSize", "inputScale"]));
  }

  /** The training plan for a batch size (its dispatches, for timing), built once. */
  plan(batchSize: number): Promise<Plan> {
    return this.need().plan(batchSize, true);
  }

  /**
   * GPU time of each kernel of a training step at a batch size (forward, loss, backward; the optimizer
   * is one more dispatch), from timestamp queries; undefined where the adapter lacks timestamp-query.
   * The step is replayed on what the plan holds, and training is left exactly as it was. The replay's
   * code loads on the first call (src/train/diagnostics.ts: a file of its own in the library build).
   */
  kernelTimes(batchSize: number): Promise<KernelTime[] | undefined> {
    try {
      if (typeof batchSize !== "number" || !Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError(`kernelTimes(): batchSize must be a positive integer, got ${shown(batchSize)}`);
      const session = this.need();
      return import("../train/diagnostics.ts").then((d) => d.kernelTimes(session, batchSize));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Peak activation memory of a step at a batch size, beside what one buffer per tensor would take. */
  async memory(batchSize: number, training = true): Promise<MemoryReport> {
    flag(training, "memory(): training");
    return (await this.need().plan(batchSize, training)).memory();
  }

  /** Every weight by layer and role, e.g. { name: "dense_3/kernel", shape: [5408, 128], data }; BatchNorm's moving statistics included. */
  getWeights(): Promise<NamedWeight[]> {
    return this.need().store.read();
  }

  /** Replaces every weight by name with its exact shape; nothing is written unless all are valid. */
  setWeights(weights: { name: string; shape: number[]; data: ArrayLike<number> }[]): void {
    this.need().store.write(weights);
  }

  /** The weights as GPU buffer ranges, without a copy: { name, shape, buffer, offset, size } (bytes). */
  weightBuffers(): { name: string; shape: number[]; buffer: GPUBuffer; offset: number; size: number }[] {
    return this.need().store.bindings();
  }

  /** Frees the model's GPU memory; the engine (which may be shared) stays. */
  dispose(): void {
    this.batches.destroy();
    this.snapshots?.destroy();
    this.session?.destroy();
    this.disposed = true;
  }
}

/** Checks that the graph's output fits the loss; errors name the layer. */
function checkLoss(g: Built, loss: LossName): void {
  for (const n of g.nodes) if (n.output.softmax && n.output !== g.output) throw new ConfigError(`layer ${n.owner.name}: softmax is supported on the model's output only`);
  const out = g.output;
  if (out.shape.length !== 1) throw new ShapeError(`the model's output must be a vector per example, got [${out.shape}]; add Flatten (or GlobalAveragePooling2D) and Dense layers`);
  const act = out.softmax ? "softmax" : ((out.node?.config as { act?: string } | undefined)?.act ?? "linear");
  const ce = loss === "sparseCategoricalCrossentropy" || loss === "categoricalCrossentropy";
  if (ce && act !== "softmax" && act !== "linear") throw new ConfigError(`loss ${loss} needs the last layer to end in softmax (or linear logits), not ${act}`);
  if (!ce && act === "softmax") throw new ConfigError(`loss ${loss} with a softmax output is not supported; use categoricalCrossentropy`);
}

/** A linear stack of layers: the first needs `inputShape`. */
export class Sequential extends Model {
  private readonly stack: Layer[] = [];

  constructor(layers: Layer[] = []) {
    super();
    if (!Array.isArray(layers)) throw new ConfigError(`Sequential takes an array of layers, got ${shown(layers)}`);
    for (const l of layers) this.add(l);
  }

  add(layer: Layer): this {
    if (this.session) throw new ConfigError("add() after compile(): build the model completely, then compile it");
    if (!layer || typeof (layer as { apply?: unknown }).apply !== "function") throw new ConfigError(`Sequential.add takes a layer (Dense(...), Conv2D(...), ...), got ${shown(layer)}`);
    this.stack.push(layer);
    this.forget();
    return this;
  }

  protected override build(): { inputs: SymbolicTensor[]; outputs: SymbolicTensor[] } {
    const first = this.stack[0];
    if (!first) throw new ConfigError("the model has no layers");
    if (!first.inputShape) throw new ShapeError(`layer ${first.name}: the first layer needs inputShape (e.g. inputShape: [28, 28, 1])`);
    const input = Input({ shape: first.inputShape, name: "input" });
    let t = input;
    for (const l of this.stack) t = l.apply(t);
    return { inputs: [input], outputs: [t] };
  }

  override get layers(): readonly Layer[] {
    return this.stack;
  }

  /** Per-example shapes through the stack: the input's, then each layer's output. */
  shapes(): number[][] {
    const g = this.graph();
    return [[...g.inputs[0]!.shape], ...this.stack.map((l) => [...l.calls.at(-1)!.output.shape])];
  }
}
