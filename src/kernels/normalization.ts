// Dispatch builders for batch normalisation (shaders/batch_norm.wgsl) and layer normalisation (shaders/layer_norm.wgsl).
import { ConfigError, ShapeError } from "../errors.ts";
import { BufferUsage } from "../gpu/flags.ts";
import { Dispatch, grid1d, type Binding } from "../gpu/registry.ts";
import type { KernelContext } from "../kernels.ts";

/** Keras' defaults (BatchNormalization momentum and epsilon; LayerNormalization epsilon). */
export const BATCH_NORM_MOMENTUM = 0.99;
export const NORM_EPSILON = 1e-3;

/** Gradient outputs: add into them (a graph summing fan-out) instead of overwriting. */
export interface Accumulate {
  dx: boolean;
  params: boolean;
}
const OVERWRITE: Accumulate = { dx: false, params: false };

function checkSize(label: string, sizes: Record<string, number>): void {
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`${label}: ${k} must be a positive integer, got ${v}`);
  }
}

/**
 * A 64-invocation workgroup as (lanes along an axis, lanes across rows): the axis gets the power of two
 * that covers it, at most `cap`, so a short axis leaves its lanes to rows instead of idling them.
 */
/** Rows each invocation of batch_norm_normalize (and _inference) walks. */
const NORMALIZE_ROWS = 8;

function tile(size: number, cap: number): [number, number] {
  const lanes = Math.min(cap, 2 ** Math.ceil(Math.log2(size)));
  return [lanes, 64 / lanes];
}

// Writable bindings of one buffer in one dispatch are an aliasing error, so each absent output of
// batch_norm_backward gets its own 16-byte stand-in.
const standIns = new WeakMap<GPUDevice, Record<"dx" | "dgamma" | "dbeta", GPUBuffer>>();
function absentOutputs(device: GPUDevice): Record<"dx" | "dgamma" | "dbeta", GPUBuffer> {
  let s = standIns.get(device);
  if (!s) {
    const make = (role: string) => device.createBuffer({ label: `placeholder (absent ${role})`, size: 16, usage: BufferUsage.STORAGE });
    s = { dx: make("dx"), dgamma: make("dgamma"), dbeta: make("dbeta") };
    standIns.set(device, s);
  }
  return s;
}

// ---------------------------------------------------------------- batch normalisation

export interface BatchNormIo {
  x: Binding; // (R, C)
  gamma: Binding; // (C)
  beta: Binding; // (C)
  y: Binding; // (R, C)
  /** (C) batch mean, written in training and kept for backward; unused in inference. */
  mean?: Binding;
  /** (C) 1/sqrt(batch variance + epsilon), the same. */
  invstd?: Binding;
  movingMean: Binding; // (C) updated in place in training, read in inference
  movingVar: Binding; // (C)
}

export interface BatchNormGeom {
  R: number;
  C: number;
  /** Rows of x that belong to the batch (default R); change per step with setUniforms({ rows_valid }). */
  rowsValid?: number;
  /** Default 0.99. */
  momentum?: number;
  /** Default 1e-3. */
  epsilon?: number;
}

function bnUniforms(label: string, g: BatchNormGeom): Record<string, number> {
  checkSize(label, { R: g.R, C: g.C });
  const rowsValid = g.rowsValid ?? g.R;
  const momentum = g.momentum ?? BATCH_NORM_MOMENTUM;
  const epsilon = g.epsilon ?? NORM_EPSILON;
  if (!Number.isInteger(rowsValid) || rowsValid < 1 || rowsValid > g.R) throw new ShapeError(`${label}: rowsValid must be an integer in 1..${g.R} (R), got ${rowsValid}`);
  if (!(momentum >= 0 && momentum <= 1)) throw new ConfigError(`${label}: momentum must be in [0, 1], got ${momentum}`);
  if (!(epsilon > 0)) throw new ConfigError(`${label}: epsilon must be positive, got ${epsilon}`);
  return { R: g.R, C: g.C, rows_valid: rowsValid, momentum, epsilon, has_dx: 0, has_dgamma: 0, has_dbeta: 0 };
}

/** The ACC_DX / ACC_PARAMS pipeline constants, given only when set (see accumulating() in kernels.ts). */
function accConstants(dx: boolean, params: boolean): { ACC_DX?: number; ACC_PARAMS?: number } {
  return { ...(dx ? { ACC_DX: 1 } : {}), ...(params ? { ACC_PARAMS: 1 } : {}) };
}

