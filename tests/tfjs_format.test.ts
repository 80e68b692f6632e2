// Weights move between this engine and TensorFlow.js: a model exported as model.json + weights.bin
// loads in TF.js and predicts the same; a TF.js model imports here and predicts the same.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Add,
  BatchNormalization,
  Concatenate,
  ConfigError,
  Conv2D,
  DataError,
  Dense,
  DepthwiseConv2D,
  Flatten,
  GlobalAveragePooling2D,
  Input,
  LayerNormalization,
  MaxPooling2D,
  Model,
  Sequential,
} from "../src/index.ts";
import { fromTfjs, toTfjs } from "../src/entry/io.ts";
import type { Engine } from "../src/engine.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

let engine: Engine;
beforeAll(async () => {
  engine = await gpuEngine();
  await tf.setBackend("cpu");
});
afterAll(() => engine?.dispose());

const x = Float32Array.from(randomArray(5 * 12 * 12, 42, 0, 1));
const rand = (n: number, seed: number, lo = -1, hi = 1) => Float32Array.from(randomArray(n, seed, lo, hi));

/** model.json as TF.js writes it, with the weights as TF.js's memory IOHandler takes them. */
async function tfSaved(m: tf.LayersModel): Promise<{ json: unknown; bin: Uint8Array }> {
  let a!: tf.io.ModelArtifacts;
  await m.save(tf.io.withSaveHandler(async (artifacts) => ((a = artifacts), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } })));
  return { json: { format: a.format, modelTopology: a.modelTopology, weightsManifest: [{ paths: ["weights.bin"], weights: a.weightSpecs }] }, bin: new Uint8Array(a.weightData as ArrayBuffer) };
}

/** Our export, loaded by TF.js itself from memory (a JSON round trip first, as a file would be). */
async function tfLoaded(model: Model): Promise<tf.LayersModel> {
  const { modelJson, weightsBin } = await toTfjs(model);
  const json = JSON.parse(JSON.stringify(modelJson));
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: weightsBin.slice().buffer }));
}

