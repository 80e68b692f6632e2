// Keras-shaped layers: each kind declares its weights and emits a small subgraph of ops when applied
// to symbolic tensors (Dense is one fused matmul, Conv2D is im2col plus a fused matmul). A layer applied
// twice emits two subgraphs over the same weight tensors, so the backward walk sums their gradients.
import { checkShape, flag, numberIn, oneOf, shown } from "../args.ts";
import { ConfigError, ShapeError } from "../errors.ts";
import type { Padding } from "../geometry.ts";
import { ACTIVATIONS, type Activation as Act } from "../kernels.ts";
import { makeNode, SymbolicTensor, type Shape, type WeightSpec } from "./graph.ts";
import { OPS, type OpConfigs, type OpKind, type Window } from "./ops.ts";

export type OutputActivation = Act | "softmax";
type Pair = number | [number, number];
type L2 = { l2: number };

export interface LayerConfigs {
  conv2d: { filters: number; kernelSize: Pair; strides?: Pair; padding?: Padding; activation?: OutputActivation; useBias?: boolean; kernelRegularizer?: L2 };
  depthwiseConv2d: { kernelSize: Pair; strides?: Pair; padding?: Padding; depthMultiplier?: number; activation?: OutputActivation; useBias?: boolean; depthwiseRegularizer?: L2 };
  maxPooling2d: { poolSize?: Pair; strides?: Pair; padding?: Padding };
  averagePooling2d: { poolSize?: Pair; strides?: Pair; padding?: Padding };
  globalAveragePooling2d: Record<string, never>;
  flatten: Record<string, never>;
  reshape: { targetShape: number[] };
  dense: { units: number; activation?: OutputActivation; useBias?: boolean; kernelRegularizer?: L2 };
  dropout: { rate: number };
  activation: { activation: OutputActivation };
  add: Record<string, never>;
  multiply: Record<string, never>;
  concatenate: { axis?: number };
  batchNormalization: { momentum?: number; epsilon?: number };
  layerNormalization: { epsilon?: number };
}
export type LayerKind = keyof LayerConfigs;

/** Emits one op node owned by the layer being applied; its output shape comes from the op table. */
export type Emit = <Kd extends OpKind>(kind: Kd, config: OpConfigs[Kd], inputs: readonly SymbolicTensor[], softmax?: boolean) => SymbolicTensor;

export interface LayerRule<Lk extends LayerKind> {
  /** How many inputs it takes: [min, max]. */
  arity: [number, number];
  /** Checks the options when the layer is created, before any shape is known (errors name the option). */
  check(c: LayerConfigs[Lk], where: string): void;
  weights(c: LayerConfigs[Lk], inShapes: readonly Shape[], where: string): WeightSpec[];
  emit(c: LayerConfigs[Lk], inputs: readonly SymbolicTensor[], weights: readonly SymbolicTensor[], op: Emit, where: string): SymbolicTensor;
}

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);
const pair = (v: Pair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v);
/** Softmax is applied by the loss (training) or by a softmax pass (predict), never inside an op. */
const fused = (a: OutputActivation | undefined): Act => (a === "softmax" || a === undefined ? "linear" : a);

function positive(v: unknown, where: string, what: string): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new ConfigError(`${where}: ${what} must be a positive integer, got ${shown(v)}`);
}

/** Option checks for `check`: optional unless said, each error naming the layer and the option. */
const opt = {
  positive: (v: unknown, where: string, what: string) => v === undefined || positive(v, where, what),
  pair: (v: unknown, where: string, what: string) => {
    if (v === undefined) return;
    const p = typeof v === "number" ? [v, v] : v;
    if (!Array.isArray(p) || p.length !== 2 || p.some((d) => typeof d !== "number" || !Number.isInteger(d) || d < 1)) throw new ConfigError(`${where}: ${what} must be a positive integer or a pair of them, got ${shown(v)}`);
  },
  padding: (v: unknown, where: string) => oneOf(v, `${where}: padding`, ["valid", "same"]),
  activation: (v: unknown, where: string) => oneOf(v, `${where}: activation`, [...ACTIVATIONS, "softmax"]),
  l2: (v: unknown, where: string, what: string) => {
    if (v === undefined) return;
    if (typeof v !== "object" || v === null) throw new ConfigError(`${where}: ${what} must be { l2: number ≥ 0 }, got ${shown(v)}`);
    numberIn((v as L2).l2, `${where}: ${what}.l2`, (x) => x >= 0, "a finite number ≥ 0");
  },
  number: (v: unknown, where: string, what: string, ok: (x: number) => boolean, need: string) => v === undefined || numberIn(v, `${where}: ${what}`, ok, need),
};

