// Dispatch builders for depthwise 2-D convolution (shaders/depthwise_conv.wgsl), NHWC, Keras' (KH, KW, C, M) kernel.
import { ShapeError } from "../errors.ts";
import { windowUniforms, type WindowPlan } from "../geometry.ts";
import { Dispatch, type Binding } from "../gpu/registry.ts";
import { accumulating, activationCode, type Activation, type KernelContext } from "../kernels.ts";

function uniforms(p: WindowPlan, M: number, label: string, rest: { has_bias?: number; act?: number } = {}): Record<string, number> {
  if (!Number.isInteger(M) || M < 1) throw new ShapeError(`${label}: depth multiplier must be a positive integer, got ${M}`);
  return { ...windowUniforms(p), M, has_bias: 0, act: 0, ...rest };
}

/** Per-element passes: (channel, column, batch·row) grid; the 64-wide workgroup covers channels first. */
function elementGrid(channels: number, width: number, rows: number): { constants: { WG_C: number; WG_X: number }; grid: [number, number, number] } {
  const WG_C = Math.min(64, 2 ** Math.ceil(Math.log2(channels)));
  const WG_X = 64 / WG_C;
  return { constants: { WG_C, WG_X }, grid: [Math.ceil(channels / WG_C), Math.ceil(width / WG_X), rows] };
}

/** y (B, OH, OW, C·M) = act(depthwise(x (B, H, W, C), w (KH, KW, C, M)) + bias (C·M)). */
export async function depthwiseConvForward(
  ctx: KernelContext,
  x: Binding,
  w: Binding,
  bias: Binding | undefined,
  y: Binding,
  p: WindowPlan,
  M: number,
  act: Activation = "linear",
  label = "depthwise_conv_forward",
): Promise<Dispatch> {
  const u = uniforms(p, M, label, { has_bias: bias ? 1 : 0, act: activationCode(act) });
  const kernels = ctx.kernels;
  const { constants, grid } = elementGrid(p.C * M, p.OW, p.B * p.OH);
  const k = await kernels.kernel("depthwise_conv.wgsl", "depthwise_conv_forward", constants);
  return new Dispatch(kernels.device, k, { x, w, bias: bias ?? kernels.placeholder, y }, grid, u, label);
}

/** dx (B, H, W, C) from dz (B, OH, OW, C·M), the gradient at the pre-activation; adds into dx when accumulating. */
export async function depthwiseConvBackwardInput(ctx: KernelContext, dz: Binding, w: Binding, dx: Binding, p: WindowPlan, M: number, accumulate = false, label = "depthwise_conv_backward_input"): Promise<Dispatch> {
  const u = uniforms(p, M, label);
  const kernels = ctx.kernels;
  const { constants, grid } = elementGrid(p.C, p.W, p.B * p.H);
  const k = await kernels.kernel("depthwise_conv.wgsl", "depthwise_conv_backward_input", { ...constants, ...accumulating(accumulate) });
  return new Dispatch(kernels.device, k, { dz, w, dx }, grid, u, label);
}

/** dw (KH, KW, C, M) = Σ over B·OH·OW of x-patch · dz; one workgroup per kernel tap and 16 output channels. */
export async function depthwiseConvBackwardFilter(ctx: KernelContext, x: Binding, dz: Binding, dw: Binding, p: WindowPlan, M: number, accumulate = false, label = "depthwise_conv_backward_filter"): Promise<Dispatch> {
  const u = uniforms(p, M, label);
  const kernels = ctx.kernels;
  // Channels side by side (coalesced NHWC reads), the remaining lanes of 64 split the output rows.
  const WG_C = Math.min(16, 2 ** Math.ceil(Math.log2(p.C * M)));
  const k = await kernels.kernel("depthwise_conv.wgsl", "depthwise_conv_backward_filter", { WG_C, WG_X: 64 / WG_C, ...accumulating(accumulate) });
  return new Dispatch(kernels.device, k, { x, dz, dw }, [Math.ceil((p.C * M) / WG_C), p.KH * p.KW, 1], u, label);
}
