// The TF.js LayersModel format (model.json + weights.bin): export and import, so a model moves between
// this engine, TensorFlow.js and, through tfjs converters, Keras.
import { ConfigError, DataError } from "../errors.ts";
import { Activation, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, MaxPooling2D, type Layer, type LayerConfigs } from "./layers.ts";
import type { Sequential } from "./model.ts";
import type { NamedTensor } from "./safetensors.ts";

interface KerasLayer {
  class_name: string;
  config: Record<string, unknown>;
}

export interface TfjsModelJson {
  format: "layers-model";
  generatedBy: string;
  convertedBy: null;
  modelTopology: { class_name: "Sequential"; config: { name: string; layers: KerasLayer[] }; keras_version: string; backend: string };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: "float32" }[] }[];
}

const pair = (v: number | [number, number] | undefined, d: number) => (v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v);

function kerasLayer(l: Layer, first: boolean, inputShape: number[]): KerasLayer {
  const base: Record<string, unknown> = { name: l.name, trainable: true, dtype: "float32" };
  if (first) base.batch_input_shape = [null, ...inputShape];
  const c = l.config as Record<string, unknown>;
  const init = { kernel_initializer: { class_name: "GlorotUniform", config: { seed: null } }, bias_initializer: { class_name: "Zeros", config: {} } };
  switch (l.kind) {
    case "conv2d": {
      const k = c as LayerConfigs["conv2d"];
      return { class_name: "Conv2D", config: { ...base, ...init, filters: k.filters, kernel_size: pair(k.kernelSize, 1), strides: pair(k.strides, 1), padding: k.padding ?? "valid", data_format: "channels_last", dilation_rate: [1, 1], activation: k.activation ?? "linear", use_bias: k.useBias ?? true, kernel_regularizer: k.kernelRegularizer ? { class_name: "L1L2", config: { l1: 0, l2: k.kernelRegularizer.l2 } } : null } };
    }
    case "maxPooling2d":
    case "averagePooling2d": {
      const p = c as LayerConfigs["maxPooling2d"];
      const size = pair(p.poolSize, 2);
      return { class_name: l.kind === "maxPooling2d" ? "MaxPooling2D" : "AveragePooling2D", config: { ...base, pool_size: size, strides: pair(p.strides ?? p.poolSize, 2), padding: p.padding ?? "valid", data_format: "channels_last" } };
    }
    case "flatten":
      return { class_name: "Flatten", config: base };
    case "dense": {
      const d = c as LayerConfigs["dense"];
      return { class_name: "Dense", config: { ...base, ...init, units: d.units, activation: d.activation ?? "linear", use_bias: d.useBias ?? true, kernel_regularizer: d.kernelRegularizer ? { class_name: "L1L2", config: { l1: 0, l2: d.kernelRegularizer.l2 } } : null } };
    }
    case "dropout":
      return { class_name: "Dropout", config: { ...base, rate: (c as LayerConfigs["dropout"]).rate } };
    case "activation":
      return { class_name: "Activation", config: { ...base, activation: (c as LayerConfigs["activation"]).activation } };
  }
}

/** model.json and weights.bin for a compiled model. */
export async function toTfjs(model: Sequential): Promise<{ modelJson: TfjsModelJson; weightsBin: Uint8Array }> {
  const shapes = model.shapes();
  const weights = await model.getWeights();
  const bin = new Uint8Array(weights.reduce((s, w) => s + w.data.byteLength, 0));
  let at = 0;
  for (const w of weights) {
    bin.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), at);
    at += w.data.byteLength;
  }
  return {
    modelJson: {
      format: "layers-model",
      generatedBy: "gradwgsl",
      convertedBy: null,
      modelTopology: { class_name: "Sequential", config: { name: "sequential", layers: model.layers.map((l, i) => kerasLayer(l, i === 0, shapes[0]!)) }, keras_version: "tfjs-layers 4.22.0", backend: "tensor_flow.js" },
      weightsManifest: [{ paths: ["weights.bin"], weights: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: "float32" })) }],
    },
    weightsBin: bin,
  };
}

