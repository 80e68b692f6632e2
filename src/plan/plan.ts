// The static plan for one graph and batch size: a timeline of dispatches (gather → forward → loss →
// backward → optimizer), a live interval for every activation, gradient and temporary buffer packed into
// one arena, bind groups built once, and a step recorded into one encoder with one submit.
import type { Engine } from "../engine.ts";
import { ConfigError, GpuError } from "../errors.ts";
import type { Binding, Dispatch } from "../gpu/registry.ts";
import * as K from "../kernels.ts";
import { copyOrAdd } from "../kernels/elementwise.ts";
import { backward, Classes, type BackwardStep } from "../graph/autodiff.ts";
import { opOf, type Node, type SymbolicTensor } from "../graph/graph.ts";
import { mix, OPS, type BackwardIo, type ForwardIo, type SizeArgs, type StepInfo } from "../graph/ops.ts";
import { packIntervals, type Interval } from "./memory.ts";
import type { WeightBindings } from "./weights.ts";

export type LossName = "sparseCategoricalCrossentropy" | "categoricalCrossentropy" | "meanSquaredError" | "binaryCrossentropy";

/** What a plan needs of a model: its graph, where its weights live, and its loss. */
export interface PlanGraph {
  inputs: readonly SymbolicTensor[];
  output: SymbolicTensor;
  /** Topological order. */
  nodes: readonly Node[];
}

export interface PlanOptions {
  graph: PlanGraph;
  weights: WeightBindings;
  B: number;
  /** A training plan has gradients and the optimizer; an inference plan has neither (evaluate, predict). */
  training: boolean;
  loss: LossName;
  /** [loss sum, correct, count] accumulators this plan's loss adds to. */
  metrics: GPUBuffer;
  /** The optimizer's update, encoded after the backward pass. */
  update?: Dispatch;
  /** false: one buffer per tensor, nothing shared (for diagnosing a diverged run). */
  pack?: boolean;
}

/** One dataset on the GPU: an input buffer per model input, targets, and the visiting order. */
export interface Dataset {
  n: number;
  inputs: { buffer: GPUBuffer; kind: "u8" | "f32"; row: number; scale: number }[];
  targets?: { buffer: GPUBuffer; kind: "u32" | "f32"; row: number };
  order: GPUBuffer;
  /** Random shifts and rotations of its image inputs in training steps; `seed` is mixed with each step's. */
  augment?: { shift: number; rotate: number; seed: number };
}

export interface MemoryReport {
  /** The arena: the most bytes activations, gradients and temporaries need at once. */
  peakBytes: number;
  /** What one buffer per tensor, gradient and temporary would take. */
  unpackedBytes: number;
  buffers: number;
}

/** A buffer of the timeline before it has a place in the arena. */
interface Slot extends Interval {
  binding?: GPUBufferBinding;
}

export class Plan {
  readonly B: number;
  readonly training: boolean;
  /** Forward, loss and backward dispatches, in order (for per-kernel timing in the bench and demo). */
  readonly forward: Dispatch[] = [];
  readonly backward: Dispatch[] = [];
  loss!: Dispatch;
  probs?: Dispatch;
  /** The optimizer's update (training plans). */
  readonly update?: Dispatch;
  private arena!: GPUBuffer;
  private readonly slots: Slot[] = [];
  private readonly perStep: { d: Dispatch; values: (s: StepInfo) => Record<string, number>; last?: Record<string, number> }[] = [];
  /** Each dataset's gathers; one that augments carries the seed it mixes with each step's. */
  private readonly gathers = new Map<Dataset, { d: Dispatch; salt?: number }[]>();
  private readonly checkedModes = new Set<string>();
  /** Batch inputs and targets, and the model output as predict() copies it. */
  private xSlots: Slot[] = [];
  private ySlot!: Slot;
  private outSlot!: Slot;
  private readonly activations = new Map<SymbolicTensor, Slot>();

  private constructor(
    readonly engine: Engine,
    private readonly o: PlanOptions,
  ) {
    this.B = o.B;
    this.training = o.training;
    this.update = o.update;
  }

