// The op table: for every op kind, its shape rule, what its backward pass reads, the buffers it keeps or
// needs for a moment, and its forward and backward dispatches, side by side. The table is typed
// { [K in OpKind]: OpRule<K> }, so an op without a rule does not compile, and call sites stay generic.
import { ConfigError, ShapeError } from "../errors.ts";
import { planWindow, type Padding, type WindowPlan } from "../geometry.ts";
import type { Binding, Dispatch } from "../gpu/registry.ts";
import * as K from "../kernels.ts";
import type { Activation, KernelContext } from "../kernels.ts";
import * as D from "../kernels/depthwise.ts";
import * as E from "../kernels/elementwise.ts";
import * as N from "../kernels/normalization.ts";

/** A per-example shape (no batch dimension); parameters and state carry their whole shape. */
export type Shape = readonly number[];

/** A 2-D window: kernel or pool size, strides, padding. */
export interface Window {
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  padding: Padding;
}

export interface OpConfigs {
  /** y = act(x·W + b) over the last axis of x; W is (K, N) (a conv kernel (KH, KW, C, F) reads as (KH·KW·C, F)). Inputs: x, W[, b]. */
  matmul: { act: Activation; bias: boolean };
  /** x (H, W, C) to the patches (OH, OW, KH·KW·C) a convolution multiplies by its kernel. */
  im2col: Window;
  maxPool: Window;
  avgPool: Window;
  /** Same elements, another shape: no dispatch, the output is the input's memory. */
  reshape: { shape: number[] };
  dropout: { rate: number };
  activation: { act: Activation };
  add: Record<string, never>;
  multiply: Record<string, never>;
  /** Along a per-example axis (0 is the first axis after the batch). */
  concat: { axis: number };
  /** (H, W, C) to (C). */
  globalAvgPool: Record<string, never>;
  /** Over the last axis, statistics over every other (batch included). Inputs: x, gamma, beta, moving mean, moving variance. */
  batchNorm: { momentum: number; epsilon: number };
  /** Over the last axis, per example and position. Inputs: x, gamma, beta. */
  layerNorm: { epsilon: number };
  /** Inputs: x, depthwise kernel (KH, KW, C, M)[, bias (C·M)]. */
  depthwiseConv: Window & { multiplier: number; act: Activation; bias: boolean };
  /**
   * maxPool(act(conv(x) + b)) in one pass (src/graph/fuse.ts makes it from im2col → matmul → maxPool; no
   * layer emits it). Inputs: x, kernel (KH, KW, C, F)[, bias (F)]; x gets no gradient.
   */
  convPool: { conv: Window; pool: Window; act: Activation; bias: boolean };
  /**
   * act(conv(x) + b) as one implicit-GEMM product whose im2col columns are read from x, never written
   * (src/graph/fuse.ts makes it from im2col → matmul on the subgroup kernels; no layer emits it).
   * Inputs: x, kernel (KH, KW, C, F)[, bias (F)].
   */
  convGemm: { conv: Window; act: Activation; bias: boolean };
}
export type OpKind = keyof OpConfigs;

/** What changes between steps of one plan: examples in the batch (a last batch can be partial) and a seed. */
export interface StepInfo {
  nValid: number;
  seed: number;
}

/** Sizes an op's buffers depend on. `needs[i]`: the gradient of input i is wanted. */
export interface SizeArgs {
  B: number;
  inShapes: readonly Shape[];
  outShape: Shape;
  needs: readonly boolean[];
  ctx: KernelContext;
  /** A training plan (gradients, the optimizer), or an inference one. */
  training: boolean;
}

/** The buffers of one node in a plan. Activations are (B, ...shape); parameters and state whole. */
export interface ForwardIo extends SizeArgs {
  training: boolean;
  x: readonly Binding[];
  y: Binding;
  /** Buffers written by the forward pass and read by the backward pass (argmax, batch statistics). */
  saved(role: string): Binding;
  /** Buffers used within this pass only. */
  scratch(role: string): Binding;
  /** Uniforms to rewrite before each step (partial batches, per-step seeds). */
  perStep(d: Dispatch, values: (s: StepInfo) => Record<string, number>): void;
  /** "layer_name" or "layer_name op", for labels. */
  label: string;
  /** Distinct per node: mixed into per-step seeds so two Dropout layers never share a mask. */
  salt: number;
}

