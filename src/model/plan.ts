// The static plan for one batch size: every buffer allocated once, every bind group built once, and a
// training step that replays gather → forward → loss → backward → optimizer in one encoder, one submit.
import type { Engine } from "../engine.ts";
import type { Binding, Dispatch } from "../gpu/registry.ts";
import * as K from "../kernels.ts";
import { LAYER_RULES, type Layer, type LayerIo } from "./layers.ts";
import type { CompiledModel, Dataset } from "./model.ts";

const floats = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** One dataset's gather dispatches for this plan (built once per dataset). */
interface Gathers {
  x: Dispatch;
  y: Dispatch;
}

export class Plan {
  readonly forward: Dispatch[] = [];
  readonly backward: Dispatch[] = [];
  /** Loss dispatches accumulating into the training and the evaluation metrics. */
  trainLoss!: Dispatch;
  evalLoss!: Dispatch;
  /** Softmax for predict(), when the model ends in softmax. */
  probs?: { dispatch: Dispatch; buffer: GPUBuffer };
  readonly xBatch: GPUBuffer;
  readonly yBatch: GPUBuffer;
  /** Output of each layer, (B, ...outShape). */
  readonly outputs: Binding[] = [];
  private readonly gathers = new Map<Dataset, Gathers>();
  private readonly dropouts: { dispatch: Dispatch; rate: number }[] = [];
  private readonly owned: GPUBuffer[] = [];

  private constructor(
    readonly engine: Engine,
    readonly model: CompiledModel,
    readonly B: number,
  ) {
    const e = engine;
    this.xBatch = this.own(e.createBuffer(B * floats(model.inputShape) * 4, "batch x"));
    this.yBatch = this.own(e.createBuffer(B * model.targetRow * 4, "batch y"));
  }

  private own(b: GPUBuffer): GPUBuffer {
    this.owned.push(b);
    return b;
  }

  static async build(engine: Engine, model: CompiledModel, B: number): Promise<Plan> {
    const plan = new Plan(engine, model, B);
    await plan.wire();
    return plan;
  }

