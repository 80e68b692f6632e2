// The implicit-GEMM convolution's dispatch builders (matmul_subgroup.wgsl's conv_* entries and
// flip_filters): the forward product, the filter gradient and, at stride 1, dX, each reading a
// convolution's columns from its input instead of im2col's buffer. The fusion pass's convGemm op
// (src/graph/fuse.ts) uses them; the library build puts them in its chunk (dist/lib/fuse.js).
import { ConfigError } from "../errors.ts";
import type { WindowPlan } from "../geometry.ts";
import { Dispatch, type Binding } from "../gpu/registry.ts";
import { loadSubgroupShader, matmul, matmulSplitK, NO_CONV, type Activation, type KernelContext } from "../kernels.ts";

/**
 * y (B·OH·OW, F) = act(conv(x, w) + bias), x (B, H, W, C) NHWC, w (KH·KW·C, F): the product of x's
 * im2col columns and w with the columns read from x (implicit GEMM; implicitConvFits must hold).
 */
export async function convGemm(ctx: KernelContext, x: Binding, w: Binding, y: Binding, p: WindowPlan, F: number, epilogue: { bias?: Binding; act?: Activation }, label = "conv"): Promise<Dispatch> {
  return matmul(ctx, x, w, y, { M: p.B * p.OH * p.OW, N: F, K: p.KH * p.KW * p.C, ...epilogue }, label, 1, { entry: "conv", p });
}

/**
 * dx (B, H, W, C) (+)= the gradient of a stride-1 convolution through x: the forward product of dz
 * (B, OH, OW, F) with `flipped` (flipFilters: the filters transposed, taps reversed), padded by
 * KH − 1 − PT and KW − 1 − PL, so no columns are written and no col2im runs (implicitConvFits(ctx, C)).
 */
export async function convGemmDx(ctx: KernelContext, dz: Binding, flipped: Binding, dx: Binding, p: WindowPlan, F: number, accumulate = false, label = "conv dX"): Promise<Dispatch> {
  if (p.SH !== 1 || p.SW !== 1) throw new ConfigError(`${label}: the implicit dX takes stride 1 (this convolution's is ${p.SH}×${p.SW})`);
  const q: WindowPlan = { ...p, H: p.OH, W: p.OW, C: F, PT: p.KH - 1 - p.PT, PL: p.KW - 1 - p.PL, OH: p.H, OW: p.W };
  return matmul(ctx, dz, flipped, dx, { M: p.B * p.H * p.W, N: p.C, K: p.KH * p.KW * F, accumulate }, label, 1, { entry: "conv", p: q });
}

/** flipped (KH, KW, F, C) = w (KH, KW, C, F) with F and C swapped and the taps reversed (convGemmDx's filters). */
export async function flipFilters(ctx: KernelContext, w: Binding, flipped: Binding, p: WindowPlan, F: number, label = "flip filters"): Promise<Dispatch> {
  await loadSubgroupShader();
  const k = await ctx.kernels.kernel("matmul_subgroup.wgsl", "flip_filters");
  const n = p.KH * p.KW * p.C * F;
  const zero = { M: 0, K: 0, k_chunk: 0, splits: 0, a_m: 0, a_k: 0, b_k: 0, b_n: 0, has_bias: 0, act: 0 };
  return new Dispatch(ctx.kernels.device, k, { a: w, c: flipped }, [Math.ceil(n / 64), 1, 1], { ...zero, ...NO_CONV, N: F, C: p.C, KH: p.KH, KW: p.KW }, label);
}

/**
 * dw (KH·KW·C, F) (+)= columns(x)ᵀ · dz, dz (B·OH·OW, F), the columns read from x; split > 1 writes
 * split partial products to `partials` and sums them into dw (matmulSplitK).
 */
export async function convGemmDw(ctx: KernelContext, x: Binding, dz: Binding, dw: Binding, partials: Binding, p: WindowPlan, F: number, split: number, accumulate = false, label = "conv dW"): Promise<Dispatch[]> {
  return matmulSplitK(ctx, x, dz, dw, partials, { M: p.KH * p.KW * p.C, N: F, K: p.B * p.OH * p.OW, accumulate }, split, label, { entry: "conv_dw", p });
}
