// Dispatch builders, one per kernel entry point: given buffers and sizes, a ready-to-encode Dispatch.
// Both the eager tensor API (src/ops.ts) and the model planner build their GPU work from these.
import { ConfigError } from "./errors.ts";
import { windowUniforms, type WindowPlan } from "./geometry.ts";
import { Dispatch, grid1d, type Binding, type KernelRegistry } from "./gpu/registry.ts";
import { addShaderSource } from "./gpu/shaders.ts";

export type Activation = "linear" | "relu" | "sigmoid" | "tanh";
export const ACTIVATIONS: readonly Activation[] = ["linear", "relu", "sigmoid", "tanh"];

/** The code lib/activation.wgsl uses for each activation. */
export function activationCode(act: Activation | undefined): number {
  const code = ACTIVATIONS.indexOf(act ?? "linear");
  if (code < 0) throw new ConfigError(`unknown activation "${act}"; use one of ${ACTIVATIONS.join(", ")}`);
  return code;
}

/** Workgroup width of the 1-D element-wise kernels (their `override WG`). */
export const WG = 64;

/** Elements per invocation of the element-wise kernels that walk several (lib/index.wgsl's ELEMENTS). */
export const ELEMENTS = 4;

/**
 * Matmul implementation: workgroup-memory tiles (GPUs), barrier-free register blocks (CPU drivers), or
 * register blocks shared across a subgroup of 8 or 4 SIMD lanes (CPU drivers that offer subgroups of
 * that size: lavapipe 8, SwiftShader 4), stepping K one at a time or, k4, four at a time (SwiftShader
 * stores an accumulator under the lane mask at every write; lavapipe keeps it in a register).
 */
export type MatmulVariant = "tiled" | "direct" | "subgroup8" | "subgroup4" | "subgroup8k4" | "subgroup4k4";

/**
 * Per variant: its shader entry point (in `file`; a subgroup variant's "v" twin reads op(B) as vec4s),
 * the subgroup size it needs, the block of C (rows × cols) one workgroup covers, and its pipeline
 * constants. tiled and direct give each invocation a 4×4 or 8×8 block of a (WG_Y, WG_X) workgroup; BK is
 * the depth the tiled kernel stages per barrier; a subgroup variant gives each subgroup 4·SG × 4·SG,
 * WG / SG subgroups per workgroup, and walks K in steps of K_STEP.
 */
export const MATMUL_TILES: Record<MatmulVariant, { file: "matmul.wgsl" | "matmul_subgroup.wgsl"; entry: string; lanes?: number; rows: number; cols: number; constants: Record<string, number> }> = {
  tiled: { file: "matmul.wgsl", entry: "matmul_tiled", rows: 64, cols: 64, constants: { WG_X: 16, WG_Y: 16, BK: 16 } },
  direct: { file: "matmul.wgsl", entry: "matmul_direct", rows: 32, cols: 32, constants: { WG_X: 4, WG_Y: 4 } },
  subgroup8: { file: "matmul_subgroup.wgsl", entry: "matmul_subgroup8", lanes: 8, rows: 32, cols: 32, constants: { WG: 8 } },
  subgroup4: { file: "matmul_subgroup.wgsl", entry: "matmul_subgroup4", lanes: 4, rows: 32, cols: 16, constants: { WG: 8 } },
  subgroup8k4: { file: "matmul_subgroup.wgsl", entry: "matmul_subgroup8", lanes: 8, rows: 32, cols: 32, constants: { WG: 8, K_STEP: 4 } },
  subgroup4k4: { file: "matmul_subgroup.wgsl", entry: "matmul_subgroup4", lanes: 4, rows: 32, cols: 16, constants: { WG: 8, K_STEP: 4 } },
};

/** The variants this device can run: the subgroup ones only where it has the feature and subgroups of exactly their size. */
export function matmulVariants(device: GPUDevice, subgroupSizes?: readonly [number, number]): MatmulVariant[] {
  const [min, max] = subgroupSizes ?? [0, 0];
  const lanes = device.features.has("subgroups") && min === max ? min : 0;
  return (Object.keys(MATMUL_TILES) as MatmulVariant[]).filter((v) => (MATMUL_TILES[v].lanes ?? lanes) === lanes);
}

