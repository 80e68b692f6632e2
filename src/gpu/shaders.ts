// The WGSL sources, bundled as strings (Vite's ?raw; in plain Node, scripts/node-hooks.mjs provides it).
import activation from "../../shaders/activation.wgsl?raw";
import biasGrad from "../../shaders/bias_grad.wgsl?raw";
import data from "../../shaders/data.wgsl?raw";
import dropout from "../../shaders/dropout.wgsl?raw";
import im2col from "../../shaders/im2col.wgsl?raw";
import libAccumulate from "../../shaders/lib/accumulate.wgsl?raw";
import libActivation from "../../shaders/lib/activation.wgsl?raw";
import libIndex from "../../shaders/lib/index.wgsl?raw";
import loss from "../../shaders/loss.wgsl?raw";
import matmul from "../../shaders/matmul.wgsl?raw";
import optimizer from "../../shaders/optimizer.wgsl?raw";
import pool from "../../shaders/pool.wgsl?raw";
import softmaxXent from "../../shaders/softmax_xent.wgsl?raw";

/** Every shader file by its path under shaders/. */
export const shaderSources: Readonly<Record<string, string>> = {
  "activation.wgsl": activation,
  "bias_grad.wgsl": biasGrad,
  "data.wgsl": data,
  "dropout.wgsl": dropout,
  "im2col.wgsl": im2col,
  "lib/accumulate.wgsl": libAccumulate,
  "lib/activation.wgsl": libActivation,
  "lib/index.wgsl": libIndex,
  "loss.wgsl": loss,
  "matmul.wgsl": matmul,
  "optimizer.wgsl": optimizer,
  "pool.wgsl": pool,
  "softmax_xent.wgsl": softmaxXent,
};

export type ShaderFile = Exclude<keyof typeof shaderSources, `lib/${string}`>;
