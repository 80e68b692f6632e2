// The eager tensor API: each op checks shapes, builds its dispatches (src/kernels.ts), runs them, and
// returns new tensors. Web apps embed the engine through it; the kernel tests drive it.
import { checkShape, flag, numberIn, optionsOf, shown } from "./args.ts";
import { ConfigError, DataError, ShapeError } from "./errors.ts";
import { planWindow, type Padding, type WindowPlan } from "./geometry.ts";
import * as K from "./kernels.ts";
import type { Activation } from "./kernels.ts";
import { Tensor, type Engine } from "./engine.ts";

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  /** (N), added before the activation. */
  bias?: Tensor;
  activation?: Activation;
}

/** A Tensor argument: null, a typed array or anything else is refused naming the op and the argument. */
function tensor(v: unknown, op: string, name: string): Tensor {
  if (!(v instanceof Tensor)) throw new DataError(`${op}: ${name} must be a Tensor (from engine.tensor() or another op), got ${shown(v)}`);
  if (v.disposed) throw new DataError(`${op}: ${name} was disposed`);
  return v;
}

function activationOf(v: unknown, op: string): Activation {
  if (!K.ACTIVATIONS.includes(v as Activation)) throw new ConfigError(`${op}: activation must be one of ${K.ACTIVATIONS.join(", ")}, got ${shown(v)}`);
  return v as Activation;
}

function rank(t: Tensor, r: number, op: string, name: string): void {
  if (t.shape.length !== r) throw new ShapeError(`${op}: ${name} must have rank ${r}, got shape [${t.shape.join(", ")}]`);
}

function same(a: Tensor, b: Tensor, op: string, an: string, bn: string): void {
  if (a.shape.join() !== b.shape.join()) throw new ShapeError(`${op}: ${an} [${a.shape.join(", ")}] and ${bn} [${b.shape.join(", ")}] must have the same shape`);
}

function matmulDims(a: Tensor, b: Tensor, options: MatmulOptions, op: string): { M: number; N: number; K: number; o: MatmulOptions } {
  tensor(a, op, "a");
  tensor(b, op, "b");
  const o = optionsOf<MatmulOptions>(options, op, ["transposeA", "transposeB", "bias", "activation"]);
  flag(o.transposeA, `${op}: transposeA`);
  flag(o.transposeB, `${op}: transposeB`);
  if (o.bias !== undefined) tensor(o.bias, op, "bias");
  if (o.activation !== undefined) activationOf(o.activation, op);
  rank(a, 2, op, "a");
  rank(b, 2, op, "b");
  const [M, Ka] = o.transposeA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [Kb, N] = o.transposeB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (Ka !== Kb) {
    throw new ShapeError(`${op}: inner dimensions differ: op(a) is ${M}×${Ka}, op(b) is ${Kb}×${N} (a [${a.shape}], b [${b.shape}], transposeA ${!!o.transposeA}, transposeB ${!!o.transposeB})`);
  }
  if (o.bias && (o.bias.shape.length !== 1 || o.bias.shape[0] !== N)) throw new ShapeError(`${op}: bias must have shape [${N}], got [${o.bias.shape}]`);
  return { M, N, K: Ka, o };
}

/** act(op(a)·op(b) + bias). */
export async function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Promise<Tensor> {
  const { M, N, K: Kd, o } = matmulDims(a, b, options, "matmul");
  const e = a.engine;
  const c = e.empty([M, N], "f32", "matmul c");
  await e.run([await K.matmul(e, a.buffer, b.buffer, c.buffer, { M, N, K: Kd, transA: o.transposeA, transB: o.transposeB, bias: o.bias?.buffer, act: o.activation })]);
  return c;
}