function rank(s: Shape, r: number, where: string, what: string): void {
  if (s.length !== r) throw new ShapeError(`${where}: expects ${what} per example, but its input has shape [${s.join(", ")}]${r === 1 ? "; add a Flatten layer before it" : ""}`);
}

const glorot = (fanIn: number, fanOut: number): WeightSpec["init"] => ({ kind: "glorotUniform", fanIn, fanOut });
const bias = (n: number): WeightSpec => ({ role: "bias", shape: [n], init: { kind: "zeros" }, l2: 0 });

function convWindow(c: { kernelSize: Pair; strides?: Pair; padding?: Padding }, where: string): Window {
  const [KH, KW] = pair(c.kernelSize, 1);
  const [SH, SW] = pair(c.strides, 1);
  for (const [v, what] of [[KH, "kernelSize"], [KW, "kernelSize"], [SH, "strides"], [SW, "strides"]] as const) positive(v, where, what);
  return { KH, KW, SH, SW, padding: c.padding ?? "valid" };
}

function poolWindow(c: LayerConfigs["maxPooling2d"]): Window {
  const [KH, KW] = pair(c.poolSize, 2);
  const [SH, SW] = pair(c.strides ?? c.poolSize, 2);
  return { KH, KW, SH, SW, padding: c.padding ?? "valid" };
}

const pool = (kind: "maxPool" | "avgPool"): LayerRule<"maxPooling2d" | "averagePooling2d"> => ({
  arity: [1, 1],
  check: (c, where) => {
    opt.pair(c.poolSize, where, "poolSize");
    opt.pair(c.strides, where, "strides");
    opt.padding(c.padding, where);
  },
  weights: () => [],
  emit: (c, [x], _w, op) => op(kind, poolWindow(c), [x!]),
});

/** Two or more inputs folded pairwise by one op. */
const merge = (kind: "add" | "multiply"): LayerRule<"add" | "multiply"> => ({
  arity: [2, Infinity],
  check: () => undefined,
  weights: () => [],
  emit: (_c, inputs, _w, op) => inputs.slice(1).reduce((acc, t) => op(kind, {}, [acc, t]), inputs[0]!),
});