  static async build(engine: Engine, o: PlanOptions): Promise<Plan> {
    if (!Number.isInteger(o.B) || o.B < 1) throw new ConfigError(`batchSize must be a positive integer, got ${o.B}`);
    const plan = new Plan(engine, o);
    try {
      await plan.wire();
    } catch (e) {
      plan.destroy();
      throw e;
    }
    return plan;
  }

  private slot(bytes: number, label: string, time: number): Slot {
    const s: Slot = { bytes: Math.max(16, Math.ceil(bytes / 16) * 16), first: time, last: time, label };
    this.slots.push(s);
    return s;
  }

  private async wire(): Promise<void> {
    const { graph, B, training, weights } = this.o;
    const e = this.engine;
    // Fused where it pays (src/graph/fuse.ts, loaded on first use: only a graph with max pooling after a
    // convolution, or a convolution on an engine with the implicit-GEMM kernels, has anything to fuse);
    // not in an unpacked plan, which exists to show every layer's output, nor on an engine told not to fuse.
    const pooled = graph.nodes.some((n) => n.kind === "maxPool" && n.inputs[0]!.node?.kind === "matmul");
    const implicit = K.hasImplicitConv(e) && graph.nodes.some((n) => n.kind === "im2col");
    let nodes = graph.nodes;
    if (this.o.pack !== false && e.fusion && (pooled || implicit)) {
      const fuse = await import("../graph/fuse.ts");
      nodes = fuse.fuseConvGemm(fuse.fuseConvPool(nodes, [graph.output], B), e);
    }
    const F = nodes.length;
    const lossTime = F + 1;
    const grads = training ? backward(nodes, graph.output) : undefined;
    const steps: BackwardStep[] = grads?.steps ?? [];
    const time = new Map<Node, number>(nodes.map((n, i) => [n, i + 1]));
    const producedAt = new Map<SymbolicTensor, number>(nodes.map((n, i) => [n.output, i + 1]));
    const bwdTime = new Map<Node, number>();
    steps.forEach((s, i) => {
      if (s.kind === "backward") bwdTime.set(s.node, lossTime + 1 + i);
    });
    const touch = (s: Slot, t: number) => {
      s.first = Math.min(s.first, t);
      s.last = Math.max(s.last, t);
    };

    // Activations: one slot per class of tensors sharing memory (reshape; dropout when not training).
    const same = new Classes();
    for (const n of nodes) if (opOf(n).alias(training)) same.union(n.output, n.inputs[0]!);
    const actSlot = (t: SymbolicTensor): Slot => {
      const root = same.find(t);
      let s = this.activations.get(root);
      if (!s) {
        s = this.slot(B * t.size * 4, t.role === "input" ? `batch ${t.name}` : `${t.name} y`, producedAt.get(t) ?? 0);
        this.activations.set(root, s);
      }
      this.activations.set(t, s);
      return s;
    };
    this.xSlots = graph.inputs.map(actSlot);
    const wants = (n: Node) => n.inputs.map((t, i) => !!grads?.gradOf.has(t) && !OPS[n.kind].noGrad?.includes(i));
    for (const n of nodes) {
      const t = time.get(n)!;
      touch(actSlot(n.output), t);
      for (const x of n.inputs) if (x.role === "activation" || x.role === "input") touch(actSlot(x), t);
      const bt = bwdTime.get(n);
      if (bt !== undefined) {
        const keeps = opOf(n).keeps(wants(n));
        for (const i of keeps.inputs) if (n.inputs[i]!.role === "activation" || n.inputs[i]!.role === "input") touch(actSlot(n.inputs[i]!), bt);
        if (keeps.output) touch(actSlot(n.output), bt);
      }
    }
    this.outSlot = actSlot(graph.output);
    touch(this.outSlot, lossTime);
    const targetRow = this.o.loss === "sparseCategoricalCrossentropy" ? 1 : graph.output.size;
    this.ySlot = this.slot(B * targetRow * 4, "batch targets", 0);
    touch(this.ySlot, lossTime);
    const lossSlot = this.slot(B * 4, "per-example loss", lossTime);
    const probsSlot = graph.output.softmax && !training ? this.slot(B * graph.output.size * 4, "probabilities", lossTime) : undefined;
    // The loss kernels always write the output's gradient; an inference plan gives them room to.
    const unusedGrad = training ? undefined : this.slot(B * graph.output.size * 4, "output gradient (unused)", lossTime);

    // Gradients: one slot per class of tensors sharing a gradient buffer; parameters' live in the model's arena.
    const gradSlots = new Map<SymbolicTensor, Slot>();
    const gradSlot = (t: SymbolicTensor): Slot | undefined => {
      if (t.role === "param") return undefined;
      const root = grads!.gradOf.get(t)!;
      let s = gradSlots.get(root);
      if (!s) {
        s = this.slot(B * t.size * 4, `${t.name} dy`, Infinity);
        s.first = Infinity;
        s.last = -Infinity;
        gradSlots.set(root, s);
      }
      return s;
    };
    if (grads) {
      touch(gradSlot(graph.output)!, lossTime);
      steps.forEach((s, i) => {
        const t = lossTime + 1 + i;
        const dy = gradSlot(s.node.output)!;
        touch(dy, t);
        if (s.kind === "copy") {
          const to = gradSlot(s.to.tensor);
          if (to) touch(to, t);
        } else {
          for (const d of s.dx) if (d) { const g = gradSlot(d.tensor); if (g) touch(g, t); }
        }
      });
    }

    // Buffers an op keeps from forward to backward, and its temporaries.
    const sizeArgs = (n: Node): SizeArgs => ({ B, inShapes: n.inputs.map((t) => t.shape), outShape: n.output.shape, needs: wants(n), ctx: e, training });
    const saved = new Map<Node, Map<string, Slot>>();
    const scratch = new Map<string, Slot>();
    for (const n of nodes) {
      const op = opOf(n);
      const a = sizeArgs(n);
      const sv = new Map<string, Slot>();
      for (const [role, count] of Object.entries(op.saved(a))) {
        if (count <= 0) continue;
        const s = this.slot(count * 4, `${n.label} ${role}`, time.get(n)!);
        touch(s, bwdTime.get(n) ?? time.get(n)!);
        sv.set(role, s);
      }
      saved.set(n, sv);
      const passes: ["forward" | "backward", number | undefined][] = [["forward", time.get(n)], ["backward", bwdTime.get(n)]];
      for (const [pass, t] of passes) {
        if (t === undefined) continue;
        for (const [role, count] of Object.entries(op.scratch(a, pass))) {
          if (count > 0) scratch.set(`${n.id} ${pass} ${role}`, this.slot(count * 4, `${n.label} ${role}`, t));
        }
      }
    }

    // Places in one arena, then bindings.
    const limits = e.device.limits;
    const packed = packIntervals(this.slots, limits.minStorageBufferOffsetAlignment, this.o.pack ?? true);
    if (packed.bytes > limits.maxBufferSize) {
      throw new GpuError(`a ${training ? "training" : "inference"} step at batch ${B} needs ${(packed.bytes / 2 ** 20).toFixed(1)} MiB of activations and temporaries, more than this adapter's maxBufferSize (${(limits.maxBufferSize / 2 ** 20).toFixed(1)} MiB); use a smaller batch`);
    }
    this.arena = e.createBuffer(packed.bytes, `activation arena (${training ? "training" : "inference"}, batch ${B})`, undefined, "arena");
    this.slots.forEach((s, i) => {
      if (s.bytes > limits.maxStorageBufferBindingSize) throw new GpuError(`${s.label}: ${s.bytes} bytes at batch ${B} exceeds this adapter's maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize}); use a smaller batch`);
      s.binding = { buffer: this.arena, offset: packed.offsets[i]!, size: s.bytes };
    });
    this.memoryReport = { peakBytes: packed.bytes, unpackedBytes: this.slots.reduce((sum, s) => sum + s.bytes, 0), buffers: this.slots.length };

    const bind = (t: SymbolicTensor): Binding => (t.role === "param" || t.role === "state" ? weights.value(t) : this.activations.get(t)!.binding!);
    const gradBind = (t: SymbolicTensor): Binding => (t.role === "param" ? weights.grad(t) : gradSlot(t)!.binding!);
    const io = (n: Node, pass: "forward" | "backward"): ForwardIo => ({
      ...sizeArgs(n),
      training,
      x: n.inputs.map(bind),
      y: bind(n.output),
      saved: (role) => need(saved.get(n)!.get(role), n, role).binding!,
      scratch: (role) => need(scratch.get(`${n.id} ${pass} ${role}`), n, role).binding!,
      perStep: (d, values) => this.perStep.push({ d, values }),
      label: n.label,
      salt: time.get(n)!,
    });
    for (const n of nodes) {
      if (opOf(n).alias(training)) continue;
      this.forward.push(...(await opOf(n).forward(e, io(n, "forward"))));
    }
    const lossIo = { metrics: this.o.metrics, loss: lossSlot.binding!, dlogits: (grads ? gradSlot(graph.output)! : unusedGrad!).binding! };
    const logits = this.outSlot.binding!;
    const y = this.ySlot.binding!;
    const label = `loss (${training ? "train" : "eval"})`;
    if (this.o.loss === "meanSquaredError" || this.o.loss === "binaryCrossentropy") {
      this.loss = await K.elementLoss(e, this.o.loss === "meanSquaredError" ? "mse" : "bce", { pred: logits, truth: y, loss: lossIo.loss, dpred: lossIo.dlogits, metrics: lossIo.metrics }, B, graph.output.size, B, label);
    } else {
      this.loss = await K.softmaxXent(e, { logits, ...lossIo, ...(this.o.loss === "sparseCategoricalCrossentropy" ? { labels: y } : { targets: y }) }, B, graph.output.size, B, label);
    }
    if (probsSlot) {
      this.probs = await K.softmax(e, logits, probsSlot.binding!, B, graph.output.size);
      this.probsSlot = probsSlot;
    }
    for (const s of steps) {
      const n = s.node;
      if (s.kind === "copy") {
        this.backward.push(await copyOrAdd(e, gradBind(s.from), gradBind(s.to.tensor), B * s.to.tensor.size, s.to.accumulate, `${n.label} d${s.to.tensor.name}`));
        continue;
      }
      const b: BackwardIo = { ...io(n, "backward"), dy: gradBind(n.output), dx: s.dx.map((d) => d && { buffer: gradBind(d.tensor), accumulate: d.accumulate }) };
      this.backward.push(...(await opOf(n).backward(e, b)));
    }
  }