/** Gradients of y = act(op(a)·op(b) + bias) given y and dy: dz = dy · act'(y) and dbias in one pass, then the products. */
export async function matmulBackward(a: Tensor, b: Tensor, y: Tensor, dy: Tensor, options: MatmulOptions = {}): Promise<{ da: Tensor; db: Tensor; dbias: Tensor }> {
  const { M, N, K: Kd, o } = matmulDims(a, b, options, "matmulBackward");
  const e = a.engine;
  tensor(y, "matmulBackward", "y");
  tensor(dy, "matmulBackward", "dy");
  same(y, dy, "matmulBackward", "y", "dy");
  if (y.shape.join() !== `${M},${N}`) throw new ShapeError(`matmulBackward: y must have shape [${M}, ${N}], got [${y.shape}]`);
  const act = o.activation ?? "linear";
  const ta = !!o.transposeA;
  const tb = !!o.transposeB;
  const da = e.empty(a.shape, "f32", "matmul da");
  const db = e.empty(b.shape, "f32", "matmul db");
  const dbias = e.empty([N], "f32", "matmul dbias");
  const dzBuf = act === "linear" ? undefined : e.createBuffer(M * N * 4, "matmul dz", false);
  const dz = dzBuf ?? dy.buffer;
  const partials = biasPartials(e, M, N);
  await e.run(
    [
      ...(await K.biasGrad(e, dy.buffer, dbias.buffer, M, N, dzBuf && { act, y: y.buffer, dz: dzBuf }, "matmul dz, dbias", false, partials)),
      // dA = dZ·op(B)ᵀ, or its transpose op(B)·dZᵀ when A is stored transposed.
      ta
        ? await K.matmul(e, b.buffer, dz, da.buffer, { M: Kd, N: M, K: N, transA: tb, transB: true }, "matmul dA")
        : await K.matmul(e, dz, b.buffer, da.buffer, { M, N: Kd, K: N, transB: !tb }, "matmul dA"),
      // dB = op(A)ᵀ·dZ, or dZᵀ·op(A) when B is stored transposed.
      tb
        ? await K.matmul(e, dz, a.buffer, db.buffer, { M: N, N: Kd, K: M, transA: true, transB: ta }, "matmul dB")
        : await K.matmul(e, a.buffer, dz, db.buffer, { M: Kd, N, K: M, transA: !ta }, "matmul dB"),
    ],
    [...(dzBuf ? [dzBuf] : []), ...(partials ? [partials] : [])],
  );
  return { da, db, dbias };
}

export interface Conv2dOptions {
  strides?: number | [number, number];
  padding?: Padding;
  bias?: Tensor;
  activation?: Activation;
}

/** A window size or stride: one positive integer or a pair of them. */
function pair(v: unknown, dflt: number, op: string, what: string): [number, number] {
  const p = v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || p.some((d) => typeof d !== "number" || !Number.isInteger(d) || d < 1)) throw new ShapeError(`${op}: ${what} must be a positive integer or a pair of them, got ${shown(v)}`);
  return p as [number, number];
}

function convPlan(x: Tensor, w: Tensor, options: Conv2dOptions, op: string): { p: WindowPlan; F: number; o: Conv2dOptions } {
  tensor(x, op, "x");
  tensor(w, op, "w");
  const o = optionsOf<Conv2dOptions>(options, op, ["strides", "padding", "bias", "activation"]);
  if (o.bias !== undefined) tensor(o.bias, op, "bias");
  if (o.activation !== undefined) activationOf(o.activation, op);
  rank(x, 4, op, "x (B, H, W, C)");
  rank(w, 4, op, "w (KH, KW, C, F)");
  const [B, H, W, C] = x.shape as [number, number, number, number];
  const [KH, KW, Cw, F] = w.shape as [number, number, number, number];
  if (Cw !== C) throw new ShapeError(`${op}: x has ${C} channels but w [${w.shape}] expects ${Cw}`);
  if (o.bias && (o.bias.shape.length !== 1 || o.bias.shape[0] !== F)) throw new ShapeError(`${op}: bias must have shape [${F}], got [${o.bias.shape}]`);
  const [SH, SW] = pair(o.strides, 1, op, "strides");
  return { p: planWindow({ B, H, W, C, KH, KW, SH, SW, padding: o.padding ?? "valid" }, op), F, o };
}

