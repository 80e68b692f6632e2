// The model's weights on the GPU: trainable parameters first and frozen ones after them in one flat
// arena (so the optimizer is one dispatch over a prefix), their gradients and L2 coefficients in arenas of
// the same layout, and non-trainable state (BatchNorm's moving statistics) in a state arena.
import type { Engine } from "../engine.ts";
import { shown } from "../args.ts";
import { ConfigError, DataError, GpuError, ShapeError } from "../errors.ts";
import type { SymbolicTensor } from "../graph/graph.ts";

export interface NamedWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Bindings of parameters and state, as a plan needs them (the arenas belong to the model, not to a plan). */
export interface WeightBindings {
  value(t: SymbolicTensor): GPUBufferBinding;
  grad(t: SymbolicTensor): GPUBufferBinding;
}

interface Place {
  tensor: SymbolicTensor;
  /** Floats into its arena. */
  offset: number;
  size: number;
}

export class WeightStore implements WeightBindings {
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  readonly decay: GPUBuffer;
  readonly state: GPUBuffer;
  /** Floats in the parameter arena, and how many of them (a prefix) the optimizer updates. */
  readonly size: number;
  readonly trainableSize: number;
  readonly stateSize: number;
  private readonly places = new Map<SymbolicTensor, Place>();

  /** `tensors`: every parameter and state tensor of the model, in the order weights are listed. */
  constructor(
    readonly engine: Engine,
    readonly tensors: readonly SymbolicTensor[],
  ) {
    const align = engine.device.limits.minStorageBufferOffsetAlignment / 4;
    let at = 0;
    const put = (t: SymbolicTensor, offset: number) => {
      this.places.set(t, { tensor: t, offset, size: t.size });
      return Math.ceil((offset + t.size) / align) * align; // binding offsets must be aligned
    };
    const params = tensors.filter((t) => t.role === "param");
    for (const t of params.filter((p) => p.owner?.trainable !== false)) at = put(t, at);
    this.trainableSize = at;
    for (const t of params.filter((p) => p.owner?.trainable === false)) at = put(t, at);
    this.size = Math.max(at, 1);
    let s = 0;
    for (const t of tensors.filter((x) => x.role === "state")) s = put(t, s);
    this.stateSize = Math.max(s, 1);
    const max = engine.device.limits.maxStorageBufferBindingSize;
    if (this.size * 4 > max) {
      const big = params.reduce((a, b) => (b.size > a.size ? b : a));
      throw new GpuError(`the model has ${this.size.toLocaleString("en-US")} parameters (${(this.size / 2 ** 18).toFixed(1)} MiB), more than this adapter binds at once (${(max / 2 ** 20).toFixed(0)} MiB); the largest weight is ${big.name} [${big.shape.join(", ")}]: make that layer smaller`);
    }
    this.params = engine.createBuffer(this.size * 4, "parameters", false, "other");
    this.grads = engine.createBuffer(this.size * 4, "gradients", false, "other");
    this.decay = engine.createBuffer(this.size * 4, "l2 decay", false, "other");
    this.state = engine.createBuffer(this.stateSize * 4, "state (moving statistics)", false, "other");
    const decay = new Float32Array(this.size);
    for (const p of this.places.values()) if (p.tensor.role === "param") decay.fill(2 * (p.tensor.weight?.l2 ?? 0), p.offset, p.offset + p.size); // d(l2·Σw²)/dw = 2·l2·w
    engine.device.queue.writeBuffer(this.decay, 0, decay);
  }

  private place(t: SymbolicTensor): Place {
    const p = this.places.get(t);
    if (!p) throw new ConfigError(`${t.name} is not a weight of this model`);
    return p;
  }

  value(t: SymbolicTensor): GPUBufferBinding {
    const p = this.place(t);
    return { buffer: t.role === "state" ? this.state : this.params, offset: p.offset * 4, size: p.size * 4 };
  }

  grad(t: SymbolicTensor): GPUBufferBinding {
    const p = this.place(t);
    if (t.role !== "param") throw new ConfigError(`${t.name} is state and has no gradient`);
    return { buffer: this.grads, offset: p.offset * 4, size: p.size * 4 };
  }

  /** Every weight, named "layer/role", read back in one round trip per arena. */
  async read(): Promise<NamedWeight[]> {
    const params = new Float32Array(await this.engine.read(this.params, this.size * 4));
    const state = new Float32Array(await this.engine.read(this.state, this.stateSize * 4));
    return this.tensors.map((t) => {
      const p = this.place(t);
      return { name: t.name, shape: [...t.shape], data: (t.role === "state" ? state : params).slice(p.offset, p.offset + p.size) };
    });
  }

  /** Arena images (parameters, state) for a snapshot or a move to another store. */
  async images(): Promise<{ params: Float32Array; state: Float32Array }> {
    return { params: new Float32Array(await this.engine.read(this.params, this.size * 4)), state: new Float32Array(await this.engine.read(this.state, this.stateSize * 4)) };
  }