/**
 * Training: [statistics + moving update, normalise]; inference: [normalise with the moving statistics].
 * Every returned dispatch has the uniform rows_valid (a plan sets it on all of them for a partial batch).
 */
export async function batchNormForward(ctx: KernelContext, io: BatchNormIo, g: BatchNormGeom, training: boolean, label = "batch_norm_forward"): Promise<Dispatch[]> {
  const u = bnUniforms(label, g);
  const kernels = ctx.kernels;
  const [WG_C, WG_R] = tile(g.C, 16);
  // Each invocation walks NORMALIZE_ROWS rows, so its channel's four parameters are loaded once per that
  // many elements, not once per element (on CPU adapters a load costs more than the arithmetic).
  const rowGroups = Math.min(Math.ceil(g.R / (WG_R * NORMALIZE_ROWS)), 65535);
  const { x, gamma, beta, y, movingMean: moving_mean, movingVar: moving_var } = io;
  if (!training) {
    const k = await kernels.kernel("batch_norm.wgsl", "batch_norm_inference", { WG_C, WG_R });
    return [new Dispatch(kernels.device, k, { x, gamma, beta, y, moving_mean, moving_var }, [Math.ceil(g.C / WG_C), rowGroups, 1], u, label)];
  }
  const { mean, invstd } = io;
  if (!mean || !invstd) throw new ConfigError(`${label}: training needs mean and invstd buffers (C = ${g.C} each) to keep for backward`);
  const [stats, normalize] = await Promise.all([
    kernels.kernel("batch_norm.wgsl", "batch_norm_stats", { WG_C, WG_R }),
    kernels.kernel("batch_norm.wgsl", "batch_norm_normalize", { WG_C, WG_R }),
  ]);
  return [
    new Dispatch(kernels.device, stats, { x, mean, invstd, moving_mean, moving_var }, [Math.ceil(g.C / WG_C), 1, 1], u, `${label} (statistics)`),
    new Dispatch(kernels.device, normalize, { x, gamma, beta, y, mean, invstd }, [Math.ceil(g.C / WG_C), rowGroups, 1], u, `${label} (normalise)`),
  ];
}

export interface BatchNormGradIo {
  dy: Binding; // (R, C)
  x: Binding; // (R, C)
  gamma: Binding; // (C)
  mean: Binding; // (C) from the forward pass
  invstd: Binding; // (C)
  dx?: Binding; // (R, C); rows >= rowsValid get 0 (kept as they are when accumulating)
  dgamma?: Binding; // (C)
  dbeta?: Binding; // (C)
}

/** dx, dgamma, dbeta (any subset) in one pass per group of channels; settable rows_valid as in forward. */
export async function batchNormBackward(
  ctx: KernelContext,
  io: BatchNormGradIo,
  g: Pick<BatchNormGeom, "R" | "C" | "rowsValid">,
  acc: Accumulate = OVERWRITE,
  label = "batch_norm_backward",
): Promise<Dispatch> {
  if (!io.dx && !io.dgamma && !io.dbeta) throw new ConfigError(`${label}: nothing to compute (no dx, dgamma or dbeta)`);
  const kernels = ctx.kernels;
  const [WG_C, WG_R] = tile(g.C, 16);
  const k = await kernels.kernel("batch_norm.wgsl", "batch_norm_backward", { WG_C, WG_R, ...accConstants(acc.dx && !!io.dx, acc.params && !!(io.dgamma || io.dbeta)) });
  const absent = absentOutputs(kernels.device);
  const u = {
    ...bnUniforms(label, g),
    has_dx: io.dx ? 1 : 0,
    has_dgamma: io.dgamma ? 1 : 0,
    has_dbeta: io.dbeta ? 1 : 0,
  };
  const { dy, x, gamma, mean, invstd } = io;
  const buffers = { dy, x, gamma, mean, invstd, dx: io.dx ?? absent.dx, dgamma: io.dgamma ?? absent.dgamma, dbeta: io.dbeta ?? absent.dbeta };
  return new Dispatch(kernels.device, k, buffers, [Math.ceil(g.C / WG_C), 1, 1], u, label);
}

// ---------------------------------------------------------------- layer normalisation