export const LAYERS: { [Lk in LayerKind]: LayerRule<Lk> } = {
  conv2d: {
    arity: [1, 1],
    check: (c, where) => {
      positive(c.filters, where, "filters");
      if (c.kernelSize === undefined) throw new ConfigError(`${where}: kernelSize is required (e.g. kernelSize: 3)`);
      opt.pair(c.kernelSize, where, "kernelSize");
      opt.pair(c.strides, where, "strides");
      opt.padding(c.padding, where);
      opt.activation(c.activation, where);
      flag(c.useBias, `${where}: useBias`);
      opt.l2(c.kernelRegularizer, where, "kernelRegularizer");
    },
    weights: (c, [s], where) => {
      positive(c.filters, where, "filters");
      rank(s!, 3, where, "a (height, width, channels) image");
      const w = convWindow(c, where);
      const C = s![2]!;
      const kernel: WeightSpec = { role: "kernel", shape: [w.KH, w.KW, C, c.filters], init: glorot(w.KH * w.KW * C, w.KH * w.KW * c.filters), l2: c.kernelRegularizer?.l2 ?? 0 };
      return c.useBias ?? true ? [kernel, bias(c.filters)] : [kernel];
    },
    emit: (c, [x], w, op, where) => {
      const win = convWindow(c, where);
      // A 1×1, stride-1 convolution is already a product over the channel axis.
      const pointwise = win.KH === 1 && win.KW === 1 && win.SH === 1 && win.SW === 1;
      const cols = pointwise ? x! : op("im2col", win, [x!]);
      return op("matmul", { act: fused(c.activation), bias: w.length > 1 }, [cols, ...w], c.activation === "softmax");
    },
  },
  depthwiseConv2d: {
    arity: [1, 1],
    check: (c, where) => {
      if (c.kernelSize === undefined) throw new ConfigError(`${where}: kernelSize is required (e.g. kernelSize: 3)`);
      opt.pair(c.kernelSize, where, "kernelSize");
      opt.pair(c.strides, where, "strides");
      opt.padding(c.padding, where);
      opt.positive(c.depthMultiplier, where, "depthMultiplier");
      opt.activation(c.activation, where);
      flag(c.useBias, `${where}: useBias`);
      opt.l2(c.depthwiseRegularizer, where, "depthwiseRegularizer");
    },
    weights: (c, [s], where) => {
      rank(s!, 3, where, "a (height, width, channels) image");
      const m = c.depthMultiplier ?? 1;
      positive(m, where, "depthMultiplier");
      const w = convWindow(c, where);
      const C = s![2]!;
      const kernel: WeightSpec = { role: "depthwise_kernel", shape: [w.KH, w.KW, C, m], init: glorot(w.KH * w.KW * C, w.KH * w.KW * m), l2: c.depthwiseRegularizer?.l2 ?? 0 };
      return c.useBias ?? true ? [kernel, bias(C * m)] : [kernel];
    },
    emit: (c, [x], w, op, where) => op("depthwiseConv", { ...convWindow(c, where), multiplier: c.depthMultiplier ?? 1, act: fused(c.activation), bias: w.length > 1 }, [x!, ...w], c.activation === "softmax"),
  },
  maxPooling2d: pool("maxPool"),
  averagePooling2d: pool("avgPool"),
  globalAveragePooling2d: { arity: [1, 1], check: () => undefined, weights: () => [], emit: (_c, [x], _w, op) => op("globalAvgPool", {}, [x!]) },
  flatten: { arity: [1, 1], check: () => undefined, weights: () => [], emit: (_c, [x], _w, op) => op("reshape", { shape: [x!.size] }, [x!]) },
  reshape: {
    arity: [1, 1],
    check: (c, where) => {
      const t = c.targetShape;
      if (!Array.isArray(t) || t.length === 0 || t.filter((d) => d === -1).length > 1 || t.some((d) => d !== -1 && (!Number.isInteger(d) || d < 1))) {
        throw new ConfigError(`${where}: targetShape must be positive integers with at most one -1, got ${shown(t)}`);
      }
    },
    weights: () => [],
    emit: (c, [x], _w, op, where) => {
      const t = c.targetShape;
      const known = size(t.filter((d) => d !== -1));
      if (t.includes(-1) && x!.size % known !== 0) throw new ShapeError(`${where}: targetShape [${t.join(", ")}] cannot hold [${x!.shape.join(", ")}] (${x!.size} values per example): ${x!.size} is not a multiple of ${known}`);
      if (!t.includes(-1) && known !== x!.size) throw new ShapeError(`${where}: targetShape [${t.join(", ")}] holds ${known} values per example but the input [${x!.shape.join(", ")}] has ${x!.size}`);
      const shape = t.map((d) => (d === -1 ? x!.size / known : d));
      return op("reshape", { shape }, [x!]);
    },
  },
  dense: {
    arity: [1, 1],
    check: (c, where) => {
      positive(c.units, where, "units");
      opt.activation(c.activation, where);
      flag(c.useBias, `${where}: useBias`);
      opt.l2(c.kernelRegularizer, where, "kernelRegularizer");
    },
    weights: (c, [s], where) => {
      positive(c.units, where, "units");
      rank(s!, 1, where, "a vector");
      const kernel: WeightSpec = { role: "kernel", shape: [s!.at(-1)!, c.units], init: glorot(s!.at(-1)!, c.units), l2: c.kernelRegularizer?.l2 ?? 0 };
      return c.useBias ?? true ? [kernel, bias(c.units)] : [kernel];
    },
    emit: (c, [x], w, op) => op("matmul", { act: fused(c.activation), bias: w.length > 1 }, [x!, ...w], c.activation === "softmax"),
  },
  dropout: { arity: [1, 1], check: (c, where) => void numberIn(c.rate, `${where}: rate`, (x) => x >= 0 && x < 1, "a number in [0, 1)"), weights: () => [], emit: (c, [x], _w, op) => op("dropout", { rate: c.rate }, [x!]) },
  activation: {
    arity: [1, 1],
    check: (c, where) => {
      if (c.activation === undefined) throw new ConfigError(`${where}: activation is required, one of ${[...ACTIVATIONS, "softmax"].join(", ")}`);
      opt.activation(c.activation, where);
    },
    weights: () => [],
    // softmax: an alias of x marked for the loss (or predict's softmax pass) to apply
    emit: (c, [x], _w, op) => (c.activation === "softmax" ? op("reshape", { shape: [...x!.shape] }, [x!], true) : op("activation", { act: fused(c.activation) }, [x!])),
  },
  add: merge("add"),
  multiply: merge("multiply"),
  concatenate: { arity: [2, Infinity], check: (c, where) => void opt.number(c.axis, where, "axis", Number.isInteger, "an integer (-1: the last axis)"), weights: () => [], emit: (c, inputs, _w, op) => op("concat", { axis: c.axis ?? -1 }, inputs) },
  batchNormalization: {
    arity: [1, 1],
    check: (c, where) => {
      opt.number(c.momentum, where, "momentum", (x) => x >= 0 && x <= 1, "a number in [0, 1]");
      opt.number(c.epsilon, where, "epsilon", (x) => x > 0, "a positive number");
    },
    weights: (_c, [s]) => {
      const C = s!.at(-1)!;
      return [
        { role: "gamma", shape: [C], init: { kind: "ones" }, l2: 0 },
        { role: "beta", shape: [C], init: { kind: "zeros" }, l2: 0 },
        { role: "moving_mean", shape: [C], init: { kind: "zeros" }, l2: 0, state: true },
        { role: "moving_variance", shape: [C], init: { kind: "ones" }, l2: 0, state: true },
      ];
    },
    emit: (c, [x], w, op) => op("batchNorm", { momentum: c.momentum ?? 0.99, epsilon: c.epsilon ?? 1e-3 }, [x!, ...w]),
  },
  layerNormalization: {
    arity: [1, 1],
    check: (c, where) => void opt.number(c.epsilon, where, "epsilon", (x) => x > 0, "a positive number"),
    weights: (_c, [s]) => [
      { role: "gamma", shape: [s!.at(-1)!], init: { kind: "ones" }, l2: 0 },
      { role: "beta", shape: [s!.at(-1)!], init: { kind: "zeros" }, l2: 0 },
    ],
    emit: (c, [x], w, op) => op("layerNorm", { epsilon: c.epsilon ?? 1e-3 }, [x!, ...w]),
  },
};