export interface KernelContext {
  kernels: KernelRegistry;
  matmulVariant: MatmulVariant;
  /**
   * Whether memory-bound kernels take their vec4 twins where shapes allow (bias_grad, SGD/Adam): 4 floats
   * per load and store. Default true here; an Engine sets it from EngineOptions.vectors (default false).
   */
  vec4?: boolean;
  /** Workgroups per grid dimension before a kernel folds its grid (default: the device's limit; tests lower it). */
  maxWorkgroups?: number;
}

/** The most workgroups one grid dimension may have on this device. */
export function gridLimit(ctx: KernelContext): number {
  return ctx.maxWorkgroups ?? ctx.kernels.device.limits.maxComputeWorkgroupsPerDimension;
}

export interface MatmulSpec {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** (N) added before the activation. */
  bias?: Binding;
  act?: Activation;
  /** c += result (after the epilogue) instead of c = result: sums gradients where a tensor fans out. */
  accumulate?: boolean;
}

/**
 * Pipeline constants for a gradient writer: ACCUMULATE only when it adds into its output. It is an
 * override, not a uniform, because a read of the output in the epilogue, even behind a uniform branch,
 * slowed matmul by about 20% on lavapipe; the common overwrite keeps the pipeline it always had.
 */
export const accumulating = (on: boolean | undefined): { ACCUMULATE?: number } => (on ? { ACCUMULATE: 1 } : {});

/** The convolution geometry of a matmul (lib/matmul_io.wgsl's Params): none. */
export const NO_CONV = { H: 0, W: 0, C: 0, KH: 0, KW: 0, SH: 0, SW: 0, PT: 0, PL: 0, OH: 0, OW: 0 };

/**
 * A product of the subgroup kernels' implicit GEMM (matmul_subgroup.wgsl's conv_* entries: the
 * convolution's columns are read from its input, never written; src/kernels/conv_gemm.ts).
 */
export interface ImplicitConv {
  entry: "conv" | "conv_dw";
  p: WindowPlan;
}

/** Whether this context has the implicit-GEMM convolution's kernels: a subgroup matmul and the vec4 kernels. */
export function hasImplicitConv(ctx: KernelContext): boolean {
  return MATMUL_TILES[ctx.matmulVariant].lanes !== undefined && ctx.vec4 !== false;
}

/** Whether the implicit-GEMM convolution runs on this context for F output channels (a multiple of 4). */
export function implicitConvFits(ctx: KernelContext, F: number): boolean {
  return hasImplicitConv(ctx) && F % 4 === 0;
}

/**
 * c (M, N) (+)= act(op(a)·op(b) + bias); with split > 1, c receives split partial products (see
 * matmulSplitK). `implicit`: op(a) is a convolution's columns, read from its input (src/kernels/conv_gemm.ts).
 */
