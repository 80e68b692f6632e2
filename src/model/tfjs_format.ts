// The TF.js LayersModel format (model.json + weights.bin): export and import of Sequential and functional
// models, so a model moves between this engine, TensorFlow.js and, through tfjs converters, Keras.
// What each layer kind is in Keras's JSON lives in src/io/keras.ts; this file handles topology and weights.
import { shown } from "../args.ts";
import { ConfigError, DataError, ShapeError } from "../errors.ts";
import { Input, topologicalNodes, type Shape, type SymbolicTensor } from "../graph/graph.ts";
import { Layer, type LayerConfigs, type LayerKind } from "../graph/layers.ts";
import { bytesOf, float32Copy, type Bytes } from "../io/bytes.ts";
import { KERAS, KerasFields, kindOfKeras, type KerasConfig, type KerasRule } from "../io/keras.ts";
import { Model, Sequential } from "./model.ts";
import type { NamedTensor } from "./safetensors.ts";

/** A reference to a layer's output: [layer name, node index, tensor index, call kwargs]. */
type KerasRef = [string, number, number, Record<string, unknown>?];

interface KerasLayer {
  class_name: string;
  config: KerasConfig;
  /** Functional topologies only. */
  name?: string;
  /** Functional topologies only: one list of input references per application of the layer. */
  inbound_nodes?: KerasRef[][];
}

export interface TfjsModelJson {
  format: "layers-model";
  generatedBy: string;
  convertedBy: null;
  modelTopology: {
    class_name: "Sequential" | "Model";
    config: { name: string; layers: KerasLayer[]; input_layers?: KerasRef[]; output_layers?: KerasRef[] };
    keras_version: string;
    backend: string;
  };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: "float32" }[] }[];
}

/** What fromTfjs rebuilds. */
export interface TfjsImport {
  /** Ready to compile: a Sequential for a Sequential topology, a functional Model otherwise. */
  model: Model;
  /** The layers in model.json's order (InputLayers left out); `new Sequential(layers)` for a Sequential topology. */
  layers: Layer[];
  /** Every weight, named "layer/role" in our order: `model.setWeights(weights)` after compile. */
  weights: NamedTensor[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** A layer's Keras entry; calls its rule through one generic step, so no kind needs a case here. */
function kerasLayer<K extends LayerKind>(l: Layer<K>, inShapes: readonly Shape[]): KerasLayer {
  const rule: KerasRule<LayerConfigs[K]> = KERAS[l.kind];
  return { class_name: rule.className, config: { name: l.name, trainable: l.trainable, ...rule.toKeras(l.config, inShapes) } };
}

/** Our weights in the order tfjs-layers saves them: every trainable weight by layer, then the rest (frozen layers, moving statistics). */
function exportOrder(layers: readonly Layer[], byName: Map<string, NamedTensor>): { w: NamedTensor; trainable: boolean }[] {
  return layers.flatMap((l) => {
    const order: readonly string[] = KERAS[l.kind].weights;
    const own = [...(l.weights ?? [])].sort((a, b) => order.indexOf(a.weight!.role) - order.indexOf(b.weight!.role));
    const unnamed = own.filter((t) => !order.includes(t.weight!.role));
    if (unnamed.length) throw new ConfigError(`layer ${l.name}: weight ${unnamed.map((t) => t.weight!.role).join(", ")} has no Keras name in src/io/keras.ts`);
    return own.map((t) => ({ w: byName.get(t.name)!, trainable: l.trainable && t.role === "param" }));
  });
}

/**
 * model.json and weights.bin for a compiled model: a "Sequential" topology for a Sequential, a functional
 * "Model" topology (InputLayers, inbound_nodes, input_layers, output_layers) otherwise, as tfjs-layers 4.22 writes them.
 */
export async function toTfjs(model: Model): Promise<{ modelJson: TfjsModelJson; weightsBin: Uint8Array }> {
  if (!(model instanceof Model)) throw new ConfigError(`toTfjs takes a Model or Sequential, got ${shown(model)}`);
  const weights = await model.getWeights();
  const inputs = model.inputs;
  const output = model.output;
  const sequential = model instanceof Sequential;
  // A layer's applications inside this model; applications in other models do not count as nodes.
  const inGraph = new Set(topologicalNodes(inputs, [output]).map((n) => n.output));
  const calls = (l: Layer) => l.calls.filter((c) => inGraph.has(c.output));
  const names = [...(sequential ? [] : inputs.map((t) => t.name)), ...model.layers.map((l) => l.name)];
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length) throw new ConfigError(`toTfjs: Keras needs unique layer names, but ${[...new Set(twice)].map((n) => `"${n}"`).join(", ")} names more than one layer or input; give layers distinct names`);

  let topology: TfjsModelJson["modelTopology"]["config"];
  if (sequential) {
    const layers = model.layers.map((l) => kerasLayer(l, calls(l)[0]!.inputs.map((t) => t.shape)));
    Object.assign(layers[0]!.config, { batch_input_shape: [null, ...inputs[0]!.shape], dtype: "float32" });
    topology = { name: "sequential", layers };
  } else {
    const ref = new Map<SymbolicTensor, KerasRef>(inputs.map((t) => [t, [t.name, 0, 0, {}]]));
    for (const l of model.layers) for (const [i, c] of calls(l).entries()) ref.set(c.output, [l.name, i, 0, {}]);
    const inputLayers: KerasLayer[] = inputs.map((t) => ({ name: t.name, class_name: "InputLayer", config: { batch_input_shape: [null, ...t.shape], dtype: "float32", sparse: false, name: t.name }, inbound_nodes: [] }));
    const layers = model.layers.map((l) => {
      const applied = calls(l);
      return { name: l.name, ...kerasLayer(l, applied[0]!.inputs.map((t) => t.shape)), inbound_nodes: applied.map((c) => c.inputs.map((t) => ref.get(t)!)) };
    });
    const out = ref.get(output)!;
    topology = { name: "model", layers: [...inputLayers, ...layers], input_layers: inputs.map((t) => [t.name, 0, 0]), output_layers: [[out[0], out[1], out[2]]] };
  }

  const ordered = exportOrder(model.layers, new Map(weights.map((w) => [w.name, w])));
  ordered.sort((a, b) => Number(b.trainable) - Number(a.trainable)); // stable: layer order kept within each group
  const bin = new Uint8Array(weights.reduce((s, w) => s + w.data.byteLength, 0));
  let at = 0;
  for (const { w } of ordered) {
    bin.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), at);
    at += w.data.byteLength;
  }
  return {
    modelJson: {
      format: "layers-model",
      generatedBy: "gradwgsl",
      convertedBy: null,
      modelTopology: { class_name: sequential ? "Sequential" : "Model", config: topology, keras_version: "tfjs-layers 4.22.0", backend: "tensor_flow.js" },
      weightsManifest: [{ paths: ["weights.bin"], weights: ordered.map(({ w }) => ({ name: w.name, shape: w.shape, dtype: "float32" })) }],
    },
    weightsBin: bin,
  };
}