const num = (v: unknown, what: string): number => {
  if (typeof v !== "number") throw new DataError(`model.json: ${what} must be a number, got ${JSON.stringify(v)}`);
  return v;
};
const pairOf = (v: unknown): [number, number] | undefined => (Array.isArray(v) ? [v[0], v[1]] : typeof v === "number" ? [v, v] : undefined);

/** The layers and weights of a model.json + weights.bin: `new Sequential(layers)`, compile, then setWeights(weights). */
export function fromTfjs(json: unknown, weightsBin: Uint8Array): { layers: Layer[]; weights: NamedTensor[] } {
  const j = json as Partial<TfjsModelJson> & { modelTopology?: { model_config?: TfjsModelJson["modelTopology"] } };
  const topo = j.modelTopology?.class_name ? j.modelTopology : j.modelTopology?.model_config;
  if (j.format !== "layers-model" || topo?.class_name !== "Sequential") throw new DataError(`model.json: expected a TF.js layers-model with a Sequential topology, got format ${JSON.stringify(j.format)} and class ${JSON.stringify(topo?.class_name)}`);
  const layers: Layer[] = [];
  for (const [i, kl] of topo.config.layers.entries()) {
    const c = kl.config;
    const name = String(c.name);
    const batchShape = c.batch_input_shape as (number | null)[] | undefined;
    const common = { name, ...(i === 0 && batchShape ? { inputShape: batchShape.slice(1) as number[] } : {}) };
    const act = (c.activation as string | undefined) ?? "linear";
    const l2 = (c.kernel_regularizer as { config?: { l2?: number } } | null)?.config?.l2;
    const reg = l2 ? { kernelRegularizer: { l2 } } : {};
    switch (kl.class_name) {
      case "Conv2D":
        if (c.data_format && c.data_format !== "channels_last") throw new DataError(`model.json: layer ${name} uses ${c.data_format}; only channels_last is supported`);
        layers.push(Conv2D({ ...common, ...reg, filters: num(c.filters, `${name}.filters`), kernelSize: pairOf(c.kernel_size)!, strides: pairOf(c.strides), padding: c.padding as "valid" | "same", activation: act as never, useBias: c.use_bias !== false }));
        break;
      case "MaxPooling2D":
      case "AveragePooling2D": {
        const make = kl.class_name === "MaxPooling2D" ? MaxPooling2D : AveragePooling2D;
        layers.push(make({ ...common, poolSize: pairOf(c.pool_size), strides: pairOf(c.strides), padding: c.padding as "valid" | "same" }));
        break;
      }
      case "Flatten":
        layers.push(Flatten(common));
        break;
      case "Dense":
        layers.push(Dense({ ...common, ...reg, units: num(c.units, `${name}.units`), activation: act as never, useBias: c.use_bias !== false }));
        break;
      case "Dropout":
        layers.push(Dropout({ ...common, rate: num(c.rate, `${name}.rate`) }));
        break;
      case "Activation":
        layers.push(Activation({ ...common, activation: act as never }));
        break;
      default:
        throw new ConfigError(`model.json: layer ${name} is a ${kl.class_name}, which this engine does not support (Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dense, Dropout, Activation)`);
    }
  }
  const specs = (j.weightsManifest ?? []).flatMap((g) => g.weights);
  const weights: NamedTensor[] = [];
  let at = 0;
  for (const s of specs) {
    if (s.dtype !== "float32") throw new DataError(`weights.bin: ${s.name} is ${s.dtype}; only float32 is supported`);
    const bytes = s.shape.reduce((a, b) => a * b, 1) * 4;
    if (at + bytes > weightsBin.length) throw new DataError(`weights.bin has ${weightsBin.length} bytes but the manifest needs at least ${at + bytes} (at ${s.name}); the file is truncated`);
    weights.push({ name: s.name, shape: s.shape, data: new Float32Array(weightsBin.slice(at, at + bytes).buffer) });
    at += bytes;
  }
  if (at !== weightsBin.length) throw new DataError(`weights.bin has ${weightsBin.length} bytes but the manifest describes ${at}`);
  return { layers, weights };
}