export async function matmul(ctx: KernelContext, a: Binding, b: Binding, c: Binding, s: MatmulSpec, label = "matmul", split = 1, implicit?: ImplicitConv): Promise<Dispatch> {
  const variant = ctx.matmulVariant;
  const { file, entry, lanes, rows, cols, constants } = tileFor(variant, s.M);
  // A subgroup kernel reads op(B) as vec4s along N where B is not transposed and N is a multiple of 4
  // (matmul_subgroup<SG>v, with the vec4 twins: SwiftShader's dense forward and dW 11–18% faster).
  const vec4B = ctx.vec4 !== false && lanes !== undefined && !s.transB && s.N % 4 === 0;
  if (implicit && (!vec4B || s.transA || s.transB)) throw new ConfigError(`${label}: the implicit-GEMM convolution needs a subgroup matmul, the vec4 kernels and F a multiple of 4 (implicitConvFits)`);
  // One pipeline per variant (two where a gradient accumulates): transposes are strides and the epilogue is a uniform (see matmul.wgsl).
  const kChunk = Math.ceil(s.K / split);
  // A k4 variant walks K four at a time, wasting the surplus of its last step: a chunk of K < 16 (a
  // convolution's K = 9) runs one at a time, and so does an implicit convolution whose runs (C
  // channels forward, OW pixels for dW) are short and not a multiple of 4.
  const run = implicit ? (implicit.entry === "conv" ? implicit.p.C : implicit.p.OW) : kChunk;
  const { K_STEP, ...rest } = constants;
  const kStep: Record<string, number> = K_STEP !== undefined && (run >= 16 || (implicit !== undefined && run % 4 === 0)) ? { K_STEP } : {};
  if (lanes) await loadSubgroupShader();
  const name = implicit ? `${implicit.entry}_subgroup${lanes}v` : `${entry}${vec4B ? "v" : ""}`;
  const k = await ctx.kernels.kernel(file, name, { ...rest, ...kStep, ...accumulating(s.accumulate) });
  const splits = Math.ceil(s.K / kChunk);
  if (splits > 1 && s.accumulate) throw new ConfigError(`${label}: split partial products cannot accumulate; use matmulSplitK, whose sum of splits can`);
  // Row blocks past the grid limit fold into z beside the splits (matmul.wgsl's row_block).
  const blocks = Math.ceil(s.M / rows);
  const folds = Math.ceil(blocks / gridLimit(ctx));
  const grid: [number, number, number] = [Math.ceil(s.N / cols), Math.ceil(blocks / folds), splits * folds];
  const strides = {
    a_m: s.transA ? 1 : s.K,
    a_k: s.transA ? s.M : 1,
    b_k: s.transB ? 1 : s.N,
    b_n: s.transB ? s.K : 1,
  };
  const p = implicit?.p;
  const conv = p ? { H: p.H, W: p.W, C: p.C, KH: p.KH, KW: p.KW, SH: p.SH, SW: p.SW, PT: p.PT, PL: p.PL, OH: p.OH, OW: p.OW } : NO_CONV;
  const uniforms = { M: s.M, N: s.N, K: s.K, k_chunk: kChunk, splits, ...strides, has_bias: s.bias ? 1 : 0, act: activationCode(s.act), ...conv };
  const bias = s.bias ?? ctx.kernels.placeholder;
  return new Dispatch(ctx.kernels.device, k, vec4B ? { a, b4: b, c, bias } : { a, b, c, bias }, grid, uniforms, label);
}

/** Adds the subgroup matmul's shader to shaderSources; the core loads it on first use (src/kernels/matmul_subgroup.ts). */
export async function loadSubgroupShader(): Promise<void> {
  addShaderSource("matmul_subgroup.wgsl", (await import("./kernels/matmul_subgroup.ts")).default);
}

/**
 * The variant's tile for a product of M rows. A subgroup variant whose workgroup stacks several subgroups
 * along rows takes one subgroup per workgroup where one covers M: the others would compute nothing but
 * clamped copies of the last row (SwiftShader, the reference CNN's convolution dW, M = 9: 16 rows computed
 * instead of 32).
 */
function tileFor(variant: MatmulVariant, M: number): (typeof MATMUL_TILES)[MatmulVariant] {
  const tile = MATMUL_TILES[variant];
  const lanes = tile.lanes;
  if (!lanes || tile.constants.WG === lanes || M > 4 * lanes) return tile;
  return { ...tile, rows: 4 * lanes, constants: { ...tile.constants, WG: lanes } };
}

/** How many K-splits a product needs so that a small output with a long K still fills the adapter. */
export function splitsFor(M: number, N: number, K: number, variant: MatmulVariant): number {
  const { rows, cols } = tileFor(variant, M);
  const workgroups = Math.ceil(N / cols) * Math.ceil(M / rows);
  if (workgroups >= 32 || K < 1024) return 1;
  return Math.min(64, Math.ceil(32 / workgroups), Math.floor(K / 256));
}

/** Split-K matmul without epilogue: partial products into `partials` (splits·M·N floats), then their sum into c (added to c when s.accumulate). */
export async function matmulSplitK(ctx: KernelContext, a: Binding, b: Binding, c: Binding, partials: Binding, s: MatmulSpec, splits: number, label = "matmul", implicit?: ImplicitConv): Promise<Dispatch[]> {
  if (splits <= 1) return [await matmul(ctx, a, b, c, s, label, 1, implicit)];
  if (s.bias || (s.act ?? "linear") !== "linear") throw new ConfigError(`${label}: split-K products cannot fuse a bias or activation`);
  const partial = await matmul(ctx, a, b, partials, { ...s, accumulate: false }, `${label} (split-K)`, splits, implicit);
  const kChunk = Math.ceil(s.K / splits);
  return [partial, await sumSplits(ctx, partials, c, s.M * s.N, Math.ceil(s.K / kChunk), s.accumulate ?? false, `${label} (sum of splits)`)];
}