/** Where a gradient goes; `accumulate` when another consumer of the same tensor has written it already. */
export interface GradOut {
  buffer: Binding;
  accumulate: boolean;
}

export interface BackwardIo extends ForwardIo {
  dy: Binding;
  /** Per input: where its gradient goes, or undefined when nobody needs it. */
  dx: readonly (GradOut | undefined)[];
}

export interface OpRule<Kd extends OpKind> {
  shape(c: OpConfigs[Kd], inShapes: readonly Shape[], where: string): Shape;
  /** The output is the input's memory in this mode (reshape; dropout when not training): no dispatch. */
  alias?(c: OpConfigs[Kd], training: boolean): boolean;
  /** Every input's gradient is dy itself (add, reshape): the planner shares the buffer or copies. */
  passGrad?: true;
  /** Inputs no gradient flows to (moving statistics). */
  noGrad?: readonly number[];
  /** Inputs and output the backward pass reads (they stay alive until it has run). */
  keeps(c: OpConfigs[Kd], needs: readonly boolean[]): { inputs: readonly number[]; output: boolean };
  /** Floats per buffer, by role. */
  saved?(c: OpConfigs[Kd], a: SizeArgs): Record<string, number>;
  scratch?(c: OpConfigs[Kd], a: SizeArgs, pass: "forward" | "backward"): Record<string, number>;
  forward(ctx: KernelContext, c: OpConfigs[Kd], io: ForwardIo): Promise<Dispatch[]>;
  backward(ctx: KernelContext, c: OpConfigs[Kd], io: BackwardIo): Promise<Dispatch[]>;
}

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);
/** Rows of an op over the last axis: the batch times every other axis. */
const rowsOf = (B: number, s: Shape) => B * size(s.slice(0, -1));

export function window(w: Window, s: Shape, B: number, where: string): WindowPlan {
  if (s.length !== 3) throw new ShapeError(`${where}: expects (height, width, channels) per example, but its input has shape [${s.join(", ")}]`);
  const [H, W, C] = s as [number, number, number];
  return planWindow({ B, H, W, C, KH: w.KH, KW: w.KW, SH: w.SH, SW: w.SW, padding: w.padding }, where);
}

/**
 * The backward pass through a fused activation and bias: dz = dy · act'(y) into scratch "dz" (for a
 * linear op dz is dy itself) and the bias gradient, in one pass; the products then read dz.
 */
export async function activationAndBias(ctx: KernelContext, act: Activation, io: BackwardIo, bias: GradOut | undefined, R: number, Nc: number): Promise<{ dz: Binding; out: Dispatch[] }> {
  const partials = bias && K.biasGradPartials(ctx, R, Nc) > 0 ? io.scratch("dbPartials") : undefined;
  if (act === "linear") return { dz: io.dy, out: bias ? await K.biasGrad(ctx, io.dy, bias.buffer, R, Nc, undefined, `${io.label} db`, bias.accumulate, partials) : [] };
  const dz = io.scratch("dz");
  return { dz, out: await K.biasGrad(ctx, io.dy, bias?.buffer, R, Nc, { act, y: io.y, dz }, bias ? `${io.label} dz, db` : `${io.label} dz`, bias?.accumulate ?? false, partials) };
}

/** Scratch of activationAndBias: dz (when the activation is not linear) and the bias's partial column sums. */
export function activationAndBiasScratch(ctx: KernelContext, act: Activation, bias: boolean, R: number, Nc: number): Record<string, number> {
  return { dz: act === "linear" ? 0 : R * Nc, dbPartials: bias ? K.biasGradPartials(ctx, R, Nc) : 0 };
}