  /**
   * Replaces weights by name. Every weight must be given with its exact shape and finite values; all are
   * checked before anything is written, so a bad set changes nothing.
   */
  write(weights: readonly { name: string; shape: readonly number[]; data: ArrayLike<number> }[], what = "weights"): void {
    if (!Array.isArray(weights)) throw new DataError(`${what} must be an array of { name, shape, data }, got ${shown(weights)}`);
    const byName = new Map<string, (typeof weights)[number]>();
    for (const [i, w] of weights.entries()) {
      const data = w?.data as unknown;
      const numeric = Array.isArray(data) ? data.every((v) => typeof v === "number") : ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array);
      if (!w || typeof w.name !== "string" || !Array.isArray(w.shape) || !numeric) throw new DataError(`${what}[${i}] must be { name: string, shape: number[], data: Float32Array | number[] }, got ${w && typeof w === "object" ? `{ name: ${shown(w.name)}, shape: ${shown(w.shape)}, data: ${shown(data)} }` : shown(w)}`);
      byName.set(w.name, w);
    }
    const writes: [Place, Float32Array<ArrayBuffer>][] = [];
    for (const t of this.tensors) {
      const w = byName.get(t.name);
      if (!w) throw new DataError(`${what}: "${t.name}" is missing (expected shape [${t.shape}])`);
      if (w.shape.join() !== t.shape.join() || w.data.length !== t.size) throw new ShapeError(`${what}: "${t.name}" has shape [${w.shape}] (${w.data.length} values) but the layer needs [${t.shape}]`);
      const data = new Float32Array(w.data.length);
      data.set(w.data);
      const bad = data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DataError(`${what}: "${t.name}" element ${bad} is ${data[bad]}; weights must be finite`);
      writes.push([this.place(t), data]);
    }
    const known = new Set(this.tensors.map((t) => t.name));
    const extra = weights.filter((w) => !known.has(w.name)).map((w) => w.name);
    if (extra.length) throw new DataError(`${what}: unexpected tensors ${extra.join(", ")}; this model has ${[...known].join(", ")}`);
    for (const [p, data] of writes) this.engine.device.queue.writeBuffer(p.tensor.role === "state" ? this.state : this.params, p.offset * 4, data);
  }

  /** Writes arena images in another store's layout into this one, by tensor. */
  adopt(from: WeightStore, images: { params: Float32Array; state: Float32Array }, extra: { src: Float32Array; dst: GPUBuffer }[] = []): void {
    const params = new Float32Array(this.size);
    const state = new Float32Array(this.stateSize);
    const remaps: { src: Float32Array; out: Float32Array<ArrayBuffer>; dst: GPUBuffer }[] = extra.map((x) => ({ src: x.src, out: new Float32Array(this.size), dst: x.dst }));
    for (const t of this.tensors) {
      const a = from.place(t);
      const b = this.place(t);
      if (t.role === "state") state.set(images.state.subarray(a.offset, a.offset + a.size), b.offset);
      else {
        params.set(images.params.subarray(a.offset, a.offset + a.size), b.offset);
        for (const r of remaps) r.out.set(r.src.subarray(a.offset, a.offset + a.size), b.offset);
      }
    }
    const q = this.engine.device.queue;
    q.writeBuffer(this.params, 0, params);
    q.writeBuffer(this.state, 0, state);
    for (const r of remaps) q.writeBuffer(r.dst, 0, r.out);
  }

  /** Keras initialisers from a seed: glorot uniform kernels, zero biases, unit scales. */
  initialise(random: () => number): void {
    const params = new Float32Array(this.size);
    const state = new Float32Array(this.stateSize);
    for (const t of this.tensors) {
      const p = this.place(t);
      const init = t.weight?.init ?? { kind: "zeros" };
      const out = t.role === "state" ? state : params;
      if (init.kind === "ones") out.fill(1, p.offset, p.offset + p.size);
      if (init.kind === "glorotUniform") {
        const limit = Math.sqrt(6 / (init.fanIn + init.fanOut));
        for (let j = 0; j < p.size; j++) out[p.offset + j] = (random() * 2 - 1) * limit;
      }
    }
    this.engine.device.queue.writeBuffer(this.params, 0, params);
    this.engine.device.queue.writeBuffer(this.state, 0, state);
  }

  /** Parameter and state ranges as GPU buffer bindings, without a copy. */
  bindings(): { name: string; shape: number[]; buffer: GPUBuffer; offset: number; size: number }[] {
    return this.tensors.map((t) => {
      const b = this.value(t);
      return { name: t.name, shape: [...t.shape], buffer: b.buffer, offset: b.offset!, size: b.size! };
    });
  }

  /** Which weight holds a flat parameter index (for divergence diagnosis). */
  locate(index: number): { tensor: SymbolicTensor; element: number } | undefined {
    for (const p of this.places.values()) if (p.tensor.role === "param" && index >= p.offset && index < p.offset + p.size) return { tensor: p.tensor, element: index - p.offset };
    return undefined;
  }

  destroy(): void {
    for (const b of [this.params, this.grads, this.decay, this.state]) b.destroy();
  }
}
