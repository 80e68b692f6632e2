// What each layer kind is in Keras's JSON (class name, config fields, weight names): one table entry per
// kind, so model.json export and import (src/model/tfjs_format.ts) carry no per-kind code of their own.
import { ConfigError, DataError } from "../errors.ts";
import type { Padding } from "../geometry.ts";
import type { Shape } from "../graph/graph.ts";
import type { LayerConfigs, LayerKind, OutputActivation } from "../graph/layers.ts";
import { ACTIVATIONS } from "../kernels.ts";

/** A layer's config as Keras writes it (snake_case keys). */
export type KerasConfig = Record<string, unknown>;

/** C: our config for the kind (LayerConfigs[kind]). */
export interface KerasRule<C> {
  className: string;
  /** Keras's names for the layer's weights, in Keras's order; our weight roles use the same names. */
  weights: readonly string[];
  /** Our config in Keras's words; `inShapes` are the per-example shapes of the layer's inputs. */
  toKeras(c: C, inShapes: readonly Shape[]): KerasConfig;
  /** Keras's config as ours, refusing what this engine cannot honour. */
  fromKeras(k: KerasFields, inShapes: readonly Shape[]): C;
}

type Pair = number | [number, number];
const SUPPORTED_ACTIVATIONS: readonly OutputActivation[] = [...ACTIVATIONS, "softmax"];

const show = (v: unknown) => JSON.stringify(v) ?? String(v);
const isPosInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1;

/**
 * Reads one layer's Keras config. Malformed values are DataErrors, valid Keras this engine cannot honour
 * is a ConfigError; both name the layer and the field. Remembers which fields were read.
 */
export class KerasFields {
  readonly read = new Set<string>();
  constructor(
    readonly config: KerasConfig,
    /** "model.json: layer NAME (Class)". */
    readonly where: string,
  ) {}

  get(key: string): unknown {
    this.read.add(key);
    return this.config[key];
  }

  /** Malformed: not what Keras writes (to throw). */
  bad(key: string, want: string): DataError {
    return new DataError(`${this.where}: ${key} must be ${want}, got ${show(this.config[key])}`);
  }

  /** Valid Keras, but not something this engine can do (to throw). */
  refuse(key: string, why: string): ConfigError {
    return new ConfigError(`${this.where}: ${key} ${show(this.config[key])} is not supported; ${why}`);
  }

  int(key: string, d?: number): number {
    const v = this.get(key) ?? d;
    if (!isPosInt(v)) throw this.bad(key, "a positive integer");
    return v;
  }

  num(key: string, d: number): number {
    const v = this.get(key) ?? d;
    if (typeof v !== "number" || !Number.isFinite(v)) throw this.bad(key, "a number");
    return v;
  }

  /** A boolean that must have the value this engine supports (Keras's default). */
  mustBe(key: string, want: boolean, why: string): void {
    const v = this.get(key) ?? want;
    if (typeof v !== "boolean") throw this.bad(key, "true or false");
    if (v !== want) throw this.refuse(key, why);
  }

  flag(key: string, d: boolean): boolean {
    const v = this.get(key) ?? d;
    if (typeof v !== "boolean") throw this.bad(key, "true or false");
    return v;
  }

  /** An int or a pair of ints (kernel_size, strides, pool_size); null or absent gives `d`. */
  pair(key: string, d?: Pair): [number, number] {
    const v = this.get(key) ?? d;
    const p = typeof v === "number" ? [v, v] : v;
    if (!Array.isArray(p) || p.length !== 2 || !p.every(isPosInt)) throw this.bad(key, "a positive integer or a pair of them");
    return [p[0], p[1]];
  }

  padding(): Padding {
    const v = this.get("padding") ?? "valid";
    if (v !== "valid" && v !== "same") throw this.refuse("padding", 'use "valid" or "same"');
    return v;
  }

  activation(key = "activation"): OutputActivation {
    const v = this.get(key) ?? "linear";
    if (!SUPPORTED_ACTIVATIONS.includes(v as OutputActivation)) throw this.refuse(key, `supported activations: ${SUPPORTED_ACTIVATIONS.join(", ")}`);
    return v as OutputActivation;
  }

  channelsLast(): void {
    const v = this.get("data_format") ?? "channels_last";
    if (v !== "channels_last") throw this.refuse("data_format", "only channels_last (height, width, channels) is supported");
  }

  noDilation(): void {
    const v = this.get("dilation_rate") ?? 1;
    if (!(v === 1 || (Array.isArray(v) && v.every((d) => d === 1)))) throw this.refuse("dilation_rate", "only 1 is supported");
  }