/** A layer of class `kind` from its Keras config, through the kind's table entry. */
function makeLayer<K extends LayerKind>(kind: K, k: KerasFields, inShapes: readonly Shape[], common: { name: string; trainable: boolean; inputShape?: number[] }): Layer<K> {
  const rule: KerasRule<LayerConfigs[K]> = KERAS[kind];
  const layer = new Layer(kind, rule.fromKeras(k, inShapes), common);
  k.unread();
  return layer;
}

/** Entry `i` of the topology's layer list: its class, config and (functional) name, checked. */
function entryOf(e: unknown, i: number): { cls: unknown; c: KerasConfig; name: string; where: string } {
  const cls = isObject(e) ? e.class_name : undefined;
  if (!isObject(e) || !isObject(e.config)) throw new DataError(`model.json: layer ${i} (${show(cls)}) has no config object`);
  const name = e.name ?? e.config.name;
  if (typeof name !== "string" || name === "") throw new DataError(`model.json: layer ${i} (${show(cls)}) has no name`);
  return { cls, c: e.config, name, where: `model.json: layer ${name} (${String(cls)})` };
}

/** The per-example shape of an InputLayer (or of a Sequential's first layer): batch_input_shape without the batch. */
function inputShapeOf(c: KerasConfig, where: string): number[] | undefined {
  const b = c.batch_input_shape ?? c.batch_shape;
  if (b === undefined || b === null) return undefined;
  if (!Array.isArray(b) || b.length < 2) throw new DataError(`${where}: batch_input_shape must be [null, ...dimensions], got ${show(b)}`);
  const dims = b.slice(1);
  if (dims.some((d) => d === null)) throw new ConfigError(`${where}: batch_input_shape ${show(b)} has a dimension of variable size; this engine needs every dimension but the batch fixed`);
  if (!dims.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 1)) throw new DataError(`${where}: batch_input_shape must be [null, ...positive integers], got ${show(b)}`);
  return dims as number[];
}