/** total (n) (+)= Σ_s partials[s], the second pass of split-K matmul and of bias_grad's row chunks. */
export async function sumSplits(ctx: KernelContext, partials: Binding, total: Binding, n: number, splits: number, accumulate: boolean, label = "sum_splits"): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("sum_splits.wgsl", "sum_splits", { WG, ...accumulating(accumulate) });
  return new Dispatch(ctx.kernels.device, k, { partials, total }, grid1d(n, WG, gridLimit(ctx)), { n, splits }, label);
}

/** cols (B·OH·OW, KH·KW·C) from x (B, H, W, C). */
export async function im2col(ctx: KernelContext, x: Binding, cols: Binding, p: WindowPlan, label = "im2col"): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("im2col.wgsl", "im2col", { WG });
  const n = p.B * p.OH * p.OW * channelGroups(p.C);
  return new Dispatch(ctx.kernels.device, k, { x, cols }, grid1d(n, WG), windowUniforms(p), label);
}

/** dx (B, H, W, C) (+)= adjoint of im2col applied to dcols. */
export async function col2im(ctx: KernelContext, dcols: Binding, dx: Binding, p: WindowPlan, label = "col2im", accumulate = false): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("im2col.wgsl", "col2im", { WG, ...accumulating(accumulate) });
  return new Dispatch(ctx.kernels.device, k, { dcols, dx }, grid1d(p.B * p.H * p.W * channelGroups(p.C), WG), windowUniforms(p), label);
}

/** im2col.wgsl moves 4 neighbouring channels per invocation (its CPL). */
const channelGroups = (C: number) => Math.ceil(C / 4);

/**
 * Batch items a pool invocation walks: on CPU adapters (told apart by their matmul: tiling wins only on
 * GPUs) 8, so the divisions that place an invocation are paid once per 8 elements; on GPUs 1, for more
 * parallelism. More where the grid would pass its limit.
 */
function poolBatchPerInvocation(ctx: KernelContext, B: number, rows: number): number {
  const per = ctx.matmulVariant === "tiled" ? 1 : 8;
  return Math.max(per, Math.ceil(B / Math.floor(gridLimit(ctx) / rows)));
}

/** Pool kernels run on a (channel, column, row · batch chunk) grid; the workgroup covers the channels first. */
async function poolDispatch(ctx: KernelContext, entry: string, buffers: Record<string, Binding>, p: WindowPlan, over: "input" | "output", label: string, accumulate = false): Promise<Dispatch> {
  const WG_C = Math.min(64, 2 ** Math.ceil(Math.log2(p.C)));
  const WG_X = 64 / WG_C;
  const window: Record<string, number> = entry.endsWith("_tiled") ? { WIN_H: p.KH, WIN_W: p.KW } : {};
  const k = await ctx.kernels.kernel("pool.wgsl", entry, { WG_C, WG_X, ...window, ...accumulating(accumulate) });
  const [rows, width] = over === "input" ? [p.H, p.W] : [p.OH, p.OW];
  if (rows > gridLimit(ctx) || Math.ceil(width / WG_X) > gridLimit(ctx)) throw new ConfigError(`${label}: a ${rows}×${width} image is more than one grid covers (${gridLimit(ctx)} rows)`);
  const per = poolBatchPerInvocation(ctx, p.B, rows);
  const grid: [number, number, number] = [Math.ceil(p.C / WG_C), Math.ceil(width / WG_X), rows * Math.ceil(p.B / per)];
  return new Dispatch(ctx.kernels.device, k, buffers, grid, { ...windowUniforms(p, true), per }, label);
}

/** Tiling windows: stride = pool size and no padding, so every window lies inside the image ('valid', or 'same' on a size the stride divides). */
const tiling = (p: WindowPlan) => p.SH === p.KH && p.SW === p.KW && p.PT === 0 && p.PL === 0 && p.OH * p.SH <= p.H && p.OW * p.SW <= p.W;

export const maxPoolForward = (ctx: KernelContext, x: Binding, y: Binding, argmax: Binding, p: WindowPlan, label = "max_pool_forward") =>
  poolDispatch(ctx, tiling(p) ? "max_pool_forward_tiled" : "max_pool_forward", { x, y, argmax }, p, "output", label);