/** Split-K factor of a matmul's dW product (a long K = rows, a small K×N output). */
export const dwSplits = (ctx: KernelContext, depth: number, n: number, rows: number) => K.splitsFor(depth, n, rows, ctx.matmulVariant);

const pool = (kind: "max" | "avg"): OpRule<"maxPool" | "avgPool"> => ({
  shape: (c, [s], where) => {
    const p = window(c, s!, 1, where);
    return [p.OH, p.OW, p.C];
  },
  keeps: () => ({ inputs: [], output: false }),
  saved: (_c, a): Record<string, number> => (kind === "max" ? { argmax: a.B * size(a.outShape) } : {}),
  forward: async (ctx, c, io) => {
    const p = window(c, io.inShapes[0]!, io.B, io.label);
    if (kind === "avg") return [await K.avgPoolForward(ctx, io.x[0]!, io.y, p, `${io.label} forward`)];
    return [await K.maxPoolForward(ctx, io.x[0]!, io.y, io.saved("argmax"), p, `${io.label} forward`)];
  },
  backward: async (ctx, c, io) => {
    const dx = io.dx[0];
    if (!dx) return [];
    const p = window(c, io.inShapes[0]!, io.B, io.label);
    if (kind === "avg") return [await K.avgPoolBackward(ctx, io.dy, dx.buffer, p, `${io.label} backward`, dx.accumulate)];
    return [await K.maxPoolBackward(ctx, io.dy, io.saved("argmax"), dx.buffer, p, `${io.label} backward`, dx.accumulate)];
  },
});

/** The rule of an op whose module is not loaded yet (a node of it cannot exist before). */
function unloaded(): never {
  throw new ConfigError("the fused op's rule is not loaded: only src/graph/fuse.ts makes such nodes, and it installs the rule");
}

const list = async (d: Dispatch | Dispatch[]): Promise<Dispatch[]> => (Array.isArray(d) ? d : [d]);