function importSequential(entries: unknown[]): { model: Model; layers: Layer[] } {
  const layers: Layer[] = [];
  let shape: number[] | undefined;
  let t: SymbolicTensor | undefined;
  for (const [i, e] of entries.entries()) {
    const { cls, c, name, where } = entryOf(e, i);
    if (cls === "InputLayer") {
      if (i !== 0) throw new DataError(`${where}: an InputLayer can only come first in a Sequential`);
      shape = inputShapeOf(c, where);
      continue;
    }
    const kind = kindOfKeras(cls, `model.json: layer ${name}`);
    if (!t) {
      shape ??= inputShapeOf(c, where);
      if (!shape) throw new DataError(`${where}: the first layer of a Sequential needs batch_input_shape`);
      // Applied as we go, so each layer's config is read knowing its input shape (normalized axes, ...).
      t = Input({ shape, name: "input" });
    }
    const l = makeLayer(kind, new KerasFields(c, where), [t.shape], { name, trainable: c.trainable !== false, ...(layers.length === 0 ? { inputShape: shape } : {}) });
    t = l.apply(t);
    layers.push(l);
  }
  if (!layers.length) throw new DataError("model.json: the Sequential has no layers");
  return { model: new Sequential(layers), layers };
}

function refOf(r: unknown, where: string): KerasRef {
  if (!Array.isArray(r) || typeof r[0] !== "string" || !Number.isInteger(r[1]) || !Number.isInteger(r[2])) throw new DataError(`${where}: expected a reference [layer name, node index, tensor index], got ${show(r)}`);
  return r as KerasRef;
}

function importFunctional(cfg: Record<string, unknown>): { model: Model; layers: Layer[] } {
  const entries = new Map<string, ReturnType<typeof entryOf> & { nodes: KerasRef[][] }>();
  for (const [i, e] of (cfg.layers as unknown[]).entries()) {
    const en = entryOf(e, i);
    if (entries.has(en.name)) throw new DataError(`model.json: two layers are named "${en.name}"`);
    const raw = (e as Record<string, unknown>).inbound_nodes ?? [];
    if (!Array.isArray(raw) || !raw.every(Array.isArray)) throw new DataError(`${en.where}: inbound_nodes must be a list of nodes, each a list of [layer name, node index, tensor index, kwargs]; got ${show(raw).slice(0, 120)}`);
    entries.set(en.name, { ...en, nodes: raw.map((node: unknown[], n) => node.map((r) => refOf(r, `${en.where}: inbound node ${n}`))) });
  }
  for (const en of entries.values()) {
    for (const [n, node] of en.nodes.entries()) {
      for (const [layer] of node) if (!entries.has(layer)) throw new DataError(`${en.where}: inbound node ${n} names unknown layer "${layer}"; the layers are ${[...entries.keys()].join(", ")}`);
    }
  }
  const layers = new Map<string, Layer>();
  const tensors = new Map<string, SymbolicTensor>();
  const visiting = new Set<string>();
  const tensorOf = (r: KerasRef, from: string): SymbolicTensor => {
    const [name, node, index] = r;
    const en = entries.get(name);
    if (!en) throw new DataError(`${from} names unknown layer "${name}"; the layers are ${[...entries.keys()].join(", ")}`);
    if (index !== 0) throw new DataError(`${from}: layer ${name} has one output, but output ${index} is referenced`);
    const key = `${name}#${node}`;
    const done = tensors.get(key);
    if (done) return done;
    if (visiting.has(key)) throw new DataError(`${en.where}: the topology has a cycle through node ${node}`);
    let t: SymbolicTensor;
    if (en.cls === "InputLayer") {
      const shape = inputShapeOf(en.c, en.where);
      if (!shape) throw new DataError(`${en.where}: an InputLayer needs batch_input_shape`);
      t = Input({ shape, name });
    } else {
      const inbound = en.nodes[node];
      if (!inbound) throw new DataError(`${from} references node ${node} of layer ${name}, which has ${en.nodes.length}`);
      visiting.add(key);
      const ins = inbound.map((ir) => tensorOf(ir, `${en.where}: inbound node ${node}`));
      visiting.delete(key);
      let l = layers.get(name);
      if (!l) layers.set(name, (l = makeLayer(kindOfKeras(en.cls, `model.json: layer ${name}`), new KerasFields(en.c, en.where), ins.map((x) => x.shape), { name, trainable: en.c.trainable !== false })));
      t = l.apply(ins);
    }
    tensors.set(key, t);
    return t;
  };
  const io = (key: "input_layers" | "output_layers") => {
    const v = cfg[key];
    if (!Array.isArray(v) || v.length === 0) throw new DataError(`model.json: ${key} must be a non-empty list of [layer name, node index, tensor index], got ${show(v)}`);
    return v.map((r) => tensorOf(refOf(r, `model.json: ${key}`), `model.json: ${key}`));
  };
  const inputs = io("input_layers");
  const outputs = io("output_layers");
  const model = new Model({ inputs, outputs, name: typeof cfg.name === "string" ? cfg.name : undefined });
  return { model, layers: [...entries.keys()].flatMap((n) => layers.get(n) ?? []) };
}

