// Bad models and bad data give errors that name what is wrong.
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, DataError, Dense, Flatten, Conv2D, Sequential, ShapeError } from "../src/index.ts";
import type { Engine } from "../src/engine.ts";
import { loadSafetensors, saveSafetensors } from "../src/model/safetensors.ts";
import { gpuEngine } from "./gpu_helpers.ts";

let engine: Engine | undefined;
afterAll(() => engine?.dispose());

async function mlp(): Promise<Sequential> {
  engine ??= await gpuEngine();
  const m = new Sequential([Dense({ units: 4, activation: "relu", inputShape: [3], name: "hidden" }), Dense({ units: 3, activation: "softmax", name: "out" })]);
  await m.compile({ loss: "sparseCategoricalCrossentropy", engine });
  return m;
}

describe("errors", () => {
  it("mismatched shapes at compile name the layer", async () => {
    const m = new Sequential([Conv2D({ filters: 4, kernelSize: 3, inputShape: [8, 8, 1], name: "conv" }), Dense({ units: 10, name: "head" })]);
    await expect(m.compile({ loss: "sparseCategoricalCrossentropy" })).rejects.toThrow(ShapeError);
    expect(() => m.shapes()).toThrow(/layer head: .*\[6, 6, 4\].*Flatten/);
    const tooBig = new Sequential([Conv2D({ filters: 4, kernelSize: 5, inputShape: [3, 3, 1], name: "c5" }), Flatten(), Dense({ units: 2 })]);
    expect(() => tooBig.shapes()).toThrow(/layer c5: a 5×5 window does not fit a 3×3 input/);
    expect(() => new Sequential([Dense({ units: 2 })]).shapes()).toThrow(/needs inputShape/);
  });

  it("unknown loss, optimizer, metric", async () => {
    const m = () => new Sequential([Flatten({ inputShape: [2, 2] }), Dense({ units: 2, activation: "softmax" })]);
    await expect(m().compile({ loss: "hinge" as never })).rejects.toThrow(/unknown loss "hinge"/);
    await expect(m().compile({ loss: "categoricalCrossentropy", optimizer: "rmsprop" as never })).rejects.toThrow(ConfigError);
    await expect(m().compile({ loss: "categoricalCrossentropy", metrics: ["auc"] })).rejects.toThrow(/unknown metric "auc"/);
  });

  it("labels out of range, fractional, negative; x/y length mismatch; bad batch size", async () => {
    const m = await mlp();
    const x = new Float32Array(12);
    await expect(m.fit(x, [0, 1, 2, 3])).rejects.toThrow(/label 3 is 3; labels must be integers in 0..2/);
    await expect(m.fit(x, [0, 1.5, 2, 0])).rejects.toThrow(DataError);
    await expect(m.fit(x, [0, -1, 2, 0])).rejects.toThrow(DataError);
    await expect(m.fit(x, [0, 1, 2])).rejects.toThrow(/4 examples but its labels have 3/);
    await expect(m.fit(new Float32Array(10), [0, 1, 2])).rejects.toThrow(/not a whole number of examples of shape \[3\]/);
    await expect(m.fit(x, [0, 1, 2, 0], { batchSize: 0 })).rejects.toThrow(/batchSize must be an integer in 1..4/);
    await expect(m.fit(x, [0, 1, 2, 0], { batchSize: 5 })).rejects.toThrow(ConfigError);
    await expect(m.fit(Float32Array.of(0, NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), [0, 1, 2, 0])).rejects.toThrow(/value 1 \(example 0\) is NaN/);
    m.dispose();
  });

  it("weights: safetensors round trip; missing, extra and misshaped tensors; corrupt files", async () => {
    const m = await mlp();
    const w = await m.getWeights();
    // the same values, read straight from the GPU buffer ranges the model exposes
    for (const [i, wb] of m.weightBuffers().entries()) {
      expect(wb.name).toBe(w[i]!.name);
      expect(Array.from(new Float32Array(await m.engine.read(wb.buffer, wb.size, wb.offset)))).toEqual(Array.from(w[i]!.data));
    }
    const back = loadSafetensors(saveSafetensors(w, { note: "test" }));
    expect(back.metadata.note).toBe("test");
    expect(back.tensors.map((t) => t.name)).toEqual(["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]);
    for (let i = 0; i < w.length; i++) expect(Array.from(back.tensors[i]!.data)).toEqual(Array.from(w[i]!.data));
    // set back and read again: identical
    const changed = back.tensors.map((t) => ({ ...t, data: t.data.map((v) => v + 1) }));
    m.setWeights(changed);
    expect(Array.from((await m.getWeights())[0]!.data)).toEqual(Array.from(changed[0]!.data));
    expect(() => m.setWeights(back.tensors.slice(1))).toThrow(/"hidden\/kernel" is missing/);
    expect(() => m.setWeights([...back.tensors, { name: "x/y", shape: [1], data: new Float32Array(1) }])).toThrow(/unexpected tensors x\/y/);
    expect(() => m.setWeights(back.tensors.map((t, i) => (i === 0 ? { ...t, shape: [4, 3] } : t)))).toThrow(/has shape \[4,3\].*needs \[3,4\]/);
    const bytes = saveSafetensors(w);
    expect(() => loadSafetensors(bytes.subarray(0, bytes.length - 4))).toThrow(/do not fit/);
    expect(() => loadSafetensors(bytes.subarray(0, 5))).toThrow(/too short/);
    const lying = bytes.slice();
    new DataView(lying.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => loadSafetensors(lying)).toThrow(/truncated or not safetensors/);
    m.dispose();
  });
});