describe("TF.js LayersModel format", () => {
  it("export: TF.js loads model.json + weights.bin and predicts what we predict", async () => {
    const model = new Sequential([
      Conv2D({ filters: 6, kernelSize: 3, activation: "relu", inputShape: [12, 12, 1] }),
      MaxPooling2D({ poolSize: 2 }),
      Flatten(),
      Dense({ units: 16, activation: "tanh" }),
      Dense({ units: 4, activation: "softmax" }),
    ]);
    await model.compile({ loss: "sparseCategoricalCrossentropy", engine, seed: 5 });
    const ours = await model.predict(x);
    const { modelJson, weightsBin } = await toTfjs(model);
    const json = JSON.parse(JSON.stringify(modelJson));
    const loaded = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: weightsBin.slice().buffer }),
    );
    const theirs = (loaded.predict(tf.tensor4d(x, [5, 12, 12, 1])) as tf.Tensor).dataSync();
    expectRelClose(ours, theirs, 1e-4, "predictions");
    model.dispose();
  });

  it("import: a TF.js model predicts the same here", async () => {
    const t = tf.sequential({
      layers: [
        tf.layers.conv2d({ filters: 3, kernelSize: 2, strides: 2, padding: "same", activation: "sigmoid", inputShape: [12, 12, 1] }),
        tf.layers.averagePooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 5, activation: "relu" }),
        tf.layers.dense({ units: 3 }),
      ],
    });
    const theirs = (t.predict(tf.tensor4d(x, [5, 12, 12, 1])) as tf.Tensor).dataSync();
    let artifacts!: tf.io.ModelArtifacts;
    await t.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } })));
    const json = { format: "layers-model", modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }] };
    const { layers, weights } = fromTfjs(json, new Uint8Array(artifacts.weightData as ArrayBuffer));
    const model = new Sequential(layers);
    await model.compile({ loss: "meanSquaredError", engine });
    model.setWeights(weights);
    expectRelClose(await model.predict(x), theirs, 1e-4, "predictions");
    expect(() => fromTfjs(json, new Uint8Array(10))).toThrow(/truncated/);
    model.dispose();
  });

  // Two inputs, a Dense applied twice, merges, both normalizations and a depthwise convolution. Each
  // model is also tried with a Conv2D in the depthwise convolution's place, to tell its kernels apart.
  const variants = [{ depthwise: true }, { depthwise: false }];
  const N = 4;
  const img = rand(N * 6 * 6 * 3, 7);
  const vec = rand(N * 4, 8);
  function functionalModel(depthwise: boolean): Model {
    const a = Input({ shape: [6, 6, 3], name: "img" });
    const b = Input({ shape: [4], name: "vec" });
    const spatial = depthwise ? DepthwiseConv2D({ kernelSize: 3, depthMultiplier: 2, padding: "same", activation: "relu" }) : Conv2D({ filters: 6, kernelSize: 3, padding: "same", activation: "relu" });
    const dw = spatial.apply(a); // (6, 6, 6)
    const bn = BatchNormalization().apply(dw);
    const g = GlobalAveragePooling2D().apply(MaxPooling2D({ poolSize: 2 }).apply(bn)); // (6)
    const shared = Dense({ units: 8, activation: "tanh" });
    const h1 = shared.apply(b);
    const h2 = shared.apply(Dense({ units: 4 }).apply(g));
    const c = Concatenate().apply([Concatenate().apply([h1, h2]), Add().apply([h1, h2])]); // (24)
    const out = Dense({ units: 3, activation: "softmax" }).apply(LayerNormalization().apply(c));
    return new Model({ inputs: [a, b], outputs: out });
  }

  /** Gives every normalization non-trivial gammas, betas and moving statistics. */
  async function stirNormalization(model: Model): Promise<void> {
    const ws = await model.getWeights();
    for (const [i, w] of ws.entries()) {
      const role = w.name.split("/")[1]!;
      if (role === "gamma" || role === "moving_variance") w.data = rand(w.data.length, 100 + i, 0.5, 2);
      if (role === "beta" || role === "moving_mean") w.data = rand(w.data.length, 100 + i, -0.5, 0.5);
    }
    model.setWeights(ws);
  }

  it.each(variants)("export: a functional model (two inputs, shared Dense, merges, normalizations; depthwise $depthwise) loads in TF.js and predicts the same", async ({ depthwise }) => {
    const model = functionalModel(depthwise);
    await model.compile({ loss: "categoricalCrossentropy", engine, seed: 3 });
    await stirNormalization(model);
    const ours = await model.predict([img, vec]);
    const { modelJson } = await toTfjs(model);
    const topo = modelJson.modelTopology;
    expect(topo.class_name).toBe("Model");
    const shared = topo.config.layers.find((l) => l.class_name === "Dense" && l.inbound_nodes!.length === 2);
    expect(shared, "the shared Dense has two inbound nodes").toBeDefined();
    expect(topo.config.input_layers).toEqual([["img", 0, 0], ["vec", 0, 0]]);
    const bnName = topo.config.layers.find((l) => l.class_name === "BatchNormalization")!.config.name;
    const names = modelJson.weightsManifest[0]!.weights.map((w) => w.name);
    for (const role of ["gamma", "beta", "moving_mean", "moving_variance"]) expect(names).toContain(`${bnName}/${role}`);
    const loaded = await tfLoaded(model);
    const theirs = (loaded.predict([tf.tensor4d(img, [N, 6, 6, 3]), tf.tensor2d(vec, [N, 4])]) as tf.Tensor).dataSync();
    expectRelClose(ours, theirs, 1e-4, "predictions");
    // TF.js saves the loaded model's weights under the same names; like it, we put the moving statistics
    // (non-trainable) after every trainable weight. (TF.js orders layers by graph depth, we by first use.)
    const resaved = (await tfSaved(loaded)).json as { weightsManifest: { weights: { name: string }[] }[] };
    expect(resaved.weightsManifest[0]!.weights.map((w) => w.name).sort()).toEqual([...names].sort());
    expect(names.slice(-2)).toEqual([`${bnName}/moving_mean`, `${bnName}/moving_variance`]);

    // ... and comes back here in one line, predicting the same.
    const { modelJson: mj, weightsBin } = await toTfjs(model);
    const back = fromTfjs(JSON.parse(JSON.stringify(mj)), weightsBin);
    expect(back.model).toBeInstanceOf(Model);
    expect(back.model).not.toBeInstanceOf(Sequential);
    await back.model.compile({ loss: "categoricalCrossentropy", engine });
    back.model.setWeights(back.weights);
    expectRelClose(await back.model.predict({ img, vec }), ours, 1e-4, "round trip");
    model.dispose();
    back.model.dispose();
  });

  it("export: a Sequential stays a Sequential topology and round-trips through fromTfjs().model", async () => {
    const model = new Sequential([Dense({ units: 5, activation: "relu", inputShape: [7] }), BatchNormalization(), Dense({ units: 2 })]);
    await model.compile({ loss: "meanSquaredError", engine, seed: 9 });
    await stirNormalization(model);
    const v = rand(3 * 7, 21);
    const ours = await model.predict(v);
    const { modelJson, weightsBin } = await toTfjs(model);
    expect(modelJson.modelTopology.class_name).toBe("Sequential");
    const theirs = ((await tfLoaded(model)).predict(tf.tensor2d(v, [3, 7])) as tf.Tensor).dataSync();
    expectRelClose(ours, theirs, 1e-4, "TF.js");
    const back = fromTfjs(modelJson, weightsBin);
    expect(back.model).toBeInstanceOf(Sequential);
    await back.model.compile({ loss: "meanSquaredError", engine });
    back.model.setWeights(back.weights);
    expectRelClose(await back.model.predict(v), ours, 1e-4, "round trip");
    model.dispose();
    back.model.dispose();
  });

  it.each(variants)("import: a TF.js functional model with every supported layer kind (depthwise $depthwise) predicts the same here", async ({ depthwise }) => {
    const im = tf.input({ shape: [8, 8, 2], name: "image" });
    const ve = tf.input({ shape: [16], name: "features" });
    const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu" }).apply(im) as tf.SymbolicTensor;
    const d1 = (depthwise ? tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same" }) : tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same" })).apply(c1) as tf.SymbolicTensor;
    const bnLayer = tf.layers.batchNormalization();
    const bn = bnLayer.apply(d1) as tf.SymbolicTensor; // (8, 8, 4)
    const fl = tf.layers.flatten().apply(tf.layers.averagePooling2d({ poolSize: 2 }).apply(tf.layers.maxPooling2d({ poolSize: 2 }).apply(bn))) as tf.SymbolicTensor; // (16)
    const gap = tf.layers.globalAveragePooling2d({}).apply(bn) as tf.SymbolicTensor; // (4)
    const shared = tf.layers.dense({ units: 8, activation: "tanh" });
    const h1 = shared.apply(fl) as tf.SymbolicTensor;
    const h2 = shared.apply(ve) as tf.SymbolicTensor;
    const r1 = tf.layers.reshape({ targetShape: [2, 4] }).apply(tf.layers.add().apply([h1, h2])) as tf.SymbolicTensor;
    const r2 = tf.layers.reshape({ targetShape: [2, 4] }).apply(tf.layers.multiply().apply([h1, h2])) as tf.SymbolicTensor;
    const cat = tf.layers.flatten().apply(tf.layers.concatenate({ axis: 1 }).apply([r1, r2])) as tf.SymbolicTensor; // (4, 4) → (16)
    const ln = tf.layers.layerNormalization().apply(tf.layers.concatenate().apply([cat, gap])) as tf.SymbolicTensor; // (20)
    const hidden = tf.layers.activation({ activation: "sigmoid" }).apply(tf.layers.dropout({ rate: 0.25 }).apply(ln)) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: "softmax" }).apply(hidden) as tf.SymbolicTensor;
    const t = tf.model({ inputs: [im, ve], outputs: out });
    // Moving statistics far from their initial 0 and 1, as after training.
    const C = 4;
    bnLayer.setWeights([tf.tensor1d(rand(C, 31, 0.5, 2)), tf.tensor1d(rand(C, 32)), tf.tensor1d(rand(C, 33, -0.5, 0.5)), tf.tensor1d(rand(C, 34, 0.2, 3))]);

    const xi = rand(N * 8 * 8 * 2, 41, 0, 1);
    const xv = rand(N * 16, 42);
    const theirs = (t.predict([tf.tensor4d(xi, [N, 8, 8, 2]), tf.tensor2d(xv, [N, 16])]) as tf.Tensor).dataSync();
    const { json, bin } = await tfSaved(t);
    const { model, layers, weights } = fromTfjs(json, bin);
    expect(new Set(layers.map((l) => l.kind)).size).toBe(depthwise ? 15 : 14);
    expect(model.inputs.map((i) => i.name)).toEqual(["image", "features"]);
    expect(weights.map((w) => w.name)).toContain(`${bnLayer.name}/moving_variance`);
    await model.compile({ loss: "categoricalCrossentropy", engine });
    model.setWeights(weights);
    expectRelClose(await model.predict([xi, xv]), theirs, 1e-4, "predictions");
    model.dispose();
  });

  describe("refuses what it cannot honour, naming the layer and the field", () => {
    const conv = (extra: Record<string, unknown>) => ({ class_name: "Conv2D", config: { name: "c", filters: 2, kernel_size: [3, 3], batch_input_shape: [null, 6, 6, 3], ...extra } });
    const seq = (...layers: unknown[]) => ({ format: "layers-model", modelTopology: { class_name: "Sequential", config: { name: "s", layers } }, weightsManifest: [] });
    const refuses = (json: unknown, type: typeof DataError | typeof ConfigError, message: RegExp) => {
      let error: unknown;
      try {
        fromTfjs(json, new Uint8Array(0));
      } catch (e) {
        error = e;
      }
      expect(error, String(message)).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
    };

    it("Conv2D dilation, channels_first, unknown activations, regularizers it would drop", () => {
      refuses(seq(conv({ dilation_rate: [2, 2] })), ConfigError, /layer c \(Conv2D\): dilation_rate \[2,2\] is not supported/);
      refuses(seq(conv({ data_format: "channels_first" })), ConfigError, /layer c \(Conv2D\): data_format "channels_first" is not supported/);
      refuses(seq(conv({ activation: "elu" })), ConfigError, /layer c \(Conv2D\): activation "elu" is not supported; supported activations: linear, relu, sigmoid, tanh, softmax/);
      refuses(seq(conv({ bias_regularizer: { class_name: "L1L2", config: { l1: 0, l2: 0.1 } } })), ConfigError, /layer c \(Conv2D\): bias_regularizer/);
      refuses(seq(conv({ filters: "two" })), DataError, /layer c \(Conv2D\): filters must be a positive integer/);
    });

    it("BatchNormalization over another axis, or without center or scale", () => {
      const bn = (extra: Record<string, unknown>) => ({ class_name: "BatchNormalization", config: { name: "bn", ...extra } });
      refuses(seq(conv({}), bn({ axis: 1 })), ConfigError, /layer bn \(BatchNormalization\): axis 1 is not supported; only the last axis \(-1, or 3 for this input\)/);
      refuses(seq(conv({}), bn({ center: false })), ConfigError, /layer bn \(BatchNormalization\): center false/);
      refuses(seq(conv({}), bn({ scale: false })), ConfigError, /layer bn \(BatchNormalization\): scale false/);
      expect(() => fromTfjs(seq(conv({}), bn({ axis: 3 })), new Uint8Array(0))).toThrow(/weightsManifest has no/); // axis 3 is accepted
    });

    it("unknown layer classes (listing the supported ones) and layers without config", () => {
      refuses(seq(conv({}), { class_name: "LSTM", config: { name: "rnn" } }), ConfigError, /layer rnn is a "LSTM", which this engine does not support; supported: Conv2D, DepthwiseConv2D, .*LayerNormalization/);
      refuses(seq(conv({}), { class_name: "Dense" }), DataError, /layer 1 \("Dense"\) has no config/);
    });

    it("inbound nodes naming unknown layers", () => {
      const json = {
        format: "layers-model",
        modelTopology: {
          class_name: "Model",
          config: {
            name: "m",
            layers: [
              { name: "in", class_name: "InputLayer", config: { name: "in", batch_input_shape: [null, 3] }, inbound_nodes: [] },
              { name: "d", class_name: "Dense", config: { name: "d", units: 2 }, inbound_nodes: [[["ghost", 0, 0, {}]]] },
            ],
            input_layers: [["in", 0, 0]],
            output_layers: [["d", 0, 0]],
          },
        },
      };
      refuses(json, DataError, /layer d \(Dense\): inbound node 0 names unknown layer "ghost"/);
    });

    it("json that is not a model.json object", () => {
      for (const j of [null, undefined, 42, "model.json", [1, 2]]) refuses(j, DataError, /model\.json/);
      refuses({ format: "layers-model", modelTopology: null }, DataError, /model\.json/);
      refuses({ format: "layers-model", modelTopology: { class_name: "Model", config: { layers: 5 } } }, DataError, /config\.layers must be a list/);
    });
  });
});
