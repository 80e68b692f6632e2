// Layers and the op table: for every layer kind, its shape rule, parameters, forward and backward
// dispatches, side by side. The table is typed so that a layer kind without a backward does not compile.
import { ConfigError, ShapeError } from "../errors.ts";
import { planWindow, type Padding, type WindowPlan } from "../geometry.ts";
import type { Binding, Dispatch } from "../gpu/registry.ts";
import * as K from "../kernels.ts";
import type { Activation as Act, KernelContext } from "../kernels.ts";

export type OutputActivation = Act | "softmax";
type Pair = number | [number, number];

export interface LayerConfigs {
  conv2d: { filters: number; kernelSize: Pair; strides?: Pair; padding?: Padding; activation?: OutputActivation; useBias?: boolean; kernelRegularizer?: { l2: number } };
  maxPooling2d: { poolSize?: Pair; strides?: Pair; padding?: Padding };
  averagePooling2d: { poolSize?: Pair; strides?: Pair; padding?: Padding };
  flatten: Record<string, never>;
  dense: { units: number; activation?: OutputActivation; useBias?: boolean; kernelRegularizer?: { l2: number } };
  dropout: { rate: number };
  activation: { activation: OutputActivation };
}
export type LayerKind = keyof LayerConfigs;

interface Common {
  name?: string;
  /** Shape of one example, without the batch dimension; needed on the first layer. */
  inputShape?: number[];
}

let layerCounter = 0;

export class Layer<Kd extends LayerKind = LayerKind> {
  readonly name: string;
  readonly inputShape?: number[];
  constructor(
    readonly kind: Kd,
    readonly config: LayerConfigs[Kd],
    common: Common = {},
  ) {
    this.name = common.name ?? `${kind}_${++layerCounter}`;
    this.inputShape = common.inputShape;
  }
}

export const Conv2D = (c: LayerConfigs["conv2d"] & Common) => new Layer("conv2d", c, c);
export const MaxPooling2D = (c: LayerConfigs["maxPooling2d"] & Common = {}) => new Layer("maxPooling2d", c, c);
export const AveragePooling2D = (c: LayerConfigs["averagePooling2d"] & Common = {}) => new Layer("averagePooling2d", c, c);
export const Flatten = (c: Common = {}) => new Layer("flatten", {} as Record<string, never>, c);
export const Dense = (c: LayerConfigs["dense"] & Common) => new Layer("dense", c, c);
export const Dropout = (c: LayerConfigs["dropout"] & Common) => new Layer("dropout", c, c);
export const Activation = (c: LayerConfigs["activation"] & Common) => new Layer("activation", c, c);

export interface ParamSpec {
  role: "kernel" | "bias";
  shape: number[];
  /** Keras initialisers: glorotUniform for kernels, zeros for biases. */
  init: { kind: "glorotUniform"; fanIn: number; fanOut: number } | { kind: "zeros" };
  l2: number;
}

/** The buffers of one layer in a plan. x/y are (B, ...inShape)/(B, ...outShape); dx is absent when no one needs it. */
export interface LayerIo {
  B: number;
  inShape: number[];
  outShape: number[];
  x: Binding;
  y: Binding;
  dy: Binding;
  dx?: Binding;
  params: Binding[];
  grads: Binding[];
  /** Buffers kept from forward to backward (cols, argmax), by role. */
  keep(role: string, floats: number): Binding;
  /** Buffers used within one layer's dispatches only, shared between layers (sized by the rule's scratch()). */
  scratch(role: string): Binding;
}