  /** An L2 kernel regularizer (L1L2 with l1 = 0, or L2), or none. */
  l2(key: string): { l2: number } | undefined {
    const v = this.get(key);
    if (v === null || v === undefined) return undefined;
    const r = v as { class_name?: unknown; config?: { l1?: unknown; l2?: unknown } };
    if ((r.class_name !== "L1L2" && r.class_name !== "L2") || typeof r.config !== "object" || r.config === null) throw this.refuse(key, "only L2 (or L1L2 with l1 0) regularizers are supported");
    const l1 = r.config.l1 ?? 0;
    const l2 = r.config.l2 ?? 0;
    if (l1 !== 0) throw this.refuse(key, "L1 regularization is not supported; only L2");
    if (typeof l2 !== "number" || !(l2 >= 0)) throw this.bad(key, "a regularizer with a non-negative l2");
    return l2 > 0 ? { l2 } : undefined;
  }

  /** The normalized axis must be the last one: -1 or, counting the batch axis, the per-example rank. */
  lastAxis(key: string, rank: number): void {
    const v = this.get(key) ?? -1;
    const axes = Array.isArray(v) ? v : [v];
    if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== rank)) throw this.refuse(key, `only the last axis (-1, or ${rank} for this input) is supported`);
  }

  /** Regularizers and constraints that no entry read: refused, since training would ignore them. */
  unread(): void {
    for (const [key, v] of Object.entries(this.config)) {
      if (/_(regularizer|constraint)$/.test(key) && v !== null && v !== undefined && !this.read.has(key)) throw this.refuse(key, "this engine would train without it; remove it from model.json to accept that");
    }
  }
}

const GLOROT = { class_name: "GlorotUniform", config: { seed: null } };
const ZEROS = { class_name: "Zeros", config: {} };
const ONES = { class_name: "Ones", config: {} };
const pairOf = (v: Pair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v);
const regularizer = (r: { l2: number } | undefined) => (r ? { class_name: "L1L2", config: { l1: 0, l2: r.l2 } } : null);
const none = (): Record<string, never> => ({});

const pool = (className: string): KerasRule<LayerConfigs["maxPooling2d"]> => ({
  className,
  weights: [],
  toKeras: (c) => ({ pool_size: pairOf(c.poolSize, 2), strides: pairOf(c.strides ?? c.poolSize, 2), padding: c.padding ?? "valid", data_format: "channels_last" }),
  fromKeras: (k) => {
    k.channelsLast();
    const poolSize = k.pair("pool_size", 2);
    return { poolSize, strides: k.pair("strides", poolSize), padding: k.padding() };
  },
});

const merge = (className: string): KerasRule<LayerConfigs["add"]> => ({ className, weights: [], toKeras: () => ({}), fromKeras: none });