interface Common {
  name?: string;
  /** Shape of one example, without the batch dimension; needed on the first layer of a Sequential. */
  inputShape?: number[];
  /** False freezes the layer's weights: no gradient is computed for them (set before compile). */
  trainable?: boolean;
}

const counters = new Map<string, number>();

export class Layer<Lk extends LayerKind = LayerKind> {
  readonly name: string;
  readonly inputShape?: number[];
  trainable: boolean;
  /** The weight tensors, created at the first apply. */
  weights?: SymbolicTensor[];
  /** Every application, for "connected to" in summaries. */
  readonly calls: { inputs: readonly SymbolicTensor[]; output: SymbolicTensor }[] = [];

  constructor(
    readonly kind: Lk,
    readonly config: LayerConfigs[Lk],
    common: Common = {},
  ) {
    if (!Object.hasOwn(LAYERS, kind)) throw new ConfigError(`unknown layer kind "${kind}"; known: ${Object.keys(LAYERS).join(", ")}`);
    const n = (counters.get(kind) ?? 0) + 1;
    counters.set(kind, n);
    const dflt = `${kind.replace(/[A-Z0-9]+/g, (m) => `_${m.toLowerCase()}`)}_${n}`;
    const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
    if (!isObject(config)) throw new ConfigError(`layer ${dflt}: options must be an object${kind === "dense" ? " (e.g. { units: 10 })" : ""}, got ${shown(config)}`);
    if (!isObject(common)) throw new ConfigError(`layer ${dflt}: options must be an object, got ${shown(common)}`);
    if (common.name !== undefined && (typeof common.name !== "string" || common.name === "")) throw new ConfigError(`layer ${dflt}: name must be a non-empty string, got ${shown(common.name)}`);
    this.name = common.name ?? dflt;
    if (common.inputShape !== undefined) checkShape(common.inputShape, `layer ${this.name}: inputShape`);
    this.inputShape = common.inputShape && [...common.inputShape];
    this.trainable = flag(common.trainable, `layer ${this.name}: trainable`) ?? true;
    LAYERS[kind].check(config, `layer ${this.name}`);
  }