  private memoryReport!: MemoryReport;
  private probsSlot?: Slot;

  /** Peak bytes of the arena beside what one buffer per tensor would take. */
  memory(): MemoryReport {
    return { ...this.memoryReport };
  }

  /** The binding holding an activation after a forward pass (complete only in an unpacked plan). */
  activation(t: SymbolicTensor): GPUBufferBinding | undefined {
    return this.activations.get(t)?.binding;
  }

  private async gathersFor(ds: Dataset): Promise<{ d: Dispatch; salt?: number }[]> {
    let gs = this.gathers.get(ds);
    if (!gs) {
      const e = this.engine;
      const h = { B: this.B, offset: 0, count: this.B };
      gs = [];
      for (const [i, x] of ds.inputs.entries()) {
        const shape = this.o.graph.inputs[i]!.shape;
        // Training plans augment image inputs (H, W, C) of a dataset that asks for it; evaluation never does.
        const augment = this.training && ds.augment && shape.length === 3 ? { ...ds.augment, image: shape as [number, number, number] } : undefined;
        const d = await K.gather(e, { order: ds.order, source: x.buffer, out: this.xSlots[i]!.binding! }, x.kind, { ...h, row: x.row, scale: x.scale }, `gather ${this.o.graph.inputs[i]!.name}`, augment);
        gs.push({ d, salt: augment?.seed });
      }
      if (ds.targets) gs.push({ d: await K.gather(e, { order: ds.order, source: ds.targets.buffer, out: this.ySlot.binding! }, ds.targets.kind, { ...h, row: ds.targets.row, scale: 1 }, "gather targets") });
      this.gathers.set(ds, gs);
    }
    return gs;
  }