export interface LayerNormIo {
  x: Binding; // (R, D)
  gamma: Binding; // (D)
  beta: Binding; // (D)
  y: Binding; // (R, D)
  mean: Binding; // (R) kept for backward
  rstd: Binding; // (R) 1/sqrt(variance + epsilon)
}

/**
 * Row passes: at most 16 lanes along a row, the other lanes on further rows; grid folded past 65535.
 * After the barrier every lane adds its row's WG_D partials (WG_D² reads a row): with 64 lanes a row,
 * lavapipe took 2–6× longer on (25088, 32) and (6272, 64) than with 16 (2 noisy vCPUs).
 */
function rowPass(R: number, D: number): { constants: { WG_D: number; WG_ROWS: number }; grid: [number, number, number] } {
  const [WG_D, WG_ROWS] = tile(D, 16);
  return { constants: { WG_D, WG_ROWS }, grid: grid1d(R, WG_ROWS) };
}

/** y (R, D) = gamma·(x − mean)·rstd + beta per row; epsilon defaults to 1e-3. */
export async function layerNormForward(ctx: KernelContext, io: LayerNormIo, g: { R: number; D: number; epsilon?: number }, label = "layer_norm_forward"): Promise<Dispatch> {
  checkSize(label, { R: g.R, D: g.D });
  const epsilon = g.epsilon ?? NORM_EPSILON;
  if (!(epsilon > 0)) throw new ConfigError(`${label}: epsilon must be positive, got ${epsilon}`);
  const kernels = ctx.kernels;
  const { constants, grid } = rowPass(g.R, g.D);
  const k = await kernels.kernel("layer_norm.wgsl", "layer_norm_forward", constants);
  const u = { R: g.R, D: g.D, epsilon, has_dgamma: 0, has_dbeta: 0 };
  const { x, gamma, beta, y, mean, rstd } = io;
  return new Dispatch(kernels.device, k, { x, gamma, beta, y, mean, rstd }, grid, u, label);
}

export interface LayerNormGradIo {
  dy: Binding; // (R, D)
  x: Binding; // (R, D)
  gamma: Binding; // (D)
  mean: Binding; // (R) from the forward pass
  rstd: Binding; // (R)
  dx?: Binding; // (R, D)
  dgamma?: Binding; // (D)
  dbeta?: Binding; // (D)
}

/** [dx by rows] and/or [dgamma, dbeta by columns]: the two reductions run along different axes. */
export async function layerNormBackward(ctx: KernelContext, io: LayerNormGradIo, g: { R: number; D: number }, acc: Accumulate = OVERWRITE, label = "layer_norm_backward"): Promise<Dispatch[]> {
  checkSize(label, { R: g.R, D: g.D });
  if (!io.dx && !io.dgamma && !io.dbeta) throw new ConfigError(`${label}: nothing to compute (no dx, dgamma or dbeta)`);
  const kernels = ctx.kernels;
  const u = { R: g.R, D: g.D, epsilon: 0, has_dgamma: io.dgamma ? 1 : 0, has_dbeta: io.dbeta ? 1 : 0 };
  const { dy, x, gamma, mean, rstd } = io;
  const out: Dispatch[] = [];
  if (io.dx) {
    const { constants, grid } = rowPass(g.R, g.D);
    const k = await kernels.kernel("layer_norm.wgsl", "layer_norm_backward", { ...constants, ...accConstants(acc.dx, false) });
    out.push(new Dispatch(kernels.device, k, { dy, x, gamma, mean, rstd, dx: io.dx }, grid, u, `${label} (dx)`));
  }
  if (io.dgamma || io.dbeta) {
    // Column sums read the rows side by side, at most 16 columns wide, the other lanes down the rows.
    const [WG_D, WG_ROWS] = tile(g.D, 16);
    const k = await kernels.kernel("layer_norm.wgsl", "layer_norm_param_grad", { WG_D, WG_ROWS, ...accConstants(false, acc.params) });
    const ph = kernels.placeholderOut;
    out.push(new Dispatch(kernels.device, k, { dy, x, mean, rstd, dgamma: io.dgamma ?? ph, dbeta: io.dbeta ?? ph }, [Math.ceil(g.D / WG_D), 1, 1], u, `${label} (dgamma, dbeta)`));
  }
  return out;
}