export const KERAS: { [Lk in LayerKind]: KerasRule<LayerConfigs[Lk]> } = {
  conv2d: {
    className: "Conv2D",
    weights: ["kernel", "bias"],
    toKeras: (c) => ({
      filters: c.filters,
      kernel_size: pairOf(c.kernelSize, 1),
      strides: pairOf(c.strides, 1),
      padding: c.padding ?? "valid",
      data_format: "channels_last",
      dilation_rate: [1, 1],
      activation: c.activation ?? "linear",
      use_bias: c.useBias ?? true,
      kernel_initializer: GLOROT,
      bias_initializer: ZEROS,
      kernel_regularizer: regularizer(c.kernelRegularizer),
    }),
    fromKeras: (k) => {
      k.channelsLast();
      k.noDilation();
      if ((k.get("groups") ?? 1) !== 1) throw k.refuse("groups", "only 1 is supported");
      return { filters: k.int("filters"), kernelSize: k.pair("kernel_size"), strides: k.pair("strides", 1), padding: k.padding(), activation: k.activation(), useBias: k.flag("use_bias", true), kernelRegularizer: k.l2("kernel_regularizer") };
    },
  },
  depthwiseConv2d: {
    className: "DepthwiseConv2D",
    weights: ["depthwise_kernel", "bias"],
    toKeras: (c) => ({
      kernel_size: pairOf(c.kernelSize, 1),
      strides: pairOf(c.strides, 1),
      padding: c.padding ?? "valid",
      data_format: "channels_last",
      dilation_rate: [1, 1],
      depth_multiplier: c.depthMultiplier ?? 1,
      activation: c.activation ?? "linear",
      use_bias: c.useBias ?? true,
      depthwise_initializer: GLOROT,
      bias_initializer: ZEROS,
      depthwise_regularizer: regularizer(c.depthwiseRegularizer),
    }),
    fromKeras: (k) => {
      k.channelsLast();
      k.noDilation();
      return { kernelSize: k.pair("kernel_size"), strides: k.pair("strides", 1), padding: k.padding(), depthMultiplier: k.int("depth_multiplier", 1), activation: k.activation(), useBias: k.flag("use_bias", true), depthwiseRegularizer: k.l2("depthwise_regularizer") };
    },
  },
  maxPooling2d: pool("MaxPooling2D"),
  averagePooling2d: pool("AveragePooling2D"),
  globalAveragePooling2d: {
    className: "GlobalAveragePooling2D",
    weights: [],
    toKeras: () => ({ data_format: "channels_last" }),
    fromKeras: (k) => {
      k.channelsLast();
      k.mustBe("keepdims", false, "the output is one vector of channels per example");
      return {};
    },
  },
  flatten: {
    className: "Flatten",
    weights: [],
    toKeras: () => ({ data_format: "channels_last" }),
    fromKeras: (k) => {
      k.channelsLast();
      return {};
    },
  },
  reshape: {
    className: "Reshape",
    weights: [],
    toKeras: (c) => ({ target_shape: [...c.targetShape] }),
    fromKeras: (k) => {
      const t = k.get("target_shape");
      if (!Array.isArray(t) || t.some((d) => d !== -1 && !isPosInt(d))) throw k.bad("target_shape", "a list of positive integers (one may be -1)");
      return { targetShape: [...t] };
    },
  },
  dense: {
    className: "Dense",
    weights: ["kernel", "bias"],
    toKeras: (c) => ({ units: c.units, activation: c.activation ?? "linear", use_bias: c.useBias ?? true, kernel_initializer: GLOROT, bias_initializer: ZEROS, kernel_regularizer: regularizer(c.kernelRegularizer) }),
    fromKeras: (k) => ({ units: k.int("units"), activation: k.activation(), useBias: k.flag("use_bias", true), kernelRegularizer: k.l2("kernel_regularizer") }),
  },
  dropout: {
    className: "Dropout",
    weights: [],
    toKeras: (c) => ({ rate: c.rate }),
    fromKeras: (k) => {
      const rate = k.num("rate", NaN);
      if (!(rate >= 0 && rate < 1)) throw k.bad("rate", "a number in [0, 1)");
      if (k.get("noise_shape") != null) throw k.refuse("noise_shape", "dropout masks are drawn per element");
      return { rate };
    },
  },
  activation: {
    className: "Activation",
    weights: [],
    toKeras: (c) => ({ activation: c.activation }),
    fromKeras: (k) => ({ activation: k.activation() }),
  },
  add: merge("Add"),
  multiply: merge("Multiply"),
  concatenate: {
    className: "Concatenate",
    weights: [],
    // Keras counts the batch axis; our axes are per example.
    toKeras: (c) => ({ axis: (c.axis ?? -1) < 0 ? (c.axis ?? -1) : c.axis! + 1 }),
    fromKeras: (k) => {
      const axis = k.get("axis") ?? -1;
      if (typeof axis !== "number" || !Number.isInteger(axis)) throw k.bad("axis", "an integer");
      if (axis === 0) throw k.refuse("axis", "the batch axis (0) cannot be concatenated");
      return { axis: axis < 0 ? axis : axis - 1 };
    },
  },
  batchNormalization: {
    className: "BatchNormalization",
    weights: ["gamma", "beta", "moving_mean", "moving_variance"],
    toKeras: (c) => ({
      axis: -1,
      momentum: c.momentum ?? 0.99,
      epsilon: c.epsilon ?? 1e-3,
      center: true,
      scale: true,
      beta_initializer: ZEROS,
      gamma_initializer: ONES,
      moving_mean_initializer: ZEROS,
      moving_variance_initializer: ONES,
    }),
    fromKeras: (k, [s]) => {
      k.lastAxis("axis", s!.length);
      k.mustBe("center", true, "the layer always has beta");
      k.mustBe("scale", true, "the layer always has gamma");
      k.mustBe("renorm", false, "batch renormalization is not implemented");
      return { momentum: k.num("momentum", 0.99), epsilon: k.num("epsilon", 1e-3) };
    },
  },
  layerNormalization: {
    className: "LayerNormalization",
    weights: ["gamma", "beta"],
    // tfjs-layers writes the normalized axis counting the batch axis: [rank].
    toKeras: (c, [s]) => ({ axis: [s!.length], epsilon: c.epsilon ?? 1e-3, center: true, scale: true, beta_initializer: ZEROS, gamma_initializer: ONES }),
    fromKeras: (k, [s]) => {
      k.lastAxis("axis", s!.length);
      k.mustBe("center", true, "the layer always has beta");
      k.mustBe("scale", true, "the layer always has gamma");
      return { epsilon: k.num("epsilon", 1e-3) };
    },
  },
};

const KINDS = new Map(Object.entries(KERAS).map(([kind, rule]) => [rule.className, kind as LayerKind]));

/** The layer kind behind a Keras class name. */
export function kindOfKeras(className: unknown, where: string): LayerKind {
  const kind = typeof className === "string" ? KINDS.get(className) : undefined;
  if (!kind) throw new ConfigError(`${where} is a ${show(className)}, which this engine does not support; supported: ${[...KINDS.keys()].join(", ")}`);
  return kind;
}