  /** True when a step of `mode` on `ds` would submit before step() returns (gathers built, mode checked). */
  warm(ds: Dataset, mode: "train" | "eval" | "predict"): boolean {
    return this.gathers.has(ds) && this.checkedModes.has(mode);
  }

  /**
   * Records one step into one encoder and submits it: "train" (forward, loss, backward, optimizer; a
   * training plan), "eval" (forward and loss) or "predict" (forward, softmax if the model ends in one).
   */
  async step(ds: Dataset, offset: number, nValid: number, mode: "train" | "eval" | "predict", seed = 0, after?: (encoder: GPUCommandEncoder) => void): Promise<void> {
    if (mode === "train" && !this.training) throw new ConfigError("an inference plan cannot train");
    if (mode !== "predict" && !ds.targets) throw new ConfigError(`${mode}: the dataset has no targets`);
    // Known gathers are taken without an await, so a warm step submits before step() returns.
    const gs = this.gathers.get(ds) ?? (await this.gathersFor(ds));
    for (const { d, salt } of gs) d.setUniforms(salt === undefined ? { offset, count: nValid } : { offset, count: nValid, seed: mix(seed, salt) });
    if (mode !== "predict") this.loss.setUniforms({ n_valid: nValid });
    const info = { nValid, seed };
    for (const p of this.perStep) {
      const values = p.values(info);
      // Only uniforms that changed are rewritten (most steps change none but the seed).
      if (p.last && Object.keys(values).every((k) => values[k] === p.last![k])) continue;
      p.d.setUniforms(values);
      p.last = values;
    }
    // The first step of each kind runs inside error scopes, so a mistake in the plan is reported with the
    // label of the op that made it; later steps replay the same commands without the extra round trip.
    if (!this.checkedModes.has(mode)) {
      this.checkedModes.add(mode);
      return this.engine.checked(`${mode} step (batch ${this.B})`, () => this.record(gs, mode, !!ds.targets, after));
    }
    this.record(gs, mode, !!ds.targets, after);
  }

