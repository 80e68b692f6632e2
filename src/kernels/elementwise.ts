// Dispatch builders for the graph's joins: add, multiply, copy-or-add, strided slice copy (Concatenate)
// and global average pooling. Each returns a ready Dispatch; `accumulate` makes a gradient writer add
// to its output (llm.c's +=) so that fan-out needs no summing pass.
import { ConfigError } from "../errors.ts";
import { Dispatch, grid1d, type Binding } from "../gpu/registry.ts";
import { accumulating, ELEMENTS, WG, type KernelContext } from "../kernels.ts";

function checkCount(label: string, what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ConfigError(`${label}: ${what} must be a non-negative 32-bit integer, got ${v}`);
}

async function elementwise(ctx: KernelContext, entry: string, buffers: Record<string, Binding>, n: number, accumulate: boolean, label: string): Promise<Dispatch> {
  checkCount(label, "n", n);
  const k = await ctx.kernels.kernel("elementwise.wgsl", entry, { WG, ...accumulating(accumulate) });
  return new Dispatch(ctx.kernels.device, k, buffers, grid1d(n, WG * ELEMENTS), { n }, label);
}

/** y (n) = a + b. */
export function addForward(ctx: KernelContext, a: Binding, b: Binding, y: Binding, n: number, label = "add_forward"): Promise<Dispatch> {
  return elementwise(ctx, "add_forward", { a, b, y }, n, false, label);
}

/** y (n) = a · b. */
export function multiplyForward(ctx: KernelContext, a: Binding, b: Binding, y: Binding, n: number, label = "multiply_forward"): Promise<Dispatch> {
  return elementwise(ctx, "multiply_forward", { a, b, y }, n, false, label);
}

/** dx (n) (+)= dy · other, where `other` is the multiply's other input; called once per input. */
export function multiplyBackward(ctx: KernelContext, dy: Binding, other: Binding, dx: Binding, n: number, accumulate = false, label = "multiply_backward"): Promise<Dispatch> {
  return elementwise(ctx, "multiply_backward", { dy, other, dx }, n, accumulate, label);
}

/** dst (n) = src, or dst += src when accumulating: a gradient through Add or Reshape without aliasing. */
export function copyOrAdd(ctx: KernelContext, src: Binding, dst: Binding, n: number, accumulate = false, label = accumulate ? "add_into" : "copy"): Promise<Dispatch> {
  return elementwise(ctx, "copy_or_add", { src, dst }, n, accumulate, label);
}

/** A strided block: `outer` rows of `width` elements, row o at o·stride + offset (in elements). */
export interface SliceGeom {
  outer: number;
  width: number;
  srcStride: number;
  srcOffset: number;
  dstStride: number;
  dstOffset: number;
}

/**
 * dst[o·dstStride + dstOffset + j] (+)= src[o·srcStride + srcOffset + j] for o < outer, j < width: one
 * input's block of a Concatenate output on any axis (forward), or that block of dy back out (backward).
 */
export async function copySlice(ctx: KernelContext, src: Binding, dst: Binding, g: SliceGeom, accumulate = false, label = "copy_slice"): Promise<Dispatch> {
  for (const [k, v] of Object.entries(g)) checkCount(label, k, v);
  // Overlapping destination rows would give an element two writers (a race when accumulating).
  if (g.outer > 1 && g.width > g.dstStride) throw new ConfigError(`${label}: rows of width ${g.width} overlap at destination stride ${g.dstStride}`);
  const k = await ctx.kernels.kernel("concat.wgsl", "copy_slice", { WG, ...accumulating(accumulate) });
  const u = { outer: g.outer, width: g.width, src_stride: g.srcStride, src_offset: g.srcOffset, dst_stride: g.dstStride, dst_offset: g.dstOffset };
  return new Dispatch(ctx.kernels.device, k, { src, dst }, grid1d(g.outer * g.width, WG), u, label);
}

/** x (B, HW, C): an NHWC tensor with its spatial positions flattened. */
export interface GlobalPoolGeom {
  B: number;
  HW: number;
  C: number;
}

/** y (B, C) = mean of x (B, HW, C) over HW, summed in a fixed order (deterministic). */
export async function globalAvgPoolForward(ctx: KernelContext, x: Binding, y: Binding, g: GlobalPoolGeom, label = "global_avg_pool_forward"): Promise<Dispatch> {
  if (g.HW < 1) throw new ConfigError(`${label}: HW must be at least 1, got ${g.HW}`);
  const k = await ctx.kernels.kernel("global_pool.wgsl", "global_avg_pool_forward", { WG });
  return new Dispatch(ctx.kernels.device, k, { x, y }, grid1d(g.B * g.C, WG), { B: g.B, HW: g.HW, C: g.C }, label);
}

/** dx (B, HW, C) (+)= dy (B, C) / HW at every position. */
export async function globalAvgPoolBackward(ctx: KernelContext, dy: Binding, dx: Binding, g: GlobalPoolGeom, accumulate = false, label = "global_avg_pool_backward"): Promise<Dispatch> {
  if (g.HW < 1) throw new ConfigError(`${label}: HW must be at least 1, got ${g.HW}`);
  const k = await ctx.kernels.kernel("global_pool.wgsl", "global_avg_pool_backward", { WG, ...accumulating(accumulate) });
  return new Dispatch(ctx.kernels.device, k, { dy, dx }, grid1d(g.B * g.HW * g.C, WG), { B: g.B, HW: g.HW, C: g.C }, label);
}
