// Weights move between this engine and TensorFlow.js: a model exported as model.json + weights.bin
// loads in TF.js and predicts the same; a TF.js model imports here and predicts the same.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Conv2D, Dense, Flatten, MaxPooling2D, Sequential, fromTfjs, toTfjs } from "../src/index.ts";
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
});