/** y (B, OH, OW, F) = act(conv(x (B, H, W, C), w (KH, KW, C, F)) + bias), as im2col + matmul. */
export async function conv2d(x: Tensor, w: Tensor, options: Conv2dOptions = {}): Promise<Tensor> {
  const { p, F, o } = convPlan(x, w, options, "conv2d");
  const e = x.engine;
  const rows = p.B * p.OH * p.OW;
  const depth = p.KH * p.KW * p.C;
  const cols = e.createBuffer(rows * depth * 4, "conv2d cols", false);
  const y = e.empty([p.B, p.OH, p.OW, F], "f32", "conv2d y");
  await e.run(
    [await K.im2col(e, x.buffer, cols, p), await K.matmul(e, cols, w.buffer, y.buffer, { M: rows, N: F, K: depth, bias: o.bias?.buffer, act: o.activation }, "conv2d matmul")],
    [cols],
  );
  return y;
}

/** Gradients of conv2d: dZ = dy · act'(y) and db = Σ dZ in one pass, then dW = colsᵀ·dZ and dX = col2im(dZ·Wᵀ). */
export async function conv2dBackward(x: Tensor, w: Tensor, y: Tensor, dy: Tensor, options: Conv2dOptions = {}): Promise<{ dx: Tensor; dw: Tensor; db: Tensor }> {
  const { p, F, o } = convPlan(x, w, options, "conv2dBackward");
  const e = x.engine;
  tensor(y, "conv2dBackward", "y");
  tensor(dy, "conv2dBackward", "dy");
  same(y, dy, "conv2dBackward", "y", "dy");
  if (y.shape.join() !== [p.B, p.OH, p.OW, F].join()) throw new ShapeError(`conv2dBackward: y must have shape [${[p.B, p.OH, p.OW, F]}], got [${y.shape}]`);
  const rows = p.B * p.OH * p.OW;
  const depth = p.KH * p.KW * p.C;
  const act = o.activation ?? "linear";
  const cols = e.createBuffer(rows * depth * 4, "conv2d cols", false);
  const dcols = e.createBuffer(rows * depth * 4, "conv2d dcols", false);
  const dzBuf = act === "linear" ? undefined : e.createBuffer(rows * F * 4, "conv2d dz", false);
  const dz = dzBuf ?? dy.buffer;
  const splits = K.splitsFor(depth, F, rows, e.matmulVariant);
  const partials = e.createBuffer(splits * depth * F * 4, "conv2d dW partials", false);
  const dbPartials = biasPartials(e, rows, F);
  const dx = e.empty(x.shape, "f32", "conv2d dx");
  const dw = e.empty(w.shape, "f32", "conv2d dw");
  const db = e.empty([F], "f32", "conv2d db");
  await e.run(
    [
      ...(await K.biasGrad(e, dy.buffer, db.buffer, rows, F, dzBuf && { act, y: y.buffer, dz: dzBuf }, "conv2d dz, db", false, dbPartials)),
      await K.im2col(e, x.buffer, cols, p),
      ...(await K.matmulSplitK(e, cols, dz, dw.buffer, partials, { M: depth, N: F, K: rows, transA: true }, splits, "conv2d dW")),
      await K.matmul(e, dz, w.buffer, dcols, { M: rows, N: depth, K: F, transB: true }, "conv2d dcols"),
      await K.col2im(e, dcols, dx.buffer, p),
    ],
    [cols, dcols, partials, ...(dzBuf ? [dzBuf] : []), ...(dbPartials ? [dbPartials] : [])],
  );
  return { dx, dw, db };
}

