// The small binary classifier: toy datasets (their geometry, balance and seeding), the five features,
// the classification report on hand-worked cases, and real learning on the GPU.
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, DataError, ShapeError } from "../src/errors.ts";
import { Dense, Sequential } from "../src/index.ts";
import { binaryReport, confusionMatrix, fiveFeatures, TOY_DATASETS, toyDataset } from "../src/entry/data.ts";
import { gpuEngine } from "./gpu_helpers.ts";

afterAll(async () => (await gpuEngine()).dispose());

describe("toy datasets", () => {
  it("are balanced, seeded, shuffled and differ from one another", () => {
    for (const name of TOY_DATASETS) {
      const a = toyDataset(name, { n: 300, seed: 4 });
      expect(a.points.length).toBe(600);
      expect(a.labels.reduce((s, v) => s + v, 0)).toBe(150);
      expect(a.labels.slice(0, 30).reduce((s, v) => s + v, 0)).toBeGreaterThan(5); // a prefix holds both classes
      expect(toyDataset(name, { n: 300, seed: 4 })).toEqual(a);
      expect(toyDataset(name, { n: 300, seed: 5 }).points).not.toEqual(a.points);
      for (const v of a.points) expect(Math.abs(v)).toBeLessThan(1.6);
    }
    expect(toyDataset("moons").points).not.toEqual(toyDataset("circles").points);
  });

  it("have the shapes their names say (no noise)", () => {
    const xor = toyDataset("xor", { n: 200, noise: 0 });
    const circles = toyDataset("circles", { n: 200, noise: 0 });
    for (let i = 0; i < 200; i++) {
      const [x, y] = [xor.points[2 * i]!, xor.points[2 * i + 1]!];
      expect(xor.labels[i]).toBe(x * y < 0 ? 1 : 0);
      const r = Math.hypot(circles.points[2 * i]!, circles.points[2 * i + 1]!);
      if (circles.labels[i] === 0) expect(r).toBeLessThan(0.46);
      else expect(r).toBeGreaterThanOrEqual(0.69);
    }
  });

  it("refuse bad options", () => {
    expect(() => toyDataset("swirl" as never)).toThrow(ConfigError);
    expect(() => toyDataset("moons", { n: 1 })).toThrow(/n must be/);
    expect(() => toyDataset("moons", { noise: -0.1 })).toThrow(/noise/);
    expect(() => toyDataset("moons", { seed: 0.5 })).toThrow(/seed/);
    expect(() => fiveFeatures(new Float32Array(3))).toThrow(ConfigError);
  });

  it("five features are x₁, x₂, x₁², x₂², x₁·x₂", () => {
    expect(Array.from(fiveFeatures(Float32Array.from([2, -3, 0.5, 4])))).toEqual([2, -3, 4, 9, -6, 0.5, 4, 0.25, 16, 2]);
  });
});

describe("classification report", () => {
  it("counts a hand-worked binary case", () => {
    // At 0.5: outputs 0.9, 0.6, 0.7 are positive (labels 1, 0, 1: two tp, one fp); 0.2, 0.4 negative (labels 0, 1: one tn, one fn).
    const r = binaryReport([0.9, 0.2, 0.6, 0.4, 0.7], [1, 0, 0, 1, 1]);
    expect(r.confusion).toEqual({ tp: 2, fp: 1, fn: 1, tn: 1 });
    expect(r.accuracy).toBeCloseTo(3 / 5, 12);
    expect(r.precision).toBeCloseTo(2 / 3, 12);
    expect(r.recall).toBeCloseTo(2 / 3, 12);
    expect(r.f1).toBeCloseTo(2 / 3, 12);
    // A higher threshold: only 0.9 is positive (tp); precision 1, recall 1/3, F1 = 2·(1/3)/(4/3) = 1/2.
    const strict = binaryReport([0.9, 0.2, 0.6, 0.4, 0.7], [1, 0, 0, 1, 1], 0.8);
    expect([strict.precision, strict.recall, strict.f1]).toEqual([1, 1 / 3, 0.5]);
    // Nothing predicted positive: precision and F1 are 0, not NaN.
    expect(binaryReport([0.1, 0.2], [1, 0])).toMatchObject({ precision: 0, recall: 0, f1: 0, accuracy: 0.5 });
  });

  it("a confusion matrix by argmax", () => {
    // Rows of 3 outputs: argmax 0, 2, 2, 1 for labels 0, 2, 1, 1.
    const m = confusionMatrix([0.7, 0.2, 0.1, 0.1, 0.2, 0.7, 0.3, 0.3, 0.4, 0.2, 0.5, 0.3], [0, 2, 1, 1], 3);
    expect(m).toEqual([
      [1, 0, 0],
      [0, 1, 1],
      [0, 0, 1],
    ]);
  });

  it("refuses what it cannot count", () => {
    expect(() => binaryReport([0.5, 0.5], [1])).toThrow(ShapeError);
    expect(() => binaryReport([0.5], [2])).toThrow(/labels must be 0 or 1/);
    expect(() => binaryReport([NaN], [1])).toThrow(/finite/);
    expect(() => binaryReport([0.5], [1], 1)).toThrow(/threshold/);
    expect(() => confusionMatrix([0.5, 0.5], [3], 2)).toThrow(DataError);
    expect(() => confusionMatrix([0.5, 0.5], [1], 1)).toThrow(/classes/);
  });
});

describe("five features → Dense(10, ReLU) → Dense(1, sigmoid), log loss, Adam", () => {
  for (const name of ["moons", "circles", "xor"] as const) {
    it(`learns ${name} (held-out accuracy ≥ 93%)`, async () => {
      const train = toyDataset(name, { n: 600, seed: 2 });
      const test = toyDataset(name, { n: 400, seed: 3 });
      const model = new Sequential([Dense({ units: 10, activation: "relu", inputShape: [5] }), Dense({ units: 1, activation: "sigmoid" })]);
      await model.compile({ optimizer: { type: "adam", learningRate: 0.01 }, loss: "binaryCrossentropy", engine: await gpuEngine(), seed: 2 });
      const before = binaryReport(await model.predict(fiveFeatures(test.points)), test.labels);
      const history = await model.fit(fiveFeatures(train.points), train.labels, { epochs: 25, batchSize: 32 });
      const after = binaryReport(await model.predict(fiveFeatures(test.points)), test.labels);
      expect(history.history.loss.at(-1)!).toBeLessThan(history.history.loss[0]! / 2);
      expect(after.accuracy).toBeGreaterThanOrEqual(0.93);
      expect(after.accuracy).toBeGreaterThan(before.accuracy + 0.2);
      expect(after.f1).toBeGreaterThanOrEqual(0.9);
      model.dispose();
    });
  }
});