  private async wire(): Promise<void> {
    const e = this.engine;
    const m = this.model;
    const B = this.B;
    const layers = m.layers;
    // Layer outputs live from forward to backward; alias layers (Flatten) share their input's buffer.
    let input: Binding = this.xBatch;
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i]!;
      const out: Binding = LAYER_RULES[l.kind].aliases ? input : this.own(e.createBuffer(B * floats(m.shapes[i + 1]!) * 4, `${l.name} y`));
      this.outputs.push(out);
      input = out;
    }
    // Gradients w.r.t. layer outputs ping-pong between two buffers: dy of layer i dies once dx is written.
    const gradFloats = Math.max(...m.shapes.slice(1).map((s) => B * floats(s)));
    const g = [this.own(e.createBuffer(gradFloats * 4, "gradient ping")), this.own(e.createBuffer(gradFloats * 4, "gradient pong"))];
    const dyOf: GPUBuffer[] = new Array(layers.length);
    dyOf[layers.length - 1] = g[0]!;
    for (let i = layers.length - 1; i > 0; i--) {
      dyOf[i - 1] = LAYER_RULES[layers[i]!.kind].aliases ? dyOf[i]! : dyOf[i] === g[0] ? g[1]! : g[0]!;
    }
    const firstWithParams = layers.findIndex((l) => m.paramSlots.has(l));
    // Scratch buffers are used inside one layer's dispatches only, so all layers share one per role.
    const scratchFloats = new Map<string, number>();
    layers.forEach((l, i) => {
      const sizes = (LAYER_RULES[l.kind] as (typeof LAYER_RULES)["conv2d"]).scratch?.(l.config as never, m.shapes[i]!, B, l.name) ?? {};
      for (const [role, n] of Object.entries(sizes)) if (n > 0) scratchFloats.set(role, Math.max(scratchFloats.get(role) ?? 0, n));
    });
    const scratch = new Map([...scratchFloats].map(([role, n]) => [role, this.own(e.createBuffer(n * 4, `scratch ${role}`))]));
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i]!;
      const slots = m.paramSlots.get(l) ?? [];
      const kept = new Map<string, GPUBuffer>();
      const io: LayerIo = {
        B,
        inShape: m.shapes[i]!,
        outShape: m.shapes[i + 1]!,
        x: i === 0 ? this.xBatch : this.outputs[i - 1]!,
        y: this.outputs[i]!,
        dy: dyOf[i]!,
        // Gradients nobody needs are not computed: no dx below the first layer with parameters.
        dx: firstWithParams >= 0 && i > firstWithParams ? dyOf[i - 1] : undefined,
        params: slots.map((s) => ({ buffer: m.arena.params, offset: s.offset * 4, size: s.size * 4 })),
        grads: slots.map((s) => ({ buffer: m.arena.grads, offset: s.offset * 4, size: s.size * 4 })),
        keep: (role, n) => {
          let b = kept.get(role);
          if (!b) {
            b = this.own(e.createBuffer(n * 4, `${l.name} ${role}`));
            kept.set(role, b);
          }
          return b;
        },
        scratch: (role) => scratch.get(role)!,
      };
      const rule = LAYER_RULES[l.kind] as (typeof LAYER_RULES)["dense"];
      const config = l.config as never;
      const fwd = await rule.forward(e, config, io, l.name);
      const bwd = await rule.backward(e, config, io, l.name);
      this.forward.push(...fwd);
      this.backward.unshift(...bwd);
      if (l.kind === "dropout") for (const d of [...fwd, ...bwd]) this.dropouts.push({ dispatch: d, rate: (l as Layer<"dropout">).config.rate });
    }
    // Loss: its gradient is the last layer's dy.
    const last = this.outputs[layers.length - 1]!;
    const outRow = floats(m.shapes[layers.length]!);
    const lossBuf = this.own(e.createBuffer(B * 4, "per-example loss"));
    const lossFor = async (metrics: GPUBuffer, label: string) => {
      if (m.loss === "meanSquaredError" || m.loss === "binaryCrossentropy") {
        return K.elementLoss(e, m.loss === "meanSquaredError" ? "mse" : "bce", { pred: last, truth: this.yBatch, loss: lossBuf, dpred: g[0]!, metrics }, B, outRow, B, label);
      }
      const io = { logits: last, loss: lossBuf, dlogits: g[0]!, metrics, ...(m.loss === "sparseCategoricalCrossentropy" ? { labels: this.yBatch } : { targets: this.yBatch }) };
      return K.softmaxXent(e, io, B, outRow, B, label);
    };
    this.trainLoss = await lossFor(m.metrics.train, "loss (train)");
    this.evalLoss = await lossFor(m.metrics.eval, "loss (eval)");
    if (m.endsInSoftmax) {
      const buffer = this.own(e.createBuffer(B * outRow * 4, "probabilities"));
      this.probs = { dispatch: await K.softmax(e, last, buffer, B, outRow), buffer };
    }
  }

  private async gathersFor(ds: Dataset): Promise<Gathers> {
    let gs = this.gathers.get(ds);
    if (!gs) {
      const e = this.engine;
      const h = { B: this.B, offset: 0, count: this.B };
      gs = {
        x: await K.gather(e, { order: ds.order, source: ds.x, out: this.xBatch }, ds.xKind, { ...h, row: ds.xRow, scale: ds.scale }, "gather x"),
        y: await K.gather(e, { order: ds.order, source: ds.y, out: this.yBatch }, ds.yKind, { ...h, row: ds.yRow, scale: 1 }, "gather y"),
      };
      this.gathers.set(ds, gs);
    }
    return gs;
  }

  /** Records one step into one encoder and submits it: train (with backward and update) or evaluate. */
  async step(ds: Dataset, offset: number, nValid: number, mode: "train" | "eval" | "predict", seed = 0, after?: (encoder: GPUCommandEncoder) => void): Promise<void> {
    const gs = await this.gathersFor(ds);
    const u = { offset, count: nValid };
    gs.x.setUniforms(u);
    gs.y.setUniforms(u);
    const loss = mode === "train" ? this.trainLoss : this.evalLoss;
    if (mode !== "predict") loss.setUniforms({ n_valid: nValid });
    for (const d of this.dropouts) d.dispatch.setUniforms({ seed, rate: mode === "train" ? d.rate : 0 });
    // The first step of each kind runs inside error scopes, so a mistake in the plan is reported with the
    // label of the op that made it; later steps replay the same commands without the extra round trip.
    if (!this.checkedModes.has(mode)) {
      this.checkedModes.add(mode);
      return this.engine.checked(`${mode} step (batch ${this.B})`, () => this.record(gs, loss, mode, after));
    }
    this.record(gs, loss, mode, after);
  }

  private readonly checkedModes = new Set<string>();

  private record(gs: Gathers, loss: Dispatch, mode: "train" | "eval" | "predict", after?: (encoder: GPUCommandEncoder) => void): void {
    const encoder = this.engine.device.createCommandEncoder({ label: `${mode} step` });
    const pass = encoder.beginComputePass({ label: `${mode} step` });
    gs.x.encode(pass);
    if (mode !== "predict") gs.y.encode(pass);
    for (const d of this.forward) d.encode(pass);
    if (mode !== "predict") loss.encode(pass);
    if (mode === "predict") this.probs?.dispatch.encode(pass);
    if (mode === "train") {
      for (const d of this.backward) d.encode(pass);
      this.model.optimizerStep.encode(pass);
    }
    pass.end();
    after?.(encoder);
    this.engine.device.queue.submit([encoder.finish()]);
  }

  /** Drops the gather dispatches of a dataset that is being released. */
  forget(ds: Dataset): void {
    const gs = this.gathers.get(ds);
    gs?.x.destroy();
    gs?.y.destroy();
    this.gathers.delete(ds);
  }

  /** The buffer predict() copies from after a predict step. */
  get predictions(): Binding {
    return this.probs?.buffer ?? this.outputs[this.outputs.length - 1]!;
  }

  destroy(): void {
    for (const d of [...this.forward, ...this.backward, this.trainLoss, this.evalLoss, ...[...this.gathers.values()].flatMap((g) => [g.x, g.y])]) d?.destroy();
    this.probs?.dispatch.destroy();
    for (const b of this.owned) b.destroy();
  }
}