  private record(gs: readonly { d: Dispatch }[], mode: "train" | "eval" | "predict", targets: boolean, after?: (encoder: GPUCommandEncoder) => void): void {
    const encoder = this.engine.device.createCommandEncoder({ label: `${mode} step` });
    const pass = encoder.beginComputePass({ label: `${mode} step` });
    const inputs = targets ? gs.length - 1 : gs.length;
    gs.forEach((g, i) => (i < inputs || mode !== "predict") && g.d.encode(pass));
    for (const d of this.forward) d.encode(pass);
    if (mode !== "predict") this.loss.encode(pass);
    if (mode === "predict") this.probs?.encode(pass);
    if (mode === "train") {
      for (const d of this.backward) d.encode(pass);
      this.update?.encode(pass);
    }
    pass.end();
    after?.(encoder);
    this.engine.device.queue.submit([encoder.finish()]);
  }

  /** Where predict() copies a step's outputs from: probabilities, or the output itself. */
  get predictions(): GPUBufferBinding {
    return (this.probsSlot ?? this.outSlot).binding!;
  }

  /** Drops the gathers of a dataset that is being released. */
  forget(ds: Dataset): void {
    for (const g of this.gathers.get(ds) ?? []) g.d.destroy();
    this.gathers.delete(ds);
  }

  destroy(): void {
    for (const d of [...this.forward, ...this.backward, this.loss, this.probs, ...[...this.gathers.values()].flat().map((g) => g.d)]) d?.destroy();
    this.gathers.clear();
    this.arena?.destroy();
  }
}

function need<T>(v: T | undefined, n: Node, role: string): T {
  if (v === undefined) throw new ConfigError(`${n.label}: the ${n.kind} rule uses a buffer "${role}" it did not size`);
  return v;
}
