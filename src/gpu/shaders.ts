// The WGSL sources, bundled as strings (Vite's ?raw; in plain Node, scripts/node-hooks.mjs provides it).
import activation from "../../shaders/activation.wgsl?raw";
import batchNorm from "../../shaders/batch_norm.wgsl?raw";
import biasGrad from "../../shaders/bias_grad.wgsl?raw";
import concat from "../../shaders/concat.wgsl?raw";
import data from "../../shaders/data.wgsl?raw";
import depthwiseConv from "../../shaders/depthwise_conv.wgsl?raw";
import dropout from "../../shaders/dropout.wgsl?raw";
import elementwise from "../../shaders/elementwise.wgsl?raw";
import globalPool from "../../shaders/global_pool.wgsl?raw";
import im2col from "../../shaders/im2col.wgsl?raw";
import layerNorm from "../../shaders/layer_norm.wgsl?raw";
import libAccumulate from "../../shaders/lib/accumulate.wgsl?raw";
import libActivation from "../../shaders/lib/activation.wgsl?raw";
import libHash from "../../shaders/lib/hash.wgsl?raw";
import libIndex from "../../shaders/lib/index.wgsl?raw";
import libMatmulIo from "../../shaders/lib/matmul_io.wgsl?raw";
import loss from "../../shaders/loss.wgsl?raw";
import matmul from "../../shaders/matmul.wgsl?raw";
import optimizer from "../../shaders/optimizer.wgsl?raw";
import pool from "../../shaders/pool.wgsl?raw";
import softmaxXent from "../../shaders/softmax_xent.wgsl?raw";
import sumSplits from "../../shaders/sum_splits.wgsl?raw";

/** Every shader file by its path under shaders/ (those loaded on first use once addShaderSource has run). */
export const shaderSources: Readonly<Record<string, string>> = {
  "activation.wgsl": activation,
  "batch_norm.wgsl": batchNorm,
  "bias_grad.wgsl": biasGrad,
  "concat.wgsl": concat,
  "data.wgsl": data,
  "depthwise_conv.wgsl": depthwiseConv,
  "dropout.wgsl": dropout,
  "elementwise.wgsl": elementwise,
  "global_pool.wgsl": globalPool,
  "im2col.wgsl": im2col,
  "layer_norm.wgsl": layerNorm,
  "lib/accumulate.wgsl": libAccumulate,
  "lib/activation.wgsl": libActivation,
  "lib/hash.wgsl": libHash,
  "lib/index.wgsl": libIndex,
  "lib/matmul_io.wgsl": libMatmulIo,
  "loss.wgsl": loss,
  "matmul.wgsl": matmul,
  "optimizer.wgsl": optimizer,
  "pool.wgsl": pool,
  "softmax_xent.wgsl": softmaxXent,
  "sum_splits.wgsl": sumSplits,
};

/**
 * Adds a shader the core does not bundle: code the core loads on first use (src/kernels/conv_pool.ts,
 * the fused convolution and pooling; src/kernels/matmul_subgroup.ts, the CPU drivers' subgroup matmul)
 * brings its shader and adds it before its first dispatch.
 */
export function addShaderSource(file: string, code: string): void {
  (shaderSources as Record<string, string>)[file] ??= code;
}

export type ShaderFile = Exclude<keyof typeof shaderSources, `lib/${string}`>;