/** dx (+)= the max-pool gradient. Tiling windows (stride = pool size, no padding) scatter from each window; others gather per input. */
export const maxPoolBackward = (ctx: KernelContext, dy: Binding, argmax: Binding, dx: Binding, p: WindowPlan, label = "max_pool_backward", accumulate = false) =>
  tiling(p)
    ? poolDispatch(ctx, "max_pool_backward_tiled", { dy, argmax_in: argmax, dx }, p, "output", label, accumulate)
    : poolDispatch(ctx, "max_pool_backward", { dy, argmax_in: argmax, dx }, p, "input", label, accumulate);

export const avgPoolForward = (ctx: KernelContext, x: Binding, y: Binding, p: WindowPlan, label = "avg_pool_forward") => poolDispatch(ctx, "avg_pool_forward", { x, y }, p, "output", label);

/** dx (+)= the average-pool gradient. */
export const avgPoolBackward = (ctx: KernelContext, dy: Binding, dx: Binding, p: WindowPlan, label = "avg_pool_backward", accumulate = false) =>
  poolDispatch(ctx, "avg_pool_backward", { dy, dx }, p, "input", label, accumulate);

export async function activationForward(ctx: KernelContext, x: Binding, y: Binding, n: number, act: Activation, label = `${act}_forward`): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("activation.wgsl", "activation_forward", { WG, ACT: activationCode(act) });
  return new Dispatch(ctx.kernels.device, k, { x, y }, grid1d(n, WG * ELEMENTS), { n }, label);
}

/** dx (+)= dy · act'(y), from the forward output y. */
export async function activationBackward(ctx: KernelContext, y: Binding, dy: Binding, dx: Binding, n: number, act: Activation, label = `${act}_backward`, accumulate = false): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("activation.wgsl", "activation_backward", { WG, ACT: activationCode(act), ...accumulating(accumulate) });
  return new Dispatch(ctx.kernels.device, k, { y_in: y, dy, dx }, grid1d(n, WG * ELEMENTS), { n }, label);
}

/**
 * Elements (floats, or vec4s for bias_grad4) of a workgroup's block in bias_grad: about this many, so that
 * a small gradient needs one pass. (vec4 blocks of 8192 rather than 2048: the reference CNN's 43,264 × 32
 * convolution gradient took 20.6 ms instead of 27 on SwiftShader, 2.4 instead of 4.1 on lavapipe.)
 */
const BIAS_GRAD_BLOCK = 8192;

/**
 * How bias_grad covers an (R, N) gradient: `cols` columns of `sub` rows at a time per workgroup, `chunk`
 * rows per workgroup, `splits` row chunks (more than one: the column sums go through `splits·N` floats
 * of partials and a second pass).
 */
export function biasGradLayout(ctx: KernelContext, R: number, N: number): { cols: number; sub: number; chunk: number; splits: number; vec4: boolean } {
  // Where N is a multiple of 4, bias_grad4 walks vec4s of 4 columns: the layout is of N / 4 of them.
  const vec4 = ctx.vec4 !== false && N % 4 === 0;
  const limit = gridLimit(ctx);
  const width = vec4 ? N / 4 : N;
  const cols = Math.min(width, WG);
  const sub = Math.floor(WG / cols);
  const rows = Math.ceil(BIAS_GRAD_BLOCK / cols / sub) * sub;
  const chunk = Math.max(rows, Math.ceil(R / limit / sub) * sub);
  return { cols, sub, chunk, splits: Math.max(1, Math.ceil(R / chunk)), vec4 };
}

/** The bindings of a kernel's vec4 twin: each buffer under its binding's name with a 4 appended (x → x4). */
const vec4Bindings = (buffers: Record<string, Binding>): Record<string, Binding> => Object.fromEntries(Object.entries(buffers).map(([name, b]) => [`${name}4`, b]));

/** Floats of scratch bias_grad needs for its partial column sums (0: none). */
export function biasGradPartials(ctx: KernelContext, R: number, N: number): number {
  const { splits } = biasGradLayout(ctx, R, N);
  return splits > 1 ? splits * N : 0;
}

/**
 * The backward pass through a layer's bias and activation: dz = dy · act'(y) (written when `dact` is given
 * and not linear) and db (N) = column sums of dz (when `db` is given; added to db when `accumulate`, dz is
 * always overwritten). One pass over dy (R, N), so the products that follow read dz as it is; a large
 * gradient's column sums take a second, small pass over `partials` (biasGradPartials floats).
 */