export interface Pool2dOptions {
  poolSize?: number | [number, number];
  /** Defaults to the pool size, as in Keras. */
  strides?: number | [number, number];
  padding?: Padding;
}

function poolPlan(xShape: readonly number[], options: Pool2dOptions, op: string): WindowPlan {
  const o = optionsOf<Pool2dOptions>(options, op, ["poolSize", "strides", "padding"]);
  if (xShape.length !== 4) throw new ShapeError(`${op}: x must have rank 4 (B, H, W, C), got shape [${xShape.join(", ")}]`);
  const [B, H, W, C] = xShape as [number, number, number, number];
  const [KH, KW] = pair(o.poolSize, 2, op, "poolSize");
  const [SH, SW] = o.strides === undefined ? [KH, KW] : pair(o.strides, 1, op, "strides");
  return planWindow({ B, H, W, C, KH, KW, SH, SW, padding: o.padding ?? "valid" }, op);
}

/** Max pooling; also returns the argmax (flat index into x of each window's max) for the backward pass. */
export async function maxPool2d(x: Tensor, o: Pool2dOptions = {}): Promise<{ y: Tensor; argmax: Tensor }> {
  const e = tensor(x, "maxPool2d", "x").engine;
  const p = poolPlan(x.shape, o, "maxPool2d");
  const y = e.empty([p.B, p.OH, p.OW, p.C], "f32", "maxPool2d y");
  const argmax = e.empty(y.shape, "u32", "maxPool2d argmax");
  await e.run([await K.maxPoolForward(e, x.buffer, y.buffer, argmax.buffer, p)]);
  return { y, argmax };
}

export async function maxPool2dBackward(argmax: Tensor, dy: Tensor, xShape: readonly number[], o: Pool2dOptions = {}): Promise<Tensor> {
  tensor(argmax, "maxPool2dBackward", "argmax");
  const e = tensor(dy, "maxPool2dBackward", "dy").engine;
  checkShape(xShape, "maxPool2dBackward: xShape");
  const p = poolPlan(xShape, o, "maxPool2dBackward");
  same(argmax, dy, "maxPool2dBackward", "argmax", "dy");
  const dx = e.empty(xShape, "f32", "maxPool2d dx");
  await e.run([await K.maxPoolBackward(e, dy.buffer, argmax.buffer, dx.buffer, p)]);
  return dx;
}

export async function avgPool2d(x: Tensor, o: Pool2dOptions = {}): Promise<Tensor> {
  const e = tensor(x, "avgPool2d", "x").engine;
  const p = poolPlan(x.shape, o, "avgPool2d");
  const y = e.empty([p.B, p.OH, p.OW, p.C], "f32", "avgPool2d y");
  await e.run([await K.avgPoolForward(e, x.buffer, y.buffer, p)]);
  return y;
}

export async function avgPool2dBackward(dy: Tensor, xShape: readonly number[], o: Pool2dOptions = {}): Promise<Tensor> {
  const e = tensor(dy, "avgPool2dBackward", "dy").engine;
  checkShape(xShape, "avgPool2dBackward: xShape");
  const p = poolPlan(xShape, o, "avgPool2dBackward");
  if (dy.shape.join() !== [p.B, p.OH, p.OW, p.C].join()) throw new ShapeError(`avgPool2dBackward: dy must have shape [${[p.B, p.OH, p.OW, p.C]}], got [${dy.shape}]`);
  const dx = e.empty(xShape, "f32", "avgPool2d dx");
  await e.run([await K.avgPoolBackward(e, dy.buffer, dx.buffer, p)]);
  return dx;
}

export async function activation(x: Tensor, act: Activation, op = "activation"): Promise<Tensor> {
  tensor(x, op, "x");
  activationOf(act, op);
  const y = x.engine.empty(x.shape, "f32", `${act} y`);
  await x.engine.run([await K.activationForward(x.engine, x.buffer, y.buffer, x.size, act)]);
  return y;
}

