// A 3×3 convolution fused with the 2×2 max pooling after it (shaders/conv_pool.wgsl): whether a pair fits
// the kernel, the sizes of its buffers, and its dispatch builders. The core loads this module (with the
// shader and the fusion pass, src/graph/fuse.ts) on first use: the library build makes them a file of
// their own, dist/lib/fuse.js, which models without such a pair never fetch.
import convPoolSource from "../../shaders/conv_pool.wgsl?raw";
import { ConfigError } from "../errors.ts";
import { Dispatch, grid1d, type Binding } from "../gpu/registry.ts";
import { addShaderSource } from "../gpu/shaders.ts";
import { activationCode, gridLimit, sumSplits, WG, type Activation, type KernelContext } from "../kernels.ts";
import type { WindowPlan } from "../geometry.ts";

addShaderSource("conv_pool.wgsl", convPoolSource);

/** The convolution (over x) and the pooling (over the convolution's output) of one fused op. */
export interface ConvPoolGeom {
  conv: WindowPlan;
  pool: WindowPlan;
  /** Output channels (the convolution's filters). */
  F: number;
}

/** Why a convolution and pooling cannot run as conv_pool.wgsl, or undefined when they can. */
export function convPoolUnfit(g: ConvPoolGeom): string | undefined {
  const { conv: c, pool: q, F } = g;
  if (c.KH !== 3 || c.KW !== 3 || c.SH !== 1 || c.SW !== 1) return `a ${c.KH}×${c.KW} convolution at stride ${c.SH}×${c.SW} (the kernel takes 3×3 at stride 1)`;
  if (q.KH !== 2 || q.KW !== 2) return `a ${q.KH}×${q.KW} pooling window (the kernel takes 2×2)`;
  if (F % 4 !== 0) return `${F} filters (not a multiple of 4)`;
  return undefined;
}

/** Pooled positions (batch included): the forward pass's invocations. */
export const convPoolPositions = (g: ConvPoolGeom) => g.pool.B * g.pool.OH * g.pool.OW;

/** u32s of argmax a training forward pass saves: one per pooled position and group of 4 channels. */
export const convPoolArgmaxSize = (g: ConvPoolGeom) => (convPoolPositions(g) * g.F) / 4;

/**
 * Slices the filter gradient's reduction over pooled positions is cut into (its partial sums): about 32
 * positions each, so that a small batch still spreads over the adapter, at most 256 (the partials stay a
 * fraction of the gradient's input).
 */
export const convPoolSlices = (g: ConvPoolGeom) => Math.max(1, Math.min(256, Math.ceil(convPoolPositions(g) / 32)));

/** Floats of scratch the backward pass needs: partial filter and bias gradients, one set per slice. */
export function convPoolPartials(g: ConvPoolGeom): { dw: number; db: number } {
  const s = convPoolSlices(g);
  return { dw: s * 9 * g.conv.C * g.F, db: s * g.F };
}

function constants(g: ConvPoolGeom): Record<string, number> {
  const why = convPoolUnfit(g);
  if (why) throw new ConfigError(`conv_pool: cannot fuse ${why}`);
  return { C: g.conv.C, WG };
}

function uniforms(g: ConvPoolGeom, rest: Record<string, number>): Record<string, number> {
  const { conv: c, pool: q } = g;
  return { B: c.B, H: c.H, W: c.W, F4: g.F / 4, PT: c.PT, PL: c.PL, OH: c.OH, OW: c.OW, QSH: q.SH, QSW: q.SW, QT: q.PT, QL: q.PL, PH: q.OH, PW: q.OW, has_bias: 0, act: 0, save: 0, slices: 0, ...rest };
}

/** y (B, PH, PW, F) = maxpool(act(conv(x, w) + bias)); a training pass also writes argmax (convPoolArgmaxSize u32s). */
export async function convPoolForward(ctx: KernelContext, io: { x: Binding; w: Binding; bias?: Binding; y: Binding; argmax?: Binding }, g: ConvPoolGeom, act: Activation, label = "conv_pool_forward"): Promise<Dispatch> {
  const k = await ctx.kernels.kernel("conv_pool.wgsl", "conv_pool_forward", constants(g));
  const { placeholder, placeholderOut } = ctx.kernels;
  const buffers = { x: io.x, w4: io.w, bias4: io.bias ?? placeholder, y4: io.y, argmax: io.argmax ?? placeholderOut };
  const u = uniforms(g, { has_bias: io.bias ? 1 : 0, act: activationCode(act), save: io.argmax ? 1 : 0 });
  return new Dispatch(ctx.kernels.device, k, buffers, grid1d(convPoolPositions(g), WG, gridLimit(ctx)), u, label);
}

/**
 * The filter and bias gradients through the pooling, the activation and the bias, from dy (B, PH, PW, F),
 * the pooled output y and argmax: partial sums per slice, then their sums into dw (3, 3, C, F) and db
 * (F), each added to what it holds when its `accumulate` is set. The input's gradient is not computed
 * (the planner fuses only where nothing needs it).
 */
export async function convPoolBackward(
  ctx: KernelContext,
  io: { x: Binding; y: Binding; argmax: Binding; dy: Binding; dwPartials: Binding; dbPartials: Binding; dw?: { buffer: Binding; accumulate: boolean }; db?: { buffer: Binding; accumulate: boolean } },
  g: ConvPoolGeom,
  act: Activation,
  label = "conv_pool_backward",
): Promise<Dispatch[]> {
  const k = await ctx.kernels.kernel("conv_pool.wgsl", "conv_pool_backward", constants(g));
  const slices = convPoolSlices(g);
  const buffers = { x: io.x, y4: io.y, argmax: io.argmax, dy4: io.dy, dw_partials: io.dwPartials, db_partials: io.dbPartials };
  const u = uniforms(g, { act: activationCode(act), slices });
  const out = [new Dispatch(ctx.kernels.device, k, buffers, grid1d(slices * Math.ceil(g.F / 8), WG, gridLimit(ctx)), u, `${label} dW, db`)];
  if (io.dw) out.push(await sumSplits(ctx, io.dwPartials, io.dw.buffer, 9 * g.conv.C * g.F, slices, io.dw.accumulate, `${label} dW (sum of slices)`));
  if (io.db) out.push(await sumSplits(ctx, io.dbPartials, io.db.buffer, g.F, slices, io.db.accumulate, `${label} db (sum of slices)`));
  return out;
}