export async function biasGrad(ctx: KernelContext, dy: Binding, db: Binding | undefined, R: number, N: number, dact?: { act: Activation; y: Binding; dz: Binding }, label = "bias_grad", accumulate = false, partials?: Binding): Promise<Dispatch[]> {
  const act = activationCode(dact?.act);
  if (!db && act === 0) throw new ConfigError(`${label}: nothing to compute (no bias and a linear activation)`);
  const { vec4, ...layout } = biasGradLayout(ctx, R, N);
  const split = db !== undefined && layout.splits > 1;
  if (split && !partials) throw new ConfigError(`${label}: a (${R}, ${N}) bias gradient needs ${layout.splits * N} floats of partial sums`);
  const k = await ctx.kernels.kernel("bias_grad.wgsl", vec4 ? "bias_grad4" : "bias_grad", split ? { WG } : { WG, ...accumulating(db && accumulate) });
  const { placeholder, placeholderOut } = ctx.kernels;
  const scalar = { dy, act_y: act ? dact!.y : placeholder, dz: act ? dact!.dz : placeholderOut, db: split ? partials! : (db ?? placeholderOut) };
  const buffers = vec4 ? vec4Bindings(scalar) : scalar;
  const width = vec4 ? N / 4 : N;
  const uniforms = { R, N: width, act, has_db: db ? 1 : 0, ...layout };
  const grid: [number, number, number] = [Math.ceil(width / layout.cols), layout.splits, 1];
  if (grid[0] > gridLimit(ctx)) throw new ConfigError(`${label}: ${N} columns are more than bias_grad covers (${gridLimit(ctx) * layout.cols})`);
  const out = [new Dispatch(ctx.kernels.device, k, buffers, grid, uniforms, label)];
  if (split) out.push(await sumSplits(ctx, partials!, db!, N, layout.splits, accumulate, `${label} (sum of row chunks)`));
  return out;
}

export interface SoftmaxXentIo {
  logits: Binding;
  /** (B) u32 class ids, or (B, K) f32 target probabilities. */
  labels?: Binding;
  targets?: Binding;
  loss: Binding;
  dlogits: Binding;
  /** [loss sum, correct, count], accumulated. */
  metrics: Binding;
}

/** Fused softmax + cross-entropy over B rows of K classes; nValid rows count (can be changed per step). */
export async function softmaxXent(ctx: KernelContext, io: SoftmaxXentIo, B: number, K: number, nValid = B, label = "softmax_xent"): Promise<Dispatch> {
  const sparse = io.labels !== undefined;
  if (sparse === (io.targets !== undefined)) throw new ConfigError(`${label}: give exactly one of labels (sparse) or targets (dense)`);
  const k = await ctx.kernels.kernel("softmax_xent.wgsl", sparse ? "softmax_xent_sparse" : "softmax_xent_dense", { WG });
  const ph = ctx.kernels.placeholder;
  const buffers = { logits: io.logits, labels: io.labels ?? ph, targets: io.targets ?? ph, loss: io.loss, dlogits: io.dlogits, metrics: io.metrics };
  return new Dispatch(ctx.kernels.device, k, buffers, [1, 1, 1], { B, K, n_valid: nValid }, label);
}

export interface ArenaIo {
  w: Binding;
  g: Binding;
  /** Per-element L2 coefficient. */
  decay: Binding;
}

/**
 * The update over n elements: where n is a multiple of 4 (a model's arena always is), optimizer.wgsl's
 * vec4 entry point (`<entry>4`, one vec4 per invocation, its n uniform in vec4s), else the scalar one.
 */
async function arenaUpdate(ctx: KernelContext, entry: "sgd" | "adam", buffers: Record<string, Binding>, n: number, uniforms: Record<string, number>, label: string): Promise<Dispatch> {
  const vec4 = ctx.vec4 !== false && n % 4 === 0;
  const k = await ctx.kernels.kernel("optimizer.wgsl", vec4 ? `${entry}4` : entry, { WG });
  const bound = vec4 ? vec4Bindings(buffers) : buffers;
  const grid = vec4 ? grid1d(n / 4, WG) : grid1d(n, WG * ELEMENTS);
  return new Dispatch(ctx.kernels.device, k, bound, grid, { ...uniforms, n: vec4 ? n / 4 : n }, label);
}

export const sgdUpdate = (ctx: KernelContext, io: ArenaIo & { vel: Binding }, n: number, lr: number, momentum: number, label = "sgd"): Promise<Dispatch> =>
  arenaUpdate(ctx, "sgd", { w: io.w, g: io.g, decay: io.decay, vel: io.vel }, n, { lr, momentum }, label);