  /** Applies the layer to one or more symbolic tensors; a layer applied twice shares its weights. */
  apply(input: SymbolicTensor | readonly SymbolicTensor[]): SymbolicTensor {
    const inputs = Array.isArray(input) ? (input as readonly SymbolicTensor[]) : [input as SymbolicTensor];
    const where = `layer ${this.name}`;
    const rule: LayerRule<Lk> = LAYERS[this.kind];
    const [min, max] = rule.arity;
    if (inputs.length < min || inputs.length > max) throw new ConfigError(`${where}: takes ${min === max ? min : `${min} or more`} input${max === 1 ? "" : "s"}, got ${inputs.length}`);
    for (const t of inputs) {
      if (!(t instanceof SymbolicTensor) || (t.role !== "input" && t.role !== "activation")) throw new ConfigError(`${where}: apply() takes symbolic tensors from Input() or another layer's apply(), got ${shown(t)}`);
    }
    const shapes = inputs.map((t) => t.shape);
    const specs = rule.weights(this.config, shapes, where);
    if (!this.weights) {
      this.weights = specs.map((s) => new SymbolicTensor(s.shape, s.state ? "state" : "param", `${this.name}/${s.role}`, undefined, { ...s, name: `${this.name}/${s.role}` }, this));
    } else if (specs.map((s) => s.shape.join()).join("|") !== this.weights.map((w) => w.shape.join()).join("|")) {
      throw new ShapeError(`${where}: applied again to inputs of shape ${shapes.map((s) => `[${s.join(", ")}]`).join(", ")}, which need weights of other shapes than the ones it was built with (${this.weights.map((w) => `[${w.shape.join(", ")}]`).join(", ")})`);
    }
    let count = 0;
    const op: Emit = (kind, config, ins, softmax = false) => {
      const label = `${this.name}${++count > 1 ? ` ${kind}` : ""}`;
      const node = makeNode(kind, config, ins, OPS[kind].shape(config, ins.map((t) => t.shape), where), this, label);
      if (softmax) node.output.softmax = true;
      return node.output;
    };
    const output = rule.emit(this.config, inputs, this.weights, op, where);
    this.calls.push({ inputs, output });
    return output;
  }

  /** Parameters (trainable or not) and state, counted as Keras counts them. */
  get parameterCount(): number {
    return (this.weights ?? []).reduce((s, w) => s + w.size, 0);
  }
}

type Builder<Lk extends LayerKind> = (c: LayerConfigs[Lk] & Common) => Layer<Lk>;
const builder =
  <Lk extends LayerKind>(kind: Lk): Builder<Lk> =>
  (c) =>
    new Layer(kind, c, c);
/** Builders for layers without options. */
const bare =
  <Lk extends "flatten" | "globalAveragePooling2d" | "add" | "multiply">(kind: Lk) =>
  (c: Common = {}) =>
    new Layer<Lk>(kind, {} as LayerConfigs[Lk], c);

export const Conv2D = builder("conv2d");
export const DepthwiseConv2D = builder("depthwiseConv2d");
export const MaxPooling2D = (c: LayerConfigs["maxPooling2d"] & Common = {}) => new Layer("maxPooling2d", c, c);
export const AveragePooling2D = (c: LayerConfigs["averagePooling2d"] & Common = {}) => new Layer("averagePooling2d", c, c);
export const GlobalAveragePooling2D = bare("globalAveragePooling2d");
export const Flatten = bare("flatten");
export const Reshape = builder("reshape");
export const Dense = builder("dense");
export const Dropout = builder("dropout");
export const Activation = builder("activation");
export const Add = bare("add");
export const Multiply = bare("multiply");
export const Concatenate = (c: LayerConfigs["concatenate"] & Common = {}) => new Layer("concatenate", c, c);
export const BatchNormalization = (c: LayerConfigs["batchNormalization"] & Common = {}) => new Layer("batchNormalization", c, c);
export const LayerNormalization = (c: LayerConfigs["layerNormalization"] & Common = {}) => new Layer("layerNormalization", c, c);

/** The activation a layer ends with, when it has one. */
export function outputActivation(l: Layer): OutputActivation {
  const c = l.config as { activation?: OutputActivation };
  return c.activation ?? "linear";
}