export const relu = (x: Tensor) => activation(x, "relu", "relu");
export const sigmoid = (x: Tensor) => activation(x, "sigmoid", "sigmoid");
export const tanh = (x: Tensor) => activation(x, "tanh", "tanh");

/** dx = dy · act'(y), from the activation's output y. */
export async function activationBackward(y: Tensor, dy: Tensor, act: Activation): Promise<Tensor> {
  tensor(y, "activationBackward", "y");
  tensor(dy, "activationBackward", "dy");
  activationOf(act, "activationBackward");
  same(y, dy, `${act}Backward`, "y", "dy");
  const dx = y.engine.empty(y.shape, "f32", `${act} dx`);
  await y.engine.run([await K.activationBackward(y.engine, y.buffer, dy.buffer, dx.buffer, y.size, act)]);
  return dx;
}

/** db (N) = column sums of dy (R, N). */
export async function biasGrad(dy: Tensor): Promise<Tensor> {
  tensor(dy, "biasGrad", "dy");
  rank(dy, 2, "biasGrad", "dy");
  const [R, N] = dy.shape as [number, number];
  const e = dy.engine;
  const db = e.empty([N], "f32", "bias grad");
  const partials = biasPartials(e, R, N);
  await e.run(await K.biasGrad(e, dy.buffer, db.buffer, R, N, undefined, "bias_grad", false, partials), partials ? [partials] : []);
  return db;
}

/** A temporary buffer for bias_grad's partial column sums of an (R, N) gradient, where it needs one. */
function biasPartials(e: Engine, R: number, N: number): GPUBuffer | undefined {
  const floats = K.biasGradPartials(e, R, N);
  return floats > 0 ? e.createBuffer(floats * 4, "bias grad partials", false) : undefined;
}

export interface SoftmaxXentResult {
  /** (B) per-example loss. */
  loss: Tensor;
  /** (B, K) gradient of the mean loss over the valid rows. */
  dlogits: Tensor;
  /** [loss sum, correct predictions, examples]. */
  metrics: Tensor;
}

/** Fused softmax + cross-entropy against u32 class ids (B) or f32 target distributions (B, K). */
export async function softmaxCrossEntropy(logits: Tensor, labels: Tensor, options: { nValid?: number } = {}): Promise<SoftmaxXentResult> {
  const e = tensor(logits, "softmaxCrossEntropy", "logits").engine;
  tensor(labels, "softmaxCrossEntropy", "labels");
  const o = optionsOf<{ nValid: number }>(options, "softmaxCrossEntropy", ["nValid"]);
  rank(logits, 2, "softmaxCrossEntropy", "logits");
  const [B, Kc] = logits.shape as [number, number];
  const sparse = labels.dtype === "u32";
  if (sparse ? labels.shape.join() !== `${B}` : labels.shape.join() !== `${B},${Kc}`) {
    throw new ShapeError(`softmaxCrossEntropy: logits [${logits.shape}] need ${sparse ? `u32 labels [${B}]` : `f32 targets [${B}, ${Kc}]`}, got ${labels.dtype} [${labels.shape}]`);
  }
  const nValid = o.nValid ?? B;
  if (!Number.isInteger(nValid) || nValid < 1 || nValid > B) throw new ShapeError(`softmaxCrossEntropy: nValid must be 1..${B}, got ${nValid}`);
  const loss = e.empty([B], "f32", "xent loss");
  const dlogits = e.empty([B, Kc], "f32", "xent dlogits");
  const metrics = e.tensor([0, 0, 0], [3], "f32", "xent metrics");
  const io = { logits: logits.buffer, loss: loss.buffer, dlogits: dlogits.buffer, metrics: metrics.buffer, ...(sparse ? { labels: labels.buffer } : { targets: labels.buffer }) };
  await e.run([await K.softmaxXent(e, io, B, Kc, nValid)]);
  return { loss, dlogits, metrics };
}