/**
 * Reads weights.bin as the manifest describes it and names each weight "layer/role" as our layers do.
 * Names are matched as tfjs-layers matches them: "layer/role", or "layer/cell/role" with the middle dropped.
 */
function importWeights(manifest: unknown, bin: Uint8Array, layers: readonly Layer[]): NamedTensor[] {
  if (manifest !== undefined && !Array.isArray(manifest)) throw new DataError(`model.json: weightsManifest must be a list of { paths, weights }, got ${show(manifest).slice(0, 80)}`);
  const specs = (manifest ?? []).flatMap((g: unknown) => {
    if (!isObject(g) || !Array.isArray(g.weights)) throw new DataError(`model.json: each weightsManifest group needs a weights list, got ${show(g).slice(0, 80)}`);
    return g.weights as unknown[];
  });
  const ours = new Map(layers.flatMap((l) => l.weights ?? []).map((t) => [t.name, t]));
  const byName = new Map<string, NamedTensor>();
  let at = 0;
  for (const s of specs) {
    if (!isObject(s) || typeof s.name !== "string" || !Array.isArray(s.shape) || !s.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new DataError(`model.json: a weightsManifest entry must be { name, shape, dtype }, got ${show(s).slice(0, 80)}`);
    if ((s.dtype ?? "float32") !== "float32") throw new DataError(`weights.bin: ${s.name} is ${String(s.dtype)}; only float32 is supported`);
    const shape = s.shape as number[];
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    if (at + bytes > bin.length) throw new DataError(`weights.bin has ${bin.length} bytes but the manifest needs at least ${at + bytes} (at ${s.name}); the file is truncated`);
    const tokens = s.name.split("/");
    const name = ours.has(s.name) ? s.name : [...tokens.slice(0, -2), tokens.at(-1)].join("/");
    if (!ours.has(name)) throw new DataError(`model.json: weight "${s.name}" in weightsManifest belongs to no layer of the model; its weights are ${[...ours.keys()].join(", ")}`);
    if (byName.has(name)) throw new DataError(`model.json: weight "${name}" appears twice in weightsManifest`);
    byName.set(name, { name, shape, data: float32Copy(bin, at, at + bytes) });
    at += bytes;
  }
  if (at !== bin.length) throw new DataError(`weights.bin has ${bin.length} bytes but the manifest describes ${at}`);
  return [...ours.values()].map((t) => {
    const w = byName.get(t.name);
    if (!w) throw new DataError(`model.json: weightsManifest has no "${t.name}" (shape [${t.shape}])`);
    if (w.shape.join() !== t.shape.join()) throw new ShapeError(`model.json: weight "${t.name}" has shape [${w.shape}] but the layer needs [${t.shape}]`);
    return w;
  });
}

/**
 * Rebuilds a model from model.json (parsed) and the bytes of weights.bin (Uint8Array, Node Buffer,
 * ArrayBuffer or any view): `const { model, weights } = fromTfjs(json, bin)`, compile, `model.setWeights(weights)`.
 */
export function fromTfjs(json: unknown, weightsBin: Bytes): TfjsImport {
  const bin = bytesOf(weightsBin, "weights.bin");
  if (!isObject(json)) throw new DataError(`model.json: expected the parsed model.json object, got ${json === null ? "null" : Array.isArray(json) ? "an array" : typeof json}`);
  const mt = json.modelTopology;
  // Keras's converter nests the topology under model_config.
  const topo = isObject(mt) && mt.class_name === undefined ? mt.model_config : mt;
  if (json.format !== "layers-model" || !isObject(topo)) throw new DataError(`model.json: expected a TF.js layers-model with a modelTopology, got format ${show(json.format)}`);
  if (!isObject(topo.config) || !Array.isArray(topo.config.layers)) throw new DataError(`model.json: modelTopology.config.layers must be a list of layers`);
  const cls = topo.class_name;
  if (cls !== "Sequential" && cls !== "Model" && cls !== "Functional") throw new DataError(`model.json: expected a Sequential or functional (Model) topology, got class ${show(cls)}`);
  const built = cls === "Sequential" ? importSequential(topo.config.layers) : importFunctional(topo.config);
  return { ...built, weights: importWeights(json.weightsManifest, bin, built.layers) };
}