/** Adam step; call setUniforms({ lr_t }) on the result each step with the bias-corrected rate. */
export const adamUpdate = (ctx: KernelContext, io: ArenaIo & { m: Binding; v: Binding }, n: number, h: { lr_t: number; beta1: number; beta2: number; eps: number }, label = "adam"): Promise<Dispatch> =>
  arenaUpdate(ctx, "adam", { w: io.w, g: io.g, decay: io.decay, m: io.m, v: io.v }, n, h, label);

/** Adam's bias-corrected learning rate for 1-based step t (Keras/TF formulation). */
export function adamRate(lr: number, beta1: number, beta2: number, t: number): number {
  return (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
}

/** Random shifts (whole pixels, each way) and rotations (degrees, each way) of image examples in training gathers. */
export interface Augment {
  shift?: number;
  rotate?: number;
}

/**
 * Gathers rows order[offset..offset+B) of a GPU-resident dataset into a batch buffer. With `augment`
 * (an image of shape `image`, H × W × C), each row is shifted and rotated as data.wgsl describes; its
 * transform follows the `seed` uniform, which the caller sets per step.
 */
export async function gather(
  ctx: KernelContext,
  io: { order: Binding; source: Binding; out: Binding },
  kind: "u8" | "f32" | "u32",
  h: { B: number; row: number; offset: number; count: number; scale: number },
  label = `gather_${kind}`,
  augment?: { image: readonly [number, number, number]; shift: number; rotate: number },
): Promise<Dispatch> {
  if (augment && kind === "u32") throw new ConfigError(`${label}: only image inputs (u8 or f32) can be augmented`);
  const k = await ctx.kernels.kernel("data.wgsl", `gather_${kind}`, augment ? { WG, AUGMENT: 1 } : { WG });
  const buffers: Record<string, Binding> = { order: io.order };
  // The u8 and f32 entries share the augmented path, which names both sources: the other is a placeholder.
  const none = ctx.kernels.placeholder;
  if (kind === "u8") Object.assign(buffers, { bytes: io.source, values: none, x: io.out });
  else if (kind === "f32") Object.assign(buffers, { values: io.source, bytes: none, x: io.out });
  else Object.assign(buffers, { ids: io.source, ids_out: io.out });
  const [H, W, C] = augment?.image ?? [0, 0, 0];
  const u = { ...h, H, W, C, shift: augment?.shift ?? 0, rotate: ((augment?.rotate ?? 0) * Math.PI) / 180, seed: 0 };
  return new Dispatch(ctx.kernels.device, k, buffers, grid1d(h.B * h.row, WG), u, label);
}

/**
 * Inverted dropout forward (y from x) or backward (dx (+)= masked dy); the mask is a hash of (seed, element),
 * so call setUniforms({ seed }) with the same per-layer, per-step seed on both directions. `accumulate`
 * applies to the backward pass only.
 */
export async function dropout(ctx: KernelContext, dir: "forward" | "backward", src: Binding, dst: Binding, n: number, rate: number, label = `dropout_${dir}`, accumulate = false): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("dropout.wgsl", `dropout_${dir}`, { WG, ...accumulating(dir === "backward" && accumulate) });
  const buffers: Record<string, Binding> = dir === "forward" ? { x: src, y: dst } : { dy: src, dx: dst };
  return new Dispatch(ctx.kernels.device, k, buffers, grid1d(n, WG), { n, seed: 0, rate }, label);
}

/** Mean squared error or binary cross-entropy on (B, K) predictions. */
export async function elementLoss(ctx: KernelContext, kind: "mse" | "bce", io: { pred: Binding; truth: Binding; loss: Binding; dpred: Binding; metrics: Binding }, B: number, K: number, nValid = B, label: string = kind): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("loss.wgsl", kind, { WG });
  return new Dispatch(ctx.kernels.device, k, io, [1, 1, 1], { B, K, n_valid: nValid }, label);
}

/** Row-wise softmax of logits (B, K) into probs. */
export async function softmax(ctx: KernelContext, logits: Binding, probs: Binding, B: number, K: number, label = "softmax"): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("softmax_xent.wgsl", "softmax", { WG });
  return new Dispatch(ctx.kernels.device, k, { logits, probs }, [Math.ceil(B / WG), 1, 1], { B, K, n_valid: B }, label);
}