/** The hyperparameters of sgdStep and adamStep, checked on the CPU so a bad one never reaches the GPU. */
function hyper<T extends { lr: number; decay?: Tensor }>(h: unknown, op: string, w: Tensor, known: readonly string[]): T {
  if (h === undefined || h === null) throw new ConfigError(`${op}: hyperparameters { ${known.join(", ")} } are required, got ${shown(h)}`);
  const o = optionsOf<T>(h, op, known) as T;
  numberIn(o.lr, `${op}: lr`, (x) => x >= 0, "a finite number ≥ 0");
  if (o.decay !== undefined) same(w, tensor(o.decay, op, "decay"), op, "w", "decay");
  return o;
}

/** In-place SGD with momentum (Keras): vel = momentum·vel − lr·(g + decay·w); w += vel. */
export async function sgdStep(w: Tensor, g: Tensor, vel: Tensor, hyperparameters: { lr: number; momentum?: number; decay?: Tensor }): Promise<void> {
  for (const [t, n] of [[w, "w"], [g, "g"], [vel, "velocity"]] as const) tensor(t, "sgdStep", n);
  const h = hyper<typeof hyperparameters>(hyperparameters, "sgdStep", w, ["lr", "momentum", "decay"]);
  numberIn(h.momentum ?? 0, "sgdStep: momentum", (x) => x >= 0 && x < 1, "in [0, 1)");
  same(w, g, "sgdStep", "w", "g");
  same(w, vel, "sgdStep", "w", "velocity");
  const e = w.engine;
  const decay = h.decay ?? e.tensor(new Float32Array(w.size), [w.size], "f32", "zero decay");
  // A zero decay made for this call is freed with it (it used to leak one buffer per step).
  await e.run([await K.sgdUpdate(e, { w: w.buffer, g: g.buffer, decay: decay.buffer, vel: vel.buffer }, w.size, h.lr, h.momentum ?? 0)], h.decay ? [] : [decay.buffer]);
}

/** In-place Adam step number `step` (1-based), Keras/TF formulation. */
export async function adamStep(w: Tensor, g: Tensor, m: Tensor, v: Tensor, hyperparameters: { lr: number; step: number; beta1?: number; beta2?: number; eps?: number; decay?: Tensor }): Promise<void> {
  for (const [t, n] of [[w, "w"], [g, "g"], [m, "m"], [v, "v"]] as const) tensor(t, "adamStep", n);
  const h = hyper<typeof hyperparameters>(hyperparameters, "adamStep", w, ["lr", "step", "beta1", "beta2", "eps", "decay"]);
  if (typeof h.step !== "number" || !Number.isInteger(h.step) || h.step < 1) throw new ConfigError(`adamStep: step must be the 1-based step number, a positive integer, got ${shown(h.step)}`);
  for (const k of ["beta1", "beta2"] as const) numberIn(h[k] ?? 0, `adamStep: ${k}`, (x) => x >= 0 && x < 1, "in [0, 1)");
  numberIn(h.eps ?? 1, "adamStep: eps", (x) => x > 0, "a positive number");
  for (const [t, n] of [[g, "g"], [m, "m"], [v, "v"]] as const) same(w, t, "adamStep", "w", n);
  const e = w.engine;
  const beta1 = h.beta1 ?? 0.9;
  const beta2 = h.beta2 ?? 0.999;
  const decay = h.decay ?? e.tensor(new Float32Array(w.size), [w.size], "f32", "zero decay");
  const io = { w: w.buffer, g: g.buffer, decay: decay.buffer, m: m.buffer, v: v.buffer };
  await e.run([await K.adamUpdate(e, io, w.size, { lr_t: K.adamRate(h.lr, beta1, beta2, h.step), beta1, beta2, eps: h.eps ?? 1e-7 })], h.decay ? [] : [decay.buffer]);
}