export interface LayerRule<Kd extends LayerKind> {
  outputShape(c: LayerConfigs[Kd], inShape: number[], name: string): number[];
  params(c: LayerConfigs[Kd], inShape: number[]): ParamSpec[];
  /** Flatten: y is x, dx is dy; no dispatches. */
  aliases?: true;
  /** Sizes (in floats) of the scratch buffers its dispatches use, by role. */
  scratch?(c: LayerConfigs[Kd], inShape: number[], B: number, name: string): Record<string, number>;
  forward(ctx: KernelContext, c: LayerConfigs[Kd], io: LayerIo, name: string): Promise<Dispatch[]>;
  backward(ctx: KernelContext, c: LayerConfigs[Kd], io: LayerIo, name: string): Promise<Dispatch[]>;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const pair = (v: Pair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v);
/** The activation fused into a layer; softmax is applied by the loss (training) or a softmax pass (predict). */
const fused = (a: OutputActivation | undefined): Act => (a === "softmax" || a === undefined ? "linear" : a);

function rank(inShape: number[], r: number, name: string, what: string): void {
  if (inShape.length !== r) throw new ShapeError(`layer ${name}: expects ${what} per example, but its input has shape [${inShape.join(", ")}]${r === 1 ? "; add a Flatten layer before it" : ""}`);
}

function convWindow(c: LayerConfigs["conv2d"], inShape: number[], B: number, name: string): WindowPlan {
  rank(inShape, 3, name, "a (height, width, channels) image");
  const [KH, KW] = pair(c.kernelSize, 1);
  const [SH, SW] = pair(c.strides, 1);
  const [H, W, C] = inShape as [number, number, number];
  return planWindow({ B, H, W, C, KH, KW, SH, SW, padding: c.padding ?? "valid" }, `layer ${name}`);
}

function poolWindow(c: LayerConfigs["maxPooling2d"], inShape: number[], B: number, name: string): WindowPlan {
  rank(inShape, 3, name, "a (height, width, channels) image");
  const [KH, KW] = pair(c.poolSize, 2);
  const [SH, SW] = pair(c.strides ?? c.poolSize, 2);
  const [H, W, C] = inShape as [number, number, number];
  return planWindow({ B, H, W, C, KH, KW, SH, SW, padding: c.padding ?? "valid" }, `layer ${name}`);
}

function denseParams(inF: number, units: number, useBias: boolean, l2: number, fanIn = inF, fanOut = units, kernelShape = [inF, units]): ParamSpec[] {
  const p: ParamSpec[] = [{ role: "kernel", shape: kernelShape, init: { kind: "glorotUniform", fanIn, fanOut }, l2 }];
  if (useBias) p.push({ role: "bias", shape: [units], init: { kind: "zeros" }, l2: 0 });
  return p;
}

function positive(v: number, name: string, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new ConfigError(`layer ${name}: ${what} must be a positive integer, got ${v}`);
}

/**
 * The backward pass through a layer's activation and bias: dz = dy · act'(y) into the shared "dz" scratch
 * (a linear layer's dz is dy itself) and db, in one pass; the products for dW and dX then read dz.
 */
async function activationAndBias(ctx: KernelContext, io: LayerIo, act: Act, R: number, N: number, name: string): Promise<{ dz: Binding; out: Dispatch[] }> {
  const db = io.grads[1];
  if (act === "linear") return { dz: io.dy, out: db ? [await K.biasGrad(ctx, io.dy, db, R, N, undefined, `${name} db`)] : [] };
  const dz = io.scratch("dz");
  return { dz, out: [await K.biasGrad(ctx, io.dy, db, R, N, { act, y: io.y, dz }, db ? `${name} dz, db` : `${name} dz`)] };
}

const pool = <Kd extends "maxPooling2d" | "averagePooling2d">(kind: "max" | "avg"): LayerRule<Kd> => ({
  outputShape: (c, s, name) => {
    const p = poolWindow(c, s, 1, name);
    return [p.OH, p.OW, p.C];
  },
  params: () => [],
  forward: async (ctx, c, io, name) => {
    const p = poolWindow(c, io.inShape, io.B, name);
    if (kind === "avg") return [await K.avgPoolForward(ctx, io.x, io.y, p, `${name} forward`)];
    return [await K.maxPoolForward(ctx, io.x, io.y, io.keep("argmax", size(io.outShape) * io.B), p, `${name} forward`)];
  },
  backward: async (ctx, c, io, name) => {
    const p = poolWindow(c, io.inShape, io.B, name);
    if (!io.dx) return [];
    if (kind === "avg") return [await K.avgPoolBackward(ctx, io.dy, io.dx, p, `${name} backward`)];
    return [await K.maxPoolBackward(ctx, io.dy, io.keep("argmax", size(io.outShape) * io.B), io.dx, p, `${name} backward`)];
  },
});

export const LAYER_RULES: { [Kd in LayerKind]: LayerRule<Kd> } = {
  conv2d: {
    outputShape: (c, s, name) => {
      positive(c.filters, name, "filters");
      const p = convWindow(c, s, 1, name);
      return [p.OH, p.OW, c.filters];
    },
    params: (c, s) => {
      const [KH, KW] = pair(c.kernelSize, 1);
      const C = s[2]!;
      return denseParams(KH * KW * C, c.filters, c.useBias ?? true, c.kernelRegularizer?.l2 ?? 0, KH * KW * C, KH * KW * c.filters, [KH, KW, C, c.filters]);
    },
    scratch: (c, s, B, name) => {
      const p = convWindow(c, s, B, name);
      const depth = p.KH * p.KW * p.C;
      const rows = p.B * p.OH * p.OW;
      // dW partials for split-K (sized for the most splits any variant picks).
      return { dcols: rows * depth, partials: 64 * depth * c.filters, dz: fused(c.activation) === "linear" ? 0 : rows * c.filters };
    },
    forward: async (ctx, c, io, name) => {
      const p = convWindow(c, io.inShape, io.B, name);
      const rows = p.B * p.OH * p.OW;
      const depth = p.KH * p.KW * p.C;
      const cols = io.keep("cols", rows * depth);
      return [
        await K.im2col(ctx, io.x, cols, p, `${name} im2col`),
        await K.matmul(ctx, cols, io.params[0]!, io.y, { M: rows, N: c.filters, K: depth, bias: io.params[1], act: fused(c.activation) }, `${name} forward`),
      ];
    },
    backward: async (ctx, c, io, name) => {
      const p = convWindow(c, io.inShape, io.B, name);
      const rows = p.B * p.OH * p.OW;
      const depth = p.KH * p.KW * p.C;
      const { dz, out } = await activationAndBias(ctx, io, fused(c.activation), rows, c.filters, name);
      const cols = io.keep("cols", rows * depth);
      // dW is (KH·KW·C) × filters, a small output over a long K = B·OH·OW: split K to use the adapter.
      const splits = K.splitsFor(depth, c.filters, rows, ctx.matmulVariant);
      out.push(...(await K.matmulSplitK(ctx, cols, dz, io.grads[0]!, io.scratch("partials"), { M: depth, N: c.filters, K: rows, transA: true }, splits, `${name} dW`)));
      if (io.dx) {
        const dcols = io.scratch("dcols");
        out.push(await K.matmul(ctx, dz, io.params[0]!, dcols, { M: rows, N: depth, K: c.filters, transB: true }, `${name} dcols`));
        out.push(await K.col2im(ctx, dcols, io.dx, p, `${name} col2im`));
      }
      return out;
    },
  },
  maxPooling2d: pool("max"),
  averagePooling2d: pool("avg"),
  flatten: {
    outputShape: (_c, s) => [size(s)],
    params: () => [],
    aliases: true,
    forward: async () => [],
    backward: async () => [],
  },
  dense: {
    outputShape: (c, s, name) => {
      rank(s, 1, name, "a vector");
      positive(c.units, name, "units");
      return [c.units];
    },
    params: (c, s) => denseParams(s[0]!, c.units, c.useBias ?? true, c.kernelRegularizer?.l2 ?? 0),
    scratch: (c, _s, B) => ({ dz: fused(c.activation) === "linear" ? 0 : B * c.units }),
    forward: async (ctx, c, io, name) => [
      await K.matmul(ctx, io.x, io.params[0]!, io.y, { M: io.B, N: c.units, K: io.inShape[0]!, bias: io.params[1], act: fused(c.activation) }, `${name} forward`),
    ],
    backward: async (ctx, c, io, name) => {
      const IN = io.inShape[0]!;
      const { dz, out } = await activationAndBias(ctx, io, fused(c.activation), io.B, c.units, name);
      out.push(await K.matmul(ctx, io.x, dz, io.grads[0]!, { M: IN, N: c.units, K: io.B, transA: true }, `${name} dW`));
      if (io.dx) out.push(await K.matmul(ctx, dz, io.params[0]!, io.dx, { M: io.B, N: IN, K: c.units, transB: true }, `${name} dX`));
      return out;
    },
  },
  dropout: {
    outputShape: (c, s, name) => {
      if (!(c.rate >= 0 && c.rate < 1)) throw new ConfigError(`layer ${name}: dropout rate must be in [0, 1), got ${c.rate}`);
      return s;
    },
    params: () => [],
    forward: async (ctx, c, io, name) => [await K.dropout(ctx, "forward", io.x, io.y, io.B * size(io.inShape), c.rate, `${name} forward`)],
    backward: async (ctx, c, io, name) => (io.dx ? [await K.dropout(ctx, "backward", io.dy, io.dx, io.B * size(io.inShape), c.rate, `${name} backward`)] : []),
  },
  activation: {
    outputShape: (_c, s) => s,
    params: () => [],
    forward: async (ctx, c, io, name) => [await K.activationForward(ctx, io.x, io.y, io.B * size(io.inShape), fused(c.activation), `${name} forward`)],
    backward: async (ctx, c, io, name) => (io.dx ? [await K.activationBackward(ctx, io.y, io.dy, io.dx, io.B * size(io.inShape), fused(c.activation), `${name} backward`)] : []),
  },
};

/** The activation a layer ends with (for the loss to know whether softmax or sigmoid is pending). */
export function outputActivation(l: Layer): OutputActivation {
  const c = l.config as { activation?: OutputActivation };
  return c.activation ?? "linear";
}