export const OPS: { [Kd in OpKind]: OpRule<Kd> } = {
  matmul: {
    shape: (c, [x, w, b], where) => {
      if (!x || x.length < 1) throw new ShapeError(`${where}: needs an input with at least one axis`);
      const n = w!.at(-1)!;
      const k = size(w!.slice(0, -1));
      if (x.at(-1) !== k) throw new ShapeError(`${where}: input [${x.join(", ")}] has ${x.at(-1)} features on its last axis, but the kernel [${w!.join(", ")}] expects ${k}`);
      if (c.bias && (b?.length !== 1 || b[0] !== n)) throw new ShapeError(`${where}: bias [${b}] must have shape [${n}]`);
      return [...x.slice(0, -1), n];
    },
    keeps: (c, needs) => ({ inputs: needs[1] ? [0] : [], output: c.act !== "linear" }),
    scratch: (c, a, pass): Record<string, number> => {
      if (pass === "forward") return {};
      const rows = rowsOf(a.B, a.inShapes[0]!);
      const k = a.inShapes[0]!.at(-1)!;
      const n = a.outShape.at(-1)!;
      const splits = a.needs[1] ? dwSplits(a.ctx, k, n, rows) : 1;
      return { ...activationAndBiasScratch(a.ctx, c.act, c.bias, rows, n), partials: splits > 1 ? splits * k * n : 0 };
    },
    forward: async (ctx, c, io) => {
      const rows = rowsOf(io.B, io.inShapes[0]!);
      const [x, w, b] = io.x;
      return [await K.matmul(ctx, x!, w!, io.y, { M: rows, N: io.outShape.at(-1)!, K: io.inShapes[0]!.at(-1)!, bias: c.bias ? b : undefined, act: c.act }, `${io.label} forward`)];
    },
    backward: async (ctx, c, io) => {
      const rows = rowsOf(io.B, io.inShapes[0]!);
      const k = io.inShapes[0]!.at(-1)!;
      const n = io.outShape.at(-1)!;
      const [dx, dw, db] = io.dx;
      const { dz, out } = await activationAndBias(ctx, c.act, io, c.bias ? db : undefined, rows, n);
      if (dw) {
        const splits = dwSplits(ctx, k, n, rows);
        out.push(...(await K.matmulSplitK(ctx, io.x[0]!, dz, dw.buffer, splits > 1 ? io.scratch("partials") : ctx.kernels.placeholderOut, { M: k, N: n, K: rows, transA: true, accumulate: dw.accumulate }, splits, `${io.label} dW`)));
      }
      if (dx) out.push(await K.matmul(ctx, dz, io.x[1]!, dx.buffer, { M: rows, N: k, K: n, transB: true, accumulate: dx.accumulate }, `${io.label} dX`));
      return out;
    },
  },
  im2col: {
    shape: (c, [s], where) => {
      const p = window(c, s!, 1, where);
      return [p.OH, p.OW, p.KH * p.KW * p.C];
    },
    keeps: () => ({ inputs: [], output: false }),
    forward: async (ctx, c, io) => [await K.im2col(ctx, io.x[0]!, io.y, window(c, io.inShapes[0]!, io.B, io.label), `${io.label} im2col`)],
    backward: async (ctx, c, io) => {
      const dx = io.dx[0];
      return dx ? [await K.col2im(ctx, io.dy, dx.buffer, window(c, io.inShapes[0]!, io.B, io.label), `${io.label} col2im`, dx.accumulate)] : [];
    },
  },
  maxPool: pool("max"),
  avgPool: pool("avg"),
  reshape: {
    shape: (c, [s], where) => {
      if (!Array.isArray(c.shape) || c.shape.some((d) => !Number.isInteger(d) || d < 1)) throw new ShapeError(`${where}: target shape must be positive integers, got [${c.shape}]`);
      if (size(c.shape) !== size(s!)) throw new ShapeError(`${where}: cannot reshape [${s!.join(", ")}] (${size(s!)} values per example) to [${c.shape.join(", ")}] (${size(c.shape)})`);
      return c.shape;
    },
    alias: () => true,
    passGrad: true,
    keeps: () => ({ inputs: [], output: false }),
    forward: async () => [],
    backward: async () => [],
  },
  dropout: {
    shape: (c, [s], where) => {
      if (!(c.rate >= 0 && c.rate < 1)) throw new ConfigError(`${where}: dropout rate must be in [0, 1), got ${c.rate}`);
      return s!;
    },
    alias: (c, training) => !training || c.rate === 0,
    keeps: () => ({ inputs: [], output: false }),
    forward: async (ctx, c, io) => {
      const d = await K.dropout(ctx, "forward", io.x[0]!, io.y, io.B * size(io.outShape), c.rate, `${io.label} forward`);
      io.perStep(d, (s) => ({ seed: mix(s.seed, io.salt) }));
      return [d];
    },
    backward: async (ctx, c, io) => {
      const dx = io.dx[0];
      if (!dx) return [];
      const d = await K.dropout(ctx, "backward", io.dy, dx.buffer, io.B * size(io.outShape), c.rate, `${io.label} backward`, dx.accumulate);
      io.perStep(d, (s) => ({ seed: mix(s.seed, io.salt) }));
      return [d];
    },
  },
  activation: {
    shape: (_c, [s]) => s!,
    keeps: () => ({ inputs: [], output: true }),
    forward: async (ctx, c, io) => [await K.activationForward(ctx, io.x[0]!, io.y, io.B * size(io.outShape), c.act, `${io.label} forward`)],
    backward: async (ctx, c, io) => {
      const dx = io.dx[0];
      return dx ? [await K.activationBackward(ctx, io.y, io.dy, dx.buffer, io.B * size(io.outShape), c.act, `${io.label} backward`, dx.accumulate)] : [];
    },
  },
  add: {
    shape: (_c, [a, b], where) => {
      if (a!.join() !== b!.join()) throw new ShapeError(`${where}: inputs [${a!.join(", ")}] and [${b!.join(", ")}] must have the same shape`);
      return a!;
    },
    passGrad: true,
    keeps: () => ({ inputs: [], output: false }),
    forward: async (ctx, _c, io) => [await E.addForward(ctx, io.x[0]!, io.x[1]!, io.y, io.B * size(io.outShape), `${io.label} forward`)],
    backward: async () => [],
  },
  multiply: {
    shape: (_c, [a, b], where) => {
      if (a!.join() !== b!.join()) throw new ShapeError(`${where}: inputs [${a!.join(", ")}] and [${b!.join(", ")}] must have the same shape`);
      return a!;
    },
    keeps: (_c, needs) => ({ inputs: [needs[1] ? 0 : -1, needs[0] ? 1 : -1].filter((i) => i >= 0), output: false }),
    forward: async (ctx, _c, io) => [await E.multiplyForward(ctx, io.x[0]!, io.x[1]!, io.y, io.B * size(io.outShape), `${io.label} forward`)],
    backward: async (ctx, _c, io) => {
      const n = io.B * size(io.outShape);
      const out: Dispatch[] = [];
      for (const i of [0, 1]) {
        const dx = io.dx[i];
        if (dx) out.push(await E.multiplyBackward(ctx, io.dy, io.x[1 - i]!, dx.buffer, n, dx.accumulate, `${io.label} d${"ab"[i]}`));
      }
      return out;
    },
  },
  concat: {
    shape: (c, shapes, where) => {
      const first = shapes[0]!;
      const axis = c.axis < 0 ? first.length + c.axis : c.axis;
      if (!Number.isInteger(axis) || axis < 0 || axis >= first.length) throw new ShapeError(`${where}: axis ${c.axis} is out of range for inputs of rank ${first.length} (per example)`);
      for (const s of shapes) {
        if (s.length !== first.length || s.some((d, i) => i !== axis && d !== first[i])) {
          throw new ShapeError(`${where}: inputs ${shapes.map((t) => `[${t.join(", ")}]`).join(", ")} must agree on every axis but ${c.axis}`);
        }
      }
      return first.map((d, i) => (i === axis ? shapes.reduce((sum, s) => sum + s[axis]!, 0) : d));
    },
    keeps: () => ({ inputs: [], output: false }),
    forward: async (ctx, c, io) => {
      const out: Dispatch[] = [];
      for (const [i, g] of concatSlices(c, io).entries()) out.push(await E.copySlice(ctx, io.x[i]!, io.y, { outer: g.outer, width: g.width, srcStride: g.width, srcOffset: 0, dstStride: g.total, dstOffset: g.offset }, false, `${io.label} forward (input ${i})`));
      return out;
    },
    backward: async (ctx, c, io) => {
      const out: Dispatch[] = [];
      for (const [i, g] of concatSlices(c, io).entries()) {
        const dx = io.dx[i];
        if (dx) out.push(await E.copySlice(ctx, io.dy, dx.buffer, { outer: g.outer, width: g.width, srcStride: g.total, srcOffset: g.offset, dstStride: g.width, dstOffset: 0 }, dx.accumulate, `${io.label} backward (input ${i})`));
      }
      return out;
    },
  },
  globalAvgPool: {
    shape: (_c, [s], where) => {
      if (s!.length !== 3) throw new ShapeError(`${where}: expects (height, width, channels) per example, but its input has shape [${s!.join(", ")}]`);
      return [s![2]!];
    },
    keeps: () => ({ inputs: [], output: false }),
    forward: async (ctx, _c, io) => [await E.globalAvgPoolForward(ctx, io.x[0]!, io.y, gapGeom(io), `${io.label} forward`)],
    backward: async (ctx, _c, io) => {
      const dx = io.dx[0];
      return dx ? [await E.globalAvgPoolBackward(ctx, io.dy, dx.buffer, gapGeom(io), dx.accumulate, `${io.label} backward`)] : [];
    },
  },
  batchNorm: {
    shape: (c, [x, ...w], where) => {
      if (!(c.momentum >= 0 && c.momentum <= 1)) throw new ConfigError(`${where}: momentum must be in [0, 1], got ${c.momentum}`);
      if (!(c.epsilon > 0)) throw new ConfigError(`${where}: epsilon must be positive, got ${c.epsilon}`);
      if (w.some((s) => s.length !== 1 || s[0] !== x!.at(-1))) throw new ShapeError(`${where}: parameters must have shape [${x!.at(-1)}]`);
      return x!;
    },
    noGrad: [3, 4],
    keeps: () => ({ inputs: [0], output: false }),
    saved: (_c, a) => ({ mean: a.inShapes[0]!.at(-1)!, invstd: a.inShapes[0]!.at(-1)! }),
    forward: async (ctx, c, io) => {
      const s = io.inShapes[0]!;
      const perExample = size(s.slice(0, -1));
      const [x, gamma, beta, movingMean, movingVar] = io.x;
      const g = { R: rowsOf(io.B, s), C: s.at(-1)!, rowsValid: rowsOf(io.B, s), momentum: c.momentum, epsilon: c.epsilon };
      const ds = await list(await N.batchNormForward(ctx, { x: x!, gamma: gamma!, beta: beta!, y: io.y, mean: io.saved("mean"), invstd: io.saved("invstd"), movingMean: movingMean!, movingVar: movingVar! }, g, io.training, `${io.label} forward`));
      if (io.training) for (const d of ds) if (d.kernel.uniform?.members.has("rows_valid")) io.perStep(d, (st) => ({ rows_valid: st.nValid * perExample }));
      return ds;
    },
    backward: async (ctx, _c, io) => {
      const s = io.inShapes[0]!;
      const perExample = size(s.slice(0, -1));
      const [dx, dgamma, dbeta] = io.dx;
      if (!dx && !dgamma && !dbeta) return [];
      const g = { R: rowsOf(io.B, s), C: s.at(-1)!, rowsValid: rowsOf(io.B, s) };
      const ds = await list(
        await N.batchNormBackward(
          ctx,
          { dy: io.dy, x: io.x[0]!, gamma: io.x[1]!, mean: io.saved("mean"), invstd: io.saved("invstd"), dx: dx?.buffer, dgamma: dgamma?.buffer, dbeta: dbeta?.buffer },
          g,
          { dx: dx?.accumulate ?? false, params: dgamma?.accumulate ?? dbeta?.accumulate ?? false },
          `${io.label} backward`,
        ),
      );
      for (const d of ds) if (d.kernel.uniform?.members.has("rows_valid")) io.perStep(d, (st) => ({ rows_valid: st.nValid * perExample }));
      return ds;
    },
  },
  layerNorm: {
    shape: (c, [x, ...w], where) => {
      if (!(c.epsilon > 0)) throw new ConfigError(`${where}: epsilon must be positive, got ${c.epsilon}`);
      if (w.some((s) => s.length !== 1 || s[0] !== x!.at(-1))) throw new ShapeError(`${where}: parameters must have shape [${x!.at(-1)}]`);
      return x!;
    },
    keeps: () => ({ inputs: [0], output: false }),
    saved: (_c, a) => ({ mean: rowsOf(a.B, a.inShapes[0]!), rstd: rowsOf(a.B, a.inShapes[0]!) }),
    forward: async (ctx, c, io) => {
      const s = io.inShapes[0]!;
      const [x, gamma, beta] = io.x;
      return list(await N.layerNormForward(ctx, { x: x!, gamma: gamma!, beta: beta!, y: io.y, mean: io.saved("mean"), rstd: io.saved("rstd") }, { R: rowsOf(io.B, s), D: s.at(-1)!, epsilon: c.epsilon }, `${io.label} forward`));
    },
    backward: async (ctx, _c, io) => {
      const s = io.inShapes[0]!;
      const [dx, dgamma, dbeta] = io.dx;
      if (!dx && !dgamma && !dbeta) return [];
      return list(
        await N.layerNormBackward(
          ctx,
          { dy: io.dy, x: io.x[0]!, gamma: io.x[1]!, mean: io.saved("mean"), rstd: io.saved("rstd"), dx: dx?.buffer, dgamma: dgamma?.buffer, dbeta: dbeta?.buffer },
          { R: rowsOf(io.B, s), D: s.at(-1)! },
          { dx: dx?.accumulate ?? false, params: dgamma?.accumulate ?? dbeta?.accumulate ?? false },
          `${io.label} backward`,
        ),
      );
    },
  },
  depthwiseConv: {
    shape: (c, [x, w], where) => {
      const p = window(c, x!, 1, where);
      if (!Number.isInteger(c.multiplier) || c.multiplier < 1) throw new ConfigError(`${where}: depthMultiplier must be a positive integer, got ${c.multiplier}`);
      if (w!.join() !== [c.KH, c.KW, p.C, c.multiplier].join()) throw new ShapeError(`${where}: kernel [${w}] must be [${c.KH}, ${c.KW}, ${p.C}, ${c.multiplier}]`);
      return [p.OH, p.OW, p.C * c.multiplier];
    },
    keeps: (c, needs) => ({ inputs: needs[1] ? [0] : [], output: c.act !== "linear" }),
    scratch: (c, a, pass) => (pass === "backward" ? activationAndBiasScratch(a.ctx, c.act, c.bias, a.B * size(a.outShape.slice(0, -1)), a.outShape.at(-1)!) : {}),
    forward: async (ctx, c, io) => {
      const p = window(c, io.inShapes[0]!, io.B, io.label);
      return list(await D.depthwiseConvForward(ctx, io.x[0]!, io.x[1]!, c.bias ? io.x[2] : undefined, io.y, p, c.multiplier, c.act, `${io.label} forward`));
    },
    backward: async (ctx, c, io) => {
      const p = window(c, io.inShapes[0]!, io.B, io.label);
      const [dx, dw, db] = io.dx;
      const { dz, out } = await activationAndBias(ctx, c.act, io, c.bias ? db : undefined, io.B * p.OH * p.OW, p.C * c.multiplier);
      if (dw) out.push(...(await list(await D.depthwiseConvBackwardFilter(ctx, io.x[0]!, dz, dw.buffer, p, c.multiplier, dw.accumulate, `${io.label} dW`))));
      if (dx) out.push(...(await list(await D.depthwiseConvBackwardInput(ctx, dz, io.x[1]!, dx.buffer, p, c.multiplier, dx.accumulate, `${io.label} dX`))));
      return out;
    },
  },
  // Made only by the fusion pass (src/graph/fuse.ts), which installs these rules when it loads: the core
  // loads it on first use, with its kernels.
  convPool: {
    shape: unloaded,
    keeps: unloaded,
    forward: unloaded,
    backward: unloaded,
  },
  convGemm: {
    shape: unloaded,
    keeps: unloaded,
    forward: unloaded,
    backward: unloaded,
  },
};

/** Each input's slice of a concatenation: `outer` runs of `width` values at `offset` in runs of `total`. */
function concatSlices(c: OpConfigs["concat"], io: ForwardIo): { outer: number; width: number; offset: number; total: number }[] {
  const out = io.outShape;
  const axis = c.axis < 0 ? out.length + c.axis : c.axis;
  const outer = io.B * size(out.slice(0, axis));
  const inner = size(out.slice(axis + 1));
  const total = out[axis]! * inner;
  let offset = 0;
  return io.inShapes.map((s) => {
    const width = s[axis]! * inner;
    const g = { outer, width, offset, total };
    offset += width;
    return g;
  });
}

function gapGeom(io: ForwardIo): { B: number; HW: number; C: number } {
  const [H, W, C] = io.inShapes[0] as [number, number, number];
  return { B: io.B, HW: H * W, C };
}

/** A 32-bit mix of a step seed and a salt (a node's, or a dataset's augmentation seed); kernels hash it again per element. */
export function mix(seed: number, salt: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}
